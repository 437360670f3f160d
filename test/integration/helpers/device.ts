// The end-to-end "device": a container built from Dockerfile.test (Debian, OpenSSH configured like
// SkiffOS, Node.js, skiff-core installed by `make install`) that runs `skiff-core daemon
// --create-users` and sshd, with the engine's socket mounted. Host users, sshd and root's keys
// change inside it only; the machine running the tests is never touched.
//
//   const dev = await startDevice({ prefix, config: yaml });
//   const r = await dev.ssh('core', 'exit 42');          // the real OpenSSH client
//   await dev.stop();
//
// The image is built from a staged context (the test runner's node binary, the output of
// `make install DESTDIR=<ctx>/root`, Dockerfile.test) and cached by a hash of that context, so
// only a changed bundle, launcher or Dockerfile rebuilds it.
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream, existsSync } from 'node:fs';
import { copyFile, lstat, mkdir, mkdtemp, readdir, readFile, readlink, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import tar from 'tar-stream';
import { keyOnlySsh } from '../../support/ssh-client.js';
import { dockerStatus, testDocker, waitFor } from './engine.js';

export const REPO_ROOT = fileURLToPath(new URL('../../../', import.meta.url));
/** Made by scripts/provision.sh (section 5). */
export const DEVICE_BASE_IMAGE = 'skiff-core-test/debian-sshd:bookworm';
/** Built here from Dockerfile.test; the tag is a hash of the build context. */
export const DEVICE_REPO = 'skiff-core-test/device';
const BUNDLE = join(REPO_ROOT, 'dist', 'skiff-core.mjs');

export interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: Buffer;
  stderr: string;
}

export interface ExecResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

export interface SshOptions {
  /** Written to the client's stdin, which is then closed; without it stdin is /dev/null. */
  input?: Buffer | string;
  /** `ssh -tt`: a remote PTY even without a local terminal. */
  tty?: boolean;
  timeoutMs?: number;
  /** Extra ssh options before the destination. */
  args?: string[];
  /** Extra environment of the ssh client (SSH_AUTH_SOCK…). */
  env?: NodeJS.ProcessEnv;
}

export interface DeviceOptions {
  /** uniquePrefix(): the device is `${prefix}-device`. */
  prefix: string;
  /** /mnt/persist/skiff/core/config.yaml (YAML). */
  config: string;
  /** Environment of the device (and so of the daemon). */
  extraEnv?: Record<string, string>;
  /** Extra files to put in the device before it starts: absolute path → content. */
  files?: Record<string, string | Buffer>;
  /** Shell script run as root at boot, before the daemon starts (e.g. to plant pre-existing users). */
  prepare?: string;
  /** Extra bind mounts (`HOST:DEVICE[:ro]`), e.g. build contexts named in the config. */
  binds?: string[];
  /** Extra arguments of `skiff-core daemon` (after --create-users). */
  daemonArgs?: string[];
}

export interface Device {
  name: string;
  sshPort: number;
  keyPath: string;
  /** Temporary directory of this device on the test machine (the key pair lives here). */
  dir: string;
  /** `docker exec` into the device (`sh -c CMD` for a string). */
  exec(cmd: string | string[], options?: { user?: string; input?: Buffer | string; timeoutMs?: number }): Promise<ExecResult>;
  /** The daemon's log (/var/log/skiff-core.log) and the container's own output (sshd -e). */
  logs(): Promise<string>;
  ssh(user: string, command?: string, options?: SshOptions): Promise<RunResult>;
  /** An ssh client process, for tests that kill it or talk to it. */
  spawnSsh(user: string, command?: string, options?: Omit<SshOptions, 'input' | 'timeoutMs'>): ChildProcess;
  /** `sftp -b -`: runs the batch commands (put/get/ls...). */
  sftp(user: string, batch: string, options?: { timeoutMs?: number }): Promise<RunResult>;
  /** `scp ARGS...`; name remote paths with `remote(user, path)`. */
  scp(args: string[], options?: { timeoutMs?: number }): Promise<RunResult>;
  remote(user: string, path: string): string;
  stop(): Promise<void>;
}

