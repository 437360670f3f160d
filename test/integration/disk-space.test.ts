// Disk space against a real engine whose data root is a 150 MB tmpfs (a private engine the test
// starts and removes): below storage.minFree nothing is pulled, built or snapshotted, with the
// reason in status and at a login; a build or a pull that fills the disk halfway leaves the old
// container running, and the daemon recovers once there is room.
import { execFileSync } from 'node:child_process';
import { mkdir, rename, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { daemonPaths, startDaemonProcess, type DaemonPaths, type DaemonProcess } from './helpers/daemon.js';
import { BUSYBOX_IMAGE, integrationSkipReason, uniquePrefix } from './helpers/engine.js';
import { realLogin } from './helpers/hostile.js';
import { privateEngine, type PrivateEngine } from './helpers/private-engine.js';

describe.skipIf(integrationSkipReason())('disk space (private engine on a 150 MB tmpfs)', () => {
  const prefix = uniquePrefix();
  const dir = join(tmpdir(), `${prefix}-disk`);
  const dataRoot = join(dir, 'data');
  let engine: PrivateEngine;
  const name = `${prefix}-c`;
  const built = `${prefix}/built:1`;
  let paths: DaemonPaths;
  let daemon: DaemonProcess;
  const docker = (...args: string[]) => execFileSync('docker', args, { env: { ...process.env, DOCKER_HOST: engine.host } }).toString();

  const config = (minFree: string, extra = '') =>
    `containers:\n  ${name}:\n    image: ${BUSYBOX_IMAGE}\n    cmd: ["sleep", "1000000"]\n    startAfterCreate: true\n${extra}users:\n  root:\n    container: ${name}\nstorage:\n  minFree: ${minFree}\n`;
  async function edit(yaml: string) {
    await writeFile(`${paths.config}.swp`, yaml);
    await rename(`${paths.config}.swp`, paths.config);
  }

  beforeAll(async () => {
    engine = await privateEngine(dir);
    await mkdir(dataRoot, { recursive: true });
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=150m', 'tmpfs', dataRoot]);
    await engine.start();
    engine.load(BUSYBOX_IMAGE);
    paths = daemonPaths(dir);
    await mkdir(join(dir, 'persist'), { recursive: true });
    await writeFile(paths.config, config('10MB'));
    daemon = await startDaemonProcess(paths, { DOCKER_HOST: engine.host });
    await daemon.until((s) => s.containers.some((c) => c.name === name && c.state === 'running'), `${name} running`, 60_000);
  }, 180_000);

  afterAll(async () => {
    await daemon?.stop('SIGKILL');
    await engine?.stop();
    try {
      execFileSync('umount', [dataRoot]);
    } catch {
      // already unmounted
    }
    await engine?.destroy();
  });

  it('below storage.minFree: no snapshot is taken and the running container is left alone, with the reason in status', async () => {
    const before = docker('inspect', '-f', '{{.Id}}', name).trim();
    docker('exec', name, 'sh', '-c', 'echo mine > /root/file');
    await edit(config('1GB', '    env: ["EDITION=2"]\n'));
    const s = await daemon.until(
      (x) => Boolean(x.containers.find((c) => c.name === name)?.problem?.includes('not enough disk')),
      'the refusal in status',
    );
    expect(s.containers.find((c) => c.name === name)!.problem).toMatch(
      new RegExp(
        `^not enough disk for a snapshot of ${name}: [\\d.]+ (MB|KB) free of 157 MB where the engine keeps its data \\(${dataRoot}\\), below storage.minFree \\(1GB\\)`,
      ),
    );
    const human = await import('./helpers/cli.js').then(({ runCli }) =>
      runCli(['--config', paths.config, 'status', '--run-dir', paths.runDir], { env: { DOCKER_HOST: engine.host } }),
    );
    expect(human.stdout).toContain(`container ${name}: not enough disk for a snapshot of ${name}`);
    expect(human.code).toBe(1);
    expect(docker('inspect', '-f', '{{.Id}} {{.State.Running}}', name).trim()).toBe(`${before} true`);
    expect(docker('images', '-q', `skiff-core-snapshot/${name}`).trim()).toBe('');
    expect(docker('exec', name, 'cat', '/root/file')).toBe('mine\n');
  });

  it('below storage.minFree: no build starts, and a login waiting for the container says why', async () => {
    const context = join(dir, 'ctx');
    await mkdir(context, { recursive: true });
    await writeFile(join(context, 'Dockerfile'), `FROM ${BUSYBOX_IMAGE}\nRUN echo built > /built\n`);
    const other = `${prefix}-d`;
    await edit(
      `${config('1GB', '    env: ["EDITION=2"]\n').replace('users:', `  ${other}:\n    image: ${built}\n    cmd: ["sleep", "1000000"]\n    startAfterCreate: true\nusers:`).replace(`container: ${name}`, `container: ${other}`)}images:\n  ${built}:\n    build:\n      source: ${context}\n`,
    );
    const s = await daemon.until((x) => x.images.some((i) => i.ref === built && i.state === 'failed'), 'the build to be refused');
    expect(s.images.find((i) => i.ref === built)!.message).toContain(`not enough disk for obtaining image ${built}`);
    const login = await realLogin(paths.runDir, 'root', 'true');
    expect(login.code).not.toBe(0);
    expect(login.stderr).toContain('not enough disk');
  }, 120_000);

  it('a build that runs out of disk halfway leaves the old container running; with room again it converges', async () => {
    const context = join(dir, 'big');
    await mkdir(context, { recursive: true });
    await writeFile(join(context, 'Dockerfile'), `FROM ${BUSYBOX_IMAGE}\nRUN head -c 200000000 /dev/zero > /big\n`);
    const big = `${prefix}/big:1`;
    const before = docker('inspect', '-f', '{{.Id}}', name).trim();
    await edit(
      `${config('10MB').replace(`image: ${BUSYBOX_IMAGE}`, `image: ${big}`)}images:\n  ${big}:\n    build:\n      source: ${context}\n`,
    );
    const s = await daemon.until(
      (x) => x.images.some((i) => i.ref === big && i.state === 'failed'),
      'the build to fail for lack of space',
      120_000,
    );
    // head's own error may not make it into the build output; the step failing is what counts.
    expect(s.images.find((i) => i.ref === big)!.message).toMatch(/no space left on device|returned a non-zero code/i);
    expect(docker('inspect', '-f', '{{.Id}} {{.State.Running}}', name).trim()).toBe(`${before} true`);
    expect(docker('exec', name, 'cat', '/root/file')).toBe('mine\n');

    // Room again: the next attempt (a reload, or the daemon's own retry) builds and replaces.
    execFileSync('mount', ['-o', 'remount,size=800m', dataRoot]);
    await edit(
      `${config('10MB').replace(`image: ${BUSYBOX_IMAGE}`, `image: ${big}`)}images:\n  ${big}:\n    build:\n      source: ${context}\n`.replace(
        'startAfterCreate: true',
        'startAfterCreate: true\n    tty: false',
      ),
    );
    await daemon.until(
      (x) =>
        x.images.some((i) => i.ref === big && i.state === 'present') &&
        x.containers.some((c) => c.name === name && c.state === 'running' && !c.problem),
      'convergence once there is room',
      180_000,
    );
    expect(docker('exec', name, 'sh', '-c', 'test -f /big && echo has-big').trim()).toBe('has-big');
  }, 400_000);

  it('a pull that runs out of disk halfway leaves the running container alone; with room again it converges', async () => {
    // 250 MB of zeros: a small download that unpacks to more than the disk has left.
    const registry = await engine.registry();
    const pulled = await registry.pushBuilt(`FROM ${BUSYBOX_IMAGE}\nRUN head -c 250000000 /dev/zero > /zeros\n`, `${prefix}/zeros:1`);
    // 60 MB free: above storage.minFree (10MB), so the pull starts, and then the disk fills.
    const usedMb = Number(execFileSync('df', ['-m', '--output=used', dataRoot]).toString().split('\n')[1]);
    execFileSync('mount', ['-o', `remount,size=${usedMb + 60}m`, dataRoot]);
    const before = docker('inspect', '-f', '{{.Id}}', name).trim();
    docker('exec', name, 'sh', '-c', 'echo still-here > /root/pulled-file');
    const wanting = config('10MB').replace(/image: \S+/, `image: ${pulled}`);
    await edit(wanting);
    const s = await daemon.until(
      (x) => x.images.some((i) => i.ref === pulled && i.state === 'failed'),
      'the pull to fail for lack of space',
      120_000,
    );
    expect(s.images.find((i) => i.ref === pulled)!.message).toMatch(/no space left on device/i);
    expect(docker('inspect', '-f', '{{.Id}} {{.State.Running}}', name).trim()).toBe(`${before} true`);
    expect(docker('exec', name, 'cat', '/root/pulled-file')).toBe('still-here\n');
    expect(docker('images', '-q', pulled).trim()).toBe('');

    execFileSync('mount', ['-o', `remount,size=${usedMb + 700}m`, dataRoot]);
    await edit(wanting.replace('startAfterCreate: true', 'startAfterCreate: true\n    tty: false'));
    await daemon.until(
      (x) =>
        x.images.some((i) => i.ref === pulled && i.state === 'present') &&
        x.containers.some((c) => c.name === name && c.state === 'running' && !c.problem),
      'convergence once there is room',
      180_000,
    );
    expect(docker('exec', name, 'wc', '-c', '/zeros')).toMatch(/^\s*250000000 \/zeros/);
  }, 400_000);
});
