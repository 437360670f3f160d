// The SSH "device" for measure 5: a container built from Dockerfile.test (Debian, OpenSSH set up
// like SkiffOS, Node.js, skiff-core installed by `make install`) running sshd and `skiff-core
// daemon --create-users --ssh-listen 0.0.0.0:2222`, with the engine's socket and the docker CLI
// mounted. Host users, sshd's config and root's keys change inside that container only.
import { copyFile, mkdir, readFile, stat, writeFile, chmod } from 'node:fs/promises';
import { existsSync, realpathSync } from 'node:fs';
import { join } from 'node:path';
import { capture, sleep, timed, type TimedResult } from './proc.js';
import { keyOnlySsh } from '../../test/support/ssh-client.js';
import { engineSocketPath } from './engine-raw.js';

export const DEVICE_BASE_IMAGE = 'skiff-core-test/debian-sshd:bookworm';

export interface Device {
  name: string;
  image: string;
  sshPort: number;
  gatewayPort: number;
  ssh(port: number, user: string, command: string): Promise<TimedResult>;
}

export interface DeviceOptions {
  repoRoot: string;
  prefix: string;
  tmp: string;
  /** Container the mapped user `core` logs in to (created by the device's daemon). */
  container: string;
  containerImage: string;
  dockerCli: string;
  log: (line: string) => void;
}

/** Why the device cannot be made here, or undefined when it can. */
export async function deviceUnavailable(repoRoot: string): Promise<string | undefined> {
  if (!existsSync(join(repoRoot, 'Dockerfile.test'))) return 'Dockerfile.test is missing';
  for (const tool of ['ssh', 'ssh-keygen', 'make', 'cc']) {
    const r = await timed('sh', ['-c', `command -v ${tool}`]).catch(() => undefined);
    if (r?.code !== 0) return `${tool} is not installed (bash scripts/provision.sh installs it)`;
  }
  const img = await timed('docker', ['image', 'inspect', '--format', '{{.Id}}', DEVICE_BASE_IMAGE]);
  if (img.code !== 0) return `${DEVICE_BASE_IMAGE} is missing (bash scripts/provision.sh builds it)`;
  return undefined;
}

function sshArgs(keyPath: string, port: number, user: string, command: string): string[] {
  return [...keyOnlySsh(keyPath), '-p', String(port), '-T', `${user}@127.0.0.1`, '--', command];
}

export async function startDevice(o: DeviceOptions): Promise<Device> {
  const work = join(o.tmp, 'device');
  const ctx = join(work, 'ctx');
  await mkdir(join(ctx, 'root'), { recursive: true });
  o.log('device: make install into a build context');
  // The launcher is compiled outside dist/ (LAUNCHER=...) so this never races a `make` there.
  await capture(
    'make',
    ['-s', '-C', o.repoRoot, 'install', `DESTDIR=${join(ctx, 'root')}`, `LAUNCHER=${join(work, 'skiff-core-launcher')}`],
    { timeoutMs: 180_000 },
  );
  await copyFile(process.execPath, join(ctx, 'node'));
  await copyFile(join(o.repoRoot, 'Dockerfile.test'), join(ctx, 'Dockerfile'));
  const sock = engineSocketPath();
  const dockerGid = (await stat(sock)).gid;
  const image = `${o.prefix}-device:1`;
  o.log(`device: docker build ${image}`);
  await capture('docker', ['build', '-q', '--build-arg', `DOCKER_GID=${dockerGid}`, '-t', image, ctx], {
    timeoutMs: 600_000,
    env: { ...process.env, DOCKER_BUILDKIT: '0' },
  });

  const keyPath = join(work, 'id_ed25519');
  await capture('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', `${o.prefix}-bench`, '-f', keyPath]);
  const pub = (await readFile(`${keyPath}.pub`, 'utf8')).trim();

  // Put in place by the device's prepare hook (run as root before its daemon starts).
  const etc = join(work, 'etc');
  await mkdir(etc, { recursive: true });
  await writeFile(join(etc, 'authorized_keys'), `${pub}\n`);
  await writeFile(
    join(etc, 'config.yaml'),
    [
      'containers:',
      `  ${o.container}:`,
      `    image: ${o.containerImage}`,
      '    cmd: ["sleep", "infinity"]',
      '    startAfterCreate: true',
      'users:',
      '  core:',
      `    container: ${o.container}`,
      '    auth:',
      '      copyRootKeys: true',
      `      sshKeys: [${JSON.stringify(pub)}]`,
      '',
    ].join('\n'),
  );
  const prepare = join(etc, 'prepare.sh');
  await writeFile(
    prepare,
    [
      '#!/bin/sh',
      'set -e',
      'install -m 600 /etc/skiff-core-test/authorized_keys /root/.ssh/authorized_keys',
      'install -D -m 644 /etc/skiff-core-test/config.yaml /mnt/persist/skiff/core/config.yaml',
      '',
    ].join('\n'),
  );
  await chmod(prepare, 0o755);

  const name = `${o.prefix}-device`;
  o.log(`device: docker run ${name}`);
  await capture('docker', [
    'run',
    '-d',
    '--name',
    name,
    '--hostname',
    'device',
    '--init',
    // As on a device: the daemon ends a disconnected session's processes by their host PID.
    '--pid',
    'host',
    '-v',
    `${sock}:/var/run/docker.sock`,
    '-v',
    `${realpathSync(o.dockerCli)}:/usr/local/bin/docker:ro`,
    '-v',
    `${etc}:/etc/skiff-core-test:ro`,
    '-p',
    '127.0.0.1::22',
    '-p',
    '127.0.0.1::2222',
    '-e',
    'SKIFF_DEVICE_DAEMON_ARGS=--ssh-listen 0.0.0.0:2222',
    image,
  ]);
  const port = async (p: number) => {
    const text = await capture('docker', ['port', name, `${p}/tcp`]);
    const m = /:(\d+)\s*$/m.exec(text.split('\n')[0] ?? '');
    if (!m?.[1]) throw new Error(`device port ${p} is not published: ${text}`);
    return Number(m[1]);
  };
  const device: Device = {
    name,
    image,
    sshPort: await port(22),
    gatewayPort: await port(2222),
    ssh: (p, user, command) => timed('ssh', sshArgs(keyPath, p, user, command), { timeoutMs: 60_000 }),
  };
  return device;
}

/** Retries `ssh … true` until it succeeds; returns why not after the timeout. */
export async function waitForSsh(device: Device, port: number, user: string, timeoutMs: number): Promise<string | undefined> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  while (Date.now() < deadline) {
    const r = await device
      .ssh(port, user, 'true')
      .catch((e: unknown) => ({ code: -1, stderr: String(e) }) as Pick<TimedResult, 'code' | 'stderr'>);
    if (r.code === 0) return undefined;
    last = `exit ${r.code}: ${r.stderr.trim().slice(-300)}`;
    await sleep(300);
  }
  return last || 'timed out';
}