/** Runs a program to completion, collecting its output. */
export function run(
  cmd: string,
  args: string[],
  options: { input?: Buffer | string; timeoutMs?: number; env?: NodeJS.ProcessEnv } = {},
): Promise<RunResult> {
  const timeoutMs = options.timeoutMs ?? 120_000;
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, {
      stdio: [options.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
      env: { ...process.env, ...options.env },
    });
    const out: Buffer[] = [];
    let err = '';
    child.stdout!.on('data', (c: Buffer) => out.push(c));
    child.stderr!.on('data', (c: Buffer) => (err += c.toString()));
    if (options.input !== undefined) {
      child.stdin!.on('error', () => undefined); // the far side may exit before reading it all
      child.stdin!.end(options.input);
    }
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${cmd} ${args.join(' ')}: still running after ${timeoutMs} ms\nstderr: ${err.slice(-2000)}`));
    }, timeoutMs);
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout: Buffer.concat(out), stderr: err });
    });
  });
}

function engineSocket(): string {
  const host = process.env['DOCKER_HOST'];
  if (host?.startsWith('unix://')) return host.slice('unix://'.length);
  return '/var/run/docker.sock';
}

/** sha256 of every file, link and directory under `dir` (paths, modes, contents). */
async function hashTree(dir: string, hash = createHash('sha256'), rel = ''): Promise<ReturnType<typeof createHash>> {
  const entries = (await readdir(join(dir, rel))).sort();
  for (const name of entries) {
    const path = join(rel, name);
    const full = join(dir, path);
    const st = await lstat(full);
    hash.update(`${path}\0${st.mode}\0`);
    if (st.isDirectory()) await hashTree(dir, hash, path);
    else if (st.isSymbolicLink()) hash.update(`->${await readlink(full)}\0`);
    else {
      for await (const chunk of createReadStream(full)) hash.update(chunk as Buffer);
      hash.update('\0');
    }
  }
  return hash;
}

let cachedImage: Promise<string> | undefined;

/**
 * The device image for the current bundle and launcher: stages the build context, and builds it
 * unless an image with the same context hash exists. Built once per test process.
 */
export function deviceImage(): Promise<string> {
  if (!cachedImage) {
    cachedImage = buildDeviceImage();
    // A failure is not remembered (the next caller tries again).
    cachedImage.catch(() => (cachedImage = undefined));
  }
  return cachedImage;
}

async function buildDeviceImage(): Promise<string> {
  if (!existsSync(BUNDLE)) throw new Error(`${BUNDLE} is missing: run "npm run build" first (npm test does)`);
  const docker = testDocker();
  try {
    await docker.getImage(DEVICE_BASE_IMAGE).inspect();
  } catch (err) {
    if (dockerStatus(err) === 404)
      throw new Error(`${DEVICE_BASE_IMAGE} is missing: run "bash scripts/provision.sh" as root (it builds the device's base image)`, {
        cause: err,
      });
    throw err;
  }
  const work = await mkdtemp(join(tmpdir(), 'skiff-core-device-'));
  try {
    const ctx = join(work, 'ctx');
    await mkdir(join(ctx, 'root'), { recursive: true });
    // The launcher is compiled outside the repository's dist/ (LAUNCHER=...), so this never races
    // with someone else's `make` there; the installed layout is the Makefile's.
    const made = await run(
      'make',
      ['-s', '-C', REPO_ROOT, 'install', `DESTDIR=${join(ctx, 'root')}`, `LAUNCHER=${join(work, 'skiff-core-launcher')}`],
      { timeoutMs: 120_000 },
    );
    if (made.code !== 0) throw new Error(`make install failed (${made.code}):\n${made.stdout.toString()}${made.stderr}`);
    await copyFile(process.execPath, join(ctx, 'node'));
    await copyFile(join(REPO_ROOT, 'Dockerfile.test'), join(ctx, 'Dockerfile'));
    const dockerGid = (await stat(engineSocket())).gid;
    const hash = (await hashTree(ctx)).update(`DOCKER_GID=${dockerGid}`).digest('hex').slice(0, 16);
    const tag = `${DEVICE_REPO}:${hash}`;
    try {
      await docker.getImage(tag).inspect();
      return tag;
    } catch (err) {
      if (dockerStatus(err) !== 404) throw err;
    }
    const built = await run('docker', ['build', '-q', '--build-arg', `DOCKER_GID=${dockerGid}`, '-t', tag, ctx], {
      timeoutMs: 300_000,
      env: { DOCKER_BUILDKIT: '0' },
    });
    if (built.code !== 0) throw new Error(`docker build of the device image failed (${built.code}):\n${built.stderr}`);
    // Device images of older bundles are dead weight. Only those over an hour old go (another
    // checkout may be testing with a recent one), and never forcibly (one may still be running).
    const hourAgo = Date.now() / 1000 - 3600;
    for (const img of await docker.listImages({ filters: { reference: [DEVICE_REPO] } })) {
      if (img.Created > hourAgo) continue;
      for (const ref of img.RepoTags ?? []) {
        if (ref.startsWith(`${DEVICE_REPO}:`) && ref !== tag)
          await docker
            .getImage(ref)
            .remove()
            .catch(() => undefined);
      }
    }
    return tag;
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

function tarOf(files: Record<string, string | Buffer>): Promise<Buffer> {
  const pack = tar.pack();
  for (const [path, content] of Object.entries(files)) {
    if (!path.startsWith('/')) throw new Error(`device file paths must be absolute: ${path}`);
    const mode = path.endsWith('.sh') ? 0o755 : path.startsWith('/root/') ? 0o600 : 0o644;
    pack.entry({ name: path.slice(1), mode, uid: 0, gid: 0, mtime: new Date() }, content);
  }
  pack.finalize();
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    pack.on('data', (c: unknown) => chunks.push(c as Buffer));
    pack.on('end', () => resolve(Buffer.concat(chunks)));
    pack.on('error', reject);
  });
}

