// The engine restarted under the daemon (a private engine the test starts and stops): in the
// middle of a build, a pull and a replacement, and with a session attached. Afterwards the daemon
// converges with nothing duplicated and nothing lost, and the session ended with a message.
import { execFileSync } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { StatusSnapshot } from '../../src/daemon/status.js';
import { startDaemonProcess, type DaemonPaths, type DaemonProcess } from './helpers/daemon.js';
import { BUSYBOX_IMAGE, integrationSkipReason, uniquePrefix, waitFor } from './helpers/engine.js';
import { realLogin } from './helpers/hostile.js';
import { privateEngine, type PrivateEngine } from './helpers/private-engine.js';

describe.skipIf(integrationSkipReason())('engine restarts under the daemon (private engine)', () => {
  const prefix = uniquePrefix();
  let dir: string;
  let engine: PrivateEngine;
  let daemon: DaemonProcess | undefined;
  let paths: DaemonPaths;
  // With a timeout: a synchronous call to a wedged engine would block the test's own timers.
  const docker = (...args: string[]) =>
    execFileSync('docker', args, { env: { ...process.env, DOCKER_HOST: engine.host }, timeout: 15_000 }).toString();
  const ours = (name: string) =>
    docker('ps', '-a', '--format', '{{.Names}}')
      .split('\n')
      .filter((n) => n === name || n.startsWith(`${name}-replaced-`));
  const running = (s: StatusSnapshot, name: string) =>
    s.containers.some((c) => c.name === name && c.state === 'running' && !c.activity && !c.problem);

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), `${prefix}-`));
    engine = await privateEngine(join(tmpdir(), `${prefix}-dockerd`));
    await engine.start();
    engine.load(BUSYBOX_IMAGE);
  }, 180_000);
  afterEach(async () => {
    await daemon?.stop('SIGKILL');
    daemon = undefined;
  });
  afterAll(async () => {
    await engine?.destroy();
    await rm(dir, { recursive: true, force: true });
  });

  async function start(name: string, yaml: string): Promise<void> {
    paths = {
      config: join(dir, name, 'config.yaml'),
      runDir: join(dir, name, 'run'),
      defconfig: join(dir, name, 'defconfig.yaml'),
      workDir: join(dir, name, 'work'),
    };
    await mkdir(join(dir, name), { recursive: true });
    await writeFile(paths.config, yaml);
    daemon = await startDaemonProcess(paths, { DOCKER_HOST: engine.host });
  }
  const container = (name: string, image: string, extra = '') =>
    `  ${name}:\n    image: ${image}\n    cmd: ["sleep", "1000000"]\n    startAfterCreate: true\n    restartPolicy: always\n${extra}`;

  it('in the middle of a build: converges once the engine is back, with one image and one container', async () => {
    const name = `${prefix}-b`;
    const image = `${prefix}/slow:1`;
    const context = join(dir, 'slow');
    await mkdir(context, { recursive: true });
    await writeFile(join(context, 'Dockerfile'), `FROM ${BUSYBOX_IMAGE}\nRUN sleep 4 && echo built > /built\n`);
    await start('build', `containers:\n${container(name, image)}images:\n  ${image}:\n    build:\n      source: ${context}\n`);
    await daemon!.until((s) => s.images.some((i) => i.ref === image && i.state === 'building'), 'the build to start');
    await engine.stop();
    await daemon!.until((s) => !s.engine.reachable, 'the daemon to see the engine gone');
    await engine.start();
    await daemon!.until((s) => running(s, name), `${name} running after the engine came back`, 180_000);
    expect(ours(name)).toEqual([name]);
    expect(docker('exec', name, 'cat', '/built')).toBe('built\n');
    expect(docker('images', '-q', image).trim().split('\n')).toHaveLength(1);
  }, 300_000);

  it('in the middle of a pull: converges once the engine is back, with the image and one container', async () => {
    const registry = await engine.registry();
    // A layer of its own (random bytes do not compress) so that the pull has something to fetch,
    // over a loopback slowed to about 3 Mbit/s: some 8 s of pulling.
    const image = await registry.pushBuilt(`FROM ${BUSYBOX_IMAGE}\nRUN head -c 3000000 /dev/urandom > /noise\n`, `${prefix}/noise:1`);
    registry.throttle(3000);
    const name = `${prefix}-p`;
    await start('pull', `containers:\n${container(name, image)}`);
    await daemon!.until((s) => s.images.some((i) => i.ref === image && (i.pull?.current ?? 0) > 0), 'the pull to be under way');
    await engine.stop();
    await daemon!.until((s) => !s.engine.reachable, 'the daemon to see the engine gone');
    await engine.start();
    await daemon!.until((s) => running(s, name), `${name} running after the engine came back`, 180_000);
    expect(ours(name)).toEqual([name]);
    expect(docker('exec', name, 'wc', '-c', '/noise')).toMatch(/^\s*3000000 \/noise/);
    expect(docker('images', '-q', image).trim().split('\n')).toHaveLength(1);
  }, 300_000);

  it('in the middle of a replacement: converges with one container that kept its files and took the change', async () => {
    const name = `${prefix}-r`;
    await start('replace', `containers:\n${container(name, BUSYBOX_IMAGE)}`);
    await daemon!.until((s) => running(s, name), `${name} running`);
    docker('exec', name, 'sh', '-c', 'echo kept > /kept');
    // An option change: the daemon snapshots the container, parks it, creates and starts the new
    // one and watches it stay up; the engine goes away while both exist.
    await writeFile(paths.config, `containers:\n${container(name, BUSYBOX_IMAGE, '    env: ["SKT_CHANGED=1"]\n')}`);
    await waitFor(() => ours(name).length > 1, { what: 'the old container parked beside the new one', timeoutMs: 60_000, intervalMs: 50 });
    await engine.stop();
    // Status tells at once, not at the next periodic relist (a minute).
    await daemon!.until((s) => !s.engine.reachable, 'the daemon to see the engine gone', 15_000);
    await engine.start();
    await daemon!.until(
      (s) => running(s, name) && ours(name).length === 1 && docker('inspect', '-f', '{{json .Config.Env}}', name).includes('SKT_CHANGED=1'),
      `${name} replaced after the engine came back`,
      180_000,
    );
    expect(ours(name)).toEqual([name]);
    expect(docker('exec', name, 'cat', '/kept')).toBe('kept\n');
  }, 300_000);

  it('with a session attached: the session ends with a message, and nothing of it is left running', async () => {
    const name = `${prefix}-s`;
    await start('session', `containers:\n${container(name, BUSYBOX_IMAGE)}users:\n  root:\n    container: ${name}\n`);
    await daemon!.until((s) => running(s, name), `${name} running`);
    const session = realLogin(paths.runDir, 'root', 'echo started; sleep 4321');
    await waitFor(() => docker('top', name).includes('sleep 4321'), { what: 'the session running', timeoutMs: 30_000 });
    await engine.stop();
    const ended = await session;
    expect(ended.code, JSON.stringify(ended)).not.toBe(0);
    expect(ended.stdout, JSON.stringify(ended)).toBe('started\n');
    expect(ended.stderr, JSON.stringify(ended)).toMatch(/^skiff-core: .+/m);
    await engine.start();
    await daemon!.until((s) => running(s, name), `${name} running again`, 120_000);
    expect(docker('top', name)).not.toContain('sleep 4321');
    expect(ours(name)).toEqual([name]);
    // And a new login works.
    const again = await realLogin(paths.runDir, 'root', 'echo back');
    expect(again.stdout).toBe('back\n');
  }, 300_000);
});