export async function startDevice(options: DeviceOptions): Promise<Device> {
  const docker = testDocker();
  const image = await deviceImage();
  const name = `${options.prefix}-device`;
  const dir = await mkdtemp(join(tmpdir(), `${options.prefix}-device-`));
  const keyPath = join(dir, 'id_ed25519');
  const keygen = await run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', `${options.prefix}-test`, '-f', keyPath]);
  if (keygen.code !== 0) throw new Error(`ssh-keygen failed: ${keygen.stderr}`);

  const files: Record<string, string | Buffer> = {
    '/root/.ssh/authorized_keys': await readFile(`${keyPath}.pub`, 'utf8'),
    '/mnt/persist/skiff/core/config.yaml': options.config,
    ...options.files,
  };
  if (options.prepare !== undefined) files['/etc/skiff-core-test/prepare.sh'] = `#!/bin/sh\nset -e\n${options.prepare}\n`;

  const env = Object.entries({
    SKIFF_CORE_LOG_LEVEL: 'debug',
    ...(options.daemonArgs ? { SKIFF_DEVICE_DAEMON_ARGS: options.daemonArgs.join(' ') } : {}),
    ...options.extraEnv,
  }).map(([k, v]) => `${k}=${v}`);
  const sock = engineSocket();
  const container = await docker.createContainer({
    name,
    Image: image,
    Hostname: 'device',
    Env: env,
    ExposedPorts: { '22/tcp': {} },
    HostConfig: {
      Init: true,
      // As on a real device, the daemon sees every container's processes under the host's PIDs
      // (it ends a disconnected session's processes by the exec's host PID).
      PidMode: 'host',
      // A device's daemon is root with every capability: it reaches a container's files through
      // /proc/PID/root (agent sockets), which takes CAP_SYS_PTRACE or every capability it has.
      CapAdd: ['SYS_PTRACE'],
      Binds: [`${sock}:/var/run/docker.sock`, ...(options.binds ?? [])],
      PortBindings: { '22/tcp': [{ HostIp: '127.0.0.1', HostPort: '' }] },
    },
  });
  const stop = async () => {
    await container.remove({ force: true, v: true }).catch((err: unknown) => {
      if (dockerStatus(err) !== 404) throw err;
    });
    await rm(dir, { recursive: true, force: true });
  };

  try {
    await container.putArchive(await tarOf(files), { path: '/' });
    await container.start();
    const info = await container.inspect();
    const binding = info.NetworkSettings.Ports['22/tcp']?.[0]?.HostPort;
    if (!binding) throw new Error(`device ${name}: port 22 is not published (${JSON.stringify(info.NetworkSettings.Ports)})`);
    const sshPort = Number(binding);
    const base = keyOnlySsh(keyPath);

    const exec: Device['exec'] = async (cmd, o = {}) => {
      const argv = typeof cmd === 'string' ? ['sh', '-c', cmd] : cmd;
      const r = await run('docker', ['exec', ...(o.input !== undefined ? ['-i'] : []), ...(o.user ? ['-u', o.user] : []), name, ...argv], {
        ...(o.input !== undefined ? { input: o.input } : {}),
        timeoutMs: o.timeoutMs ?? 60_000,
      });
      return { code: r.code, stdout: r.stdout.toString(), stderr: r.stderr };
    };
    const sshArgs = (user: string, command: string | undefined, o: Omit<SshOptions, 'input' | 'timeoutMs'>) => [
      ...base,
      '-p',
      String(sshPort),
      ...(o.tty ? ['-tt'] : ['-T']),
      ...(o.args ?? []),
      `${user}@127.0.0.1`,
      ...(command !== undefined ? ['--', command] : []),
    ];

    const device: Device = {
      name,
      sshPort,
      keyPath,
      dir,
      exec,
      async logs() {
        const daemonLog = await exec('cat /var/log/skiff-core.log').catch((e: unknown) => ({
          stdout: `(cannot read: ${String(e)})`,
          stderr: '',
        }));
        const own = await run('docker', ['logs', '--tail', '200', name]).catch(() => undefined);
        return `---- /var/log/skiff-core.log ----\n${daemonLog.stdout}${daemonLog.stderr}\n---- docker logs ${name} (sshd) ----\n${own ? own.stdout.toString() + own.stderr : ''}`;
      },
      ssh(user, command, o = {}) {
        return run('ssh', sshArgs(user, command, o), {
          ...(o.input !== undefined ? { input: o.input } : {}),
          ...(o.env ? { env: o.env } : {}),
          timeoutMs: o.timeoutMs ?? 120_000,
        });
      },
      spawnSsh(user, command, o = {}) {
        return spawn('ssh', sshArgs(user, command, o), { stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env, ...o.env } });
      },
      sftp(user, batch, o = {}) {
        return run('sftp', [...base, '-P', String(sshPort), '-b', '-', `${user}@127.0.0.1`], {
          input: batch,
          timeoutMs: o.timeoutMs ?? 120_000,
        });
      },
      scp(args, o = {}) {
        return run('scp', [...base, '-P', String(sshPort), ...args], { timeoutMs: o.timeoutMs ?? 120_000 });
      },
      remote: (user, path) => `${user}@127.0.0.1:${path}`,
      stop,
    };

    // sshd is up once root (bash, the test's key in /root/.ssh) gets in.
    await waitFor(
      async () => {
        const state = await container.inspect();
        if (!state.State.Running) throw new Error(`device exited (${state.State.ExitCode}): ${(await device.logs()).slice(-3000)}`);
        const r = await device.ssh('root', 'true', { timeoutMs: 15_000 });
        if (r.code !== 0) throw new Error(`ssh root@device: ${r.code} ${r.stderr.trim()}`);
        return true;
      },
      { what: `sshd in ${name} to accept root's key`, timeoutMs: 60_000, intervalMs: 300 },
    );
    return device;
  } catch (err) {
    const logs = await run('docker', ['logs', '--tail', '100', name]).catch(() => undefined);
    await stop().catch(() => undefined);
    throw new Error(`${(err as Error).message}${logs ? `\ndevice output:\n${logs.stdout.toString()}${logs.stderr}` : ''}`, { cause: err });
  }
}
