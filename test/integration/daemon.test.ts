// `skiff-core daemon` as systemd runs it, against the real engine: it copes with edits, bad
// edits, Docker going away and being killed, and `status` tells what is going on.
import { execFileSync, spawnSync } from 'node:child_process';
import { get as httpGet } from 'node:http';
import { mkdir, mkdtemp, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { CRASH_LOOP_WINDOW_MS } from '../../src/daemon/health.js';
import type { StatusSnapshot } from '../../src/daemon/status.js';
import { runCli } from './helpers/cli.js';
import { daemonPaths, startDaemonProcess, type DaemonPaths, type DaemonProcess } from './helpers/daemon.js';
import {
  BUSYBOX_IMAGE,
  cleanupByPrefix,
  integrationSkipReason,
  testDocker,
  TEST_REGISTRY,
  uniquePrefix,
  waitFor,
} from './helpers/engine.js';
import { realLogin } from './helpers/hostile.js';
import { privateEngine, type PrivateEngine } from './helpers/private-engine.js';

const sleeper = (name: string, extra = '') =>
  `  ${name}:\n    image: ${BUSYBOX_IMAGE}\n    cmd: ["sleep", "1000000"]\n    startAfterCreate: true\n    restartPolicy: always\n${extra}`;

const running = (s: StatusSnapshot, name: string) => s.containers.some((c) => c.name === name && c.state === 'running');

describe.skipIf(integrationSkipReason())('skiff-core daemon (real engine)', () => {
  const docker = testDocker();
  const prefix = uniquePrefix();
  let dir: string;
  let paths: DaemonPaths;
  let daemon: DaemonProcess | undefined;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), `${prefix}-`));
  });
  afterEach(async () => {
    await daemon?.stop('SIGKILL');
    daemon = undefined;
  });
  afterAll(async () => {
    await cleanupByPrefix(prefix, docker);
    await rm(dir, { recursive: true, force: true });
  });

  const freshPaths = (name: string): DaemonPaths => daemonPaths(join(dir, name));

  /** Replace the config the way editors do: write a temp file, rename it over. */
  async function edit(yaml: string) {
    const temp = `${paths.config}.swp`;
    await writeFile(temp, yaml);
    await rename(temp, paths.config);
  }

  it('installs the default config on first start and converges it; edits apply without a restart', async () => {
    paths = freshPaths('first');
    const a = `${prefix}-a`;
    await import('node:fs/promises').then((fs) => fs.mkdir(join(dir, 'first'), { recursive: true }));
    await writeFile(paths.defconfig, `containers:\n${sleeper(a)}users:\n  core:\n    container: ${a}\n`);
    daemon = await startDaemonProcess(paths);
    const s = await daemon.until((x) => running(x, a), `${a} running`);
    expect(await readFile(paths.config, 'utf8')).toBe(await readFile(paths.defconfig, 'utf8'));
    expect(s.config).toMatchObject({ ok: true, path: paths.config, errors: [] });
    expect(s.engine.reachable).toBe(true);
    // SKIFF_CORE_USERS=lookup and no such account on this machine: status says why.
    expect(s.users).toEqual([{ name: 'core', container: a, ready: false, sessions: 0, problem: 'no host account' }]);
    const pid = daemon.child.pid;

    const b = `${prefix}-b`;
    await edit(`containers:\n${sleeper(a)}${sleeper(b)}`);
    await daemon.until((x) => running(x, b), `${b} running after the edit`);
    expect(daemon.child.pid).toBe(pid);
    expect((await docker.getContainer(b).inspect()).Config.Labels['io.skiff-core.managed']).toBe('true');

    // A container removed behind its back comes back.
    await docker.getContainer(b).remove({ force: true });
    await daemon.until((x) => running(x, b), `${b} recreated after docker rm`);

    // SIGTERM: the daemon exits 0 and leaves the containers running.
    expect(await daemon.stop('SIGTERM')).toBe(0);
    daemon = undefined;
    expect((await docker.getContainer(a).inspect()).State.Running).toBe(true);
    const offline = await runCli(['--config', paths.config, 'status', '--run-dir', paths.runDir]);
    expect(offline.code).toBe(1);
    expect(offline.stderr).toContain('the daemon is not running');
    expect(offline.stdout).toMatch(new RegExp(`${a} +running`));
  });

  it('keeps the last good config when an edit is invalid, shows the error, and converges once fixed', async () => {
    paths = freshPaths('invalid');
    const a = `${prefix}-keep`;
    await import('node:fs/promises').then((fs) => fs.mkdir(join(dir, 'invalid'), { recursive: true }));
    await writeFile(paths.defconfig, `containers:\n${sleeper(a)}`);
    daemon = await startDaemonProcess(paths);
    await daemon.until((x) => running(x, a), `${a} running`);
    const before = await docker.getContainer(a).inspect();

    const since = (Date.now() / 1000).toFixed(3);
    await edit(`containers:\n${sleeper(a)}  ${prefix}-new: [\n`);
    const bad = await daemon.until((x) => !x.config.ok, 'the invalid config to show in status');
    expect(bad.config.errors).toEqual([
      {
        file: paths.config,
        line: 8,
        col: 1,
        path: [],
        message: 'YAML syntax: Flow sequence in block collection must be sufficiently indented and end with a ]',
      },
    ]);
    expect(bad.config.loadedAt).toBeDefined();
    const human = await runCli(['--config', paths.config, 'status', '--run-dir', paths.runDir]);
    expect(human.stdout).toContain(`${paths.config}:8:1: : YAML syntax`);
    expect(human.stdout).toContain('still using the config loaded');
    expect(human.code).toBe(1);

    // An unknown key is refused the same way, with a hint.
    await edit(`containers:\n${sleeper(a, '    tmpfs: {}\n')}`);
    const hinted = await daemon.until((x) => x.config.errors.some((e) => e.message.includes('tmpFs')), 'the unknown-key error');
    expect(hinted.config.errors[0]).toMatchObject({ line: 7, col: 5, message: 'unknown key "tmpfs"; did you mean "tmpFs"?' });

    // Nothing was touched meanwhile: no engine event names our containers.
    await new Promise((r) => setTimeout(r, 1500));
    const events = execFileSync('docker', [
      'events',
      '--since',
      since,
      '--until',
      (Date.now() / 1000).toFixed(3),
      '--filter',
      `container=${a}`,
      '--format',
      '{{.Action}}',
    ])
      .toString()
      .trim();
    expect(events).toBe('');
    expect((await docker.getContainer(a).inspect()).Id).toBe(before.Id);

    const fixed = `${prefix}-fixed`;
    await edit(`containers:\n${sleeper(a)}${sleeper(fixed)}`);
    const good = await daemon.until((x) => x.config.ok && running(x, fixed), 'convergence after the fix');
    expect(good.config.errors).toEqual([]);
    expect(daemon.logs()).toContain('Config has errors; keeping the last good config');
  });

  it('reports a crash-looping container with its restart count and last log lines, without blocking others', async () => {
    paths = freshPaths('crash');
    const bad = `${prefix}-crash`;
    const good = `${prefix}-steady`;
    await import('node:fs/promises').then((fs) => fs.mkdir(join(dir, 'crash'), { recursive: true }));
    await writeFile(
      paths.defconfig,
      `containers:\n  ${bad}:\n    image: ${BUSYBOX_IMAGE}\n    cmd: ["sh", "-c", "echo boom from the app; exit 3"]\n    startAfterCreate: true\n    restartPolicy: always\n${sleeper(good)}`,
    );
    daemon = await startDaemonProcess(paths);
    const s = await daemon.until(
      (x) =>
        running(x, good) &&
        (x.containers.find((c) => c.name === bad)?.restartCount ?? 0) >= 2 &&
        Boolean(x.containers.find((c) => c.name === bad)?.lastLogs),
      'the crash loop to show in status',
      90_000,
    );
    const crash = s.containers.find((c) => c.name === bad)!;
    expect(crash.lastLogs).toContain('boom from the app');
    const human = await runCli(['--config', paths.config, 'status', '--run-dir', paths.runDir]);
    expect(human.stdout).toMatch(new RegExp(`${bad} +(restarting|running|exited) .*last log lines:`));
    expect(human.stdout).toContain('boom from the app');
    expect(human.code).toBe(1);
    // The exit status comes with the row and the reason; the steady container is not named.
    expect(human.stdout).toMatch(
      new RegExp(`not healthy:\\n  container ${bad}: (restarting|exited|crash loop: the engine restarted it \\d+ times)`),
    );
    expect(human.stdout).not.toContain(`container ${good}:`);
  });

  it('a login that arrives during a replacement waits for it and lands in the new container', async () => {
    paths = freshPaths('replacing');
    const name = `${prefix}-swap`;
    await mkdir(join(dir, 'replacing'), { recursive: true });
    const yaml = (edition: number) =>
      `containers:\n${sleeper(name, `    env: ["EDITION=${edition}"]\n`)}users:\n  root:\n    container: ${name}\n`;
    await writeFile(paths.defconfig, yaml(1));
    daemon = await startDaemonProcess(paths);
    await daemon.until((x) => running(x, name) && !x.containers.find((c) => c.name === name)?.activity, `${name} running`);
    // 100 MB of the container's own files make its snapshot take a moment: the login comes then.
    execFileSync('docker', ['exec', name, 'sh', '-c', 'head -c 100000000 /dev/urandom > /root/bulk']);
    await edit(yaml(2));
    await daemon.until(
      (x) => /^(snapshotting|replacing)/.test(x.containers.find((c) => c.name === name)?.activity ?? ''),
      'the replacement under way',
    );
    const login = await realLogin(paths.runDir, 'root', 'echo edition=$EDITION');
    expect(login, JSON.stringify(login)).toMatchObject({ code: 0, stdout: 'edition=2\n' });
    expect(login.stderr).toMatch(/snapshotting|replacing/);
  }, 120_000);

  it('creates a container a drop-in adds; a broken drop-in keeps everything running and status names its line', async () => {
    paths = freshPaths('dropins');
    const main = `${prefix}-main`;
    const added = `${prefix}-added`;
    await mkdir(join(dir, 'dropins'), { recursive: true });
    await writeFile(paths.defconfig, `containers:\n${sleeper(main)}`);
    daemon = await startDaemonProcess(paths);
    await daemon.until((x) => running(x, main), `${main} running`);
    const dropIns = join(dirname(paths.config), 'config.d');
    await mkdir(dropIns, { recursive: true });
    await writeFile(join(dropIns, '50-added.yaml'), `containers:\n${sleeper(added)}`);
    await daemon.until((x) => running(x, added) && running(x, main), `${added} created from the drop-in`);

    const broken = join(dropIns, '60-broken.yaml');
    await writeFile(broken, `containers:\n  ${prefix}-third:\n    image: ${BUSYBOX_IMAGE}\n    startAfterCreate: maybe\n`);
    const s = await daemon.until((x) => !x.config.ok, 'the broken drop-in reported');
    expect(s.config.errors).toContainEqual(expect.objectContaining({ file: broken, line: 4, col: 23 }));
    const human = await runCli(['--config', paths.config, 'status', '--run-dir', paths.runDir]);
    expect(human.stdout).toContain(`${broken}:4:23`);
    // The last good config stays in force: both containers run, nothing of the third exists.
    expect(running(s, main) && running(s, added)).toBe(true);
    expect(execFileSync('docker', ['ps', '-a', '--format', '{{.Names}}']).toString()).not.toContain(`${prefix}-third`);
    const merged = await runCli(['--config', paths.config, 'config', 'validate']);
    expect(merged.code).toBe(1);
    expect(merged.stdout).toContain(`${broken}:4:23: containers.${prefix}-third.startAfterCreate`);
  }, 120_000);

  it('serves Prometheus metrics on a socket when configured, and they follow a container that stops', async () => {
    paths = freshPaths('metrics');
    const name = `${prefix}-metered`;
    const socket = join(dir, 'metrics', 'metrics.sock');
    await mkdir(join(dir, 'metrics'), { recursive: true });
    await writeFile(
      paths.defconfig,
      `containers:\n${sleeper(name)}users:\n  root:\n    container: ${name}\nmetrics:\n  listen: ${socket}\n`,
    );
    daemon = await startDaemonProcess(paths);
    await daemon.until((x) => running(x, name), `${name} running`);
    const scrape = () =>
      new Promise<{ status: number; type: string; body: string }>((resolve, reject) => {
        const req = httpGet({ socketPath: socket, path: '/metrics' }, (res) => {
          let body = '';
          res.on('data', (c: Buffer) => (body += c.toString()));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, type: String(res.headers['content-type']), body }));
        });
        req.on('error', reject);
      });
    const first = await waitFor(
      async () => {
        const r = await scrape();
        return r.body.includes(`skiff_core_container_up{container="${name}"} 1`) ? r : undefined;
      },
      { what: 'the container up in the metrics', timeoutMs: 30_000 },
    );
    expect(first.status).toBe(200);
    expect(first.type).toMatch(/^text\/plain; version=0\.0\.4/);
    // Prometheus text format: HELP/TYPE comments and `name{labels} value` samples, nothing else.
    const samples = parsePrometheus(first.body);
    for (const metric of ['skiff_core_converge_duration_seconds_count', 'skiff_core_config_ok', 'process_resident_memory_bytes'])
      expect(
        samples.some((x) => x.name === metric),
        metric,
      ).toBe(true);
    expect(samples.find((x) => x.name === 'skiff_core_config_ok')?.value).toBe(1);
    expect(samples.find((x) => x.name === 'skiff_core_sessions' && x.labels === 'user="root"')?.value).toBe(0);

    execFileSync('docker', ['stop', '-t', '1', name]);
    await waitFor(async () => (await scrape()).body.includes(`skiff_core_container_up{container="${name}"} 0`), {
      what: 'the stopped container down in the metrics',
      timeoutMs: 30_000,
    });
  });

  it('applies memory, cpus, pidsLimit, devices, hostname and ulimits; a fork loop stops at pidsLimit', async () => {
    paths = freshPaths('limits');
    const name = `${prefix}-limited`;
    await mkdir(join(dir, 'limits'), { recursive: true });
    const limits = (pids: number) =>
      `    memory: 64m\n    cpus: 0.5\n    pidsLimit: ${pids}\n    hostname: skt-limited\n` +
      `    devices: ["/dev/null:/dev/skt-null:rw"]\n    ulimits:\n      nofile: 512:1024\n`;
    await writeFile(paths.defconfig, `containers:\n${sleeper(name, limits(20))}`);
    daemon = await startDaemonProcess(paths);
    await daemon.until((x) => running(x, name), `${name} running`);
    const inspect = (format: string) => execFileSync('docker', ['inspect', '-f', format, name]).toString().trim();
    expect(inspect('{{.HostConfig.Memory}} {{.HostConfig.NanoCpus}} {{.HostConfig.PidsLimit}} {{.Config.Hostname}}')).toBe(
      '67108864 500000000 20 skt-limited',
    );
    expect(JSON.parse(inspect('{{json .HostConfig.Devices}}'))).toEqual([
      { PathOnHost: '/dev/null', PathInContainer: '/dev/skt-null', CgroupPermissions: 'rw' },
    ]);
    expect(JSON.parse(inspect('{{json .HostConfig.Ulimits}}'))).toEqual([{ Name: 'nofile', Soft: 512, Hard: 1024 }]);
    const inside = (script: string) =>
      execFileSync('docker', ['exec', name, 'sh', '-c', script], { stdio: ['ignore', 'pipe', 'pipe'] })
        .toString()
        .trim();
    expect(inside('hostname; test -c /dev/skt-null && echo device')).toBe('skt-limited\ndevice');
    // ulimits are PID 1's and its children's (the engine gives exec'd processes its defaults).
    expect(inside("grep 'open files' /proc/1/limits")).toMatch(/^Max open files\s+512\s+1024\s+files$/);
    // A fork loop: the engine refuses processes past the limit, and the host is untouched.
    const loop = spawnSync('docker', ['exec', name, 'sh', '-c', 'i=0; while [ $i -lt 60 ]; do sleep 300 & i=$((i+1)); done'], {
      encoding: 'utf8',
    });
    expect(loop.stderr).toMatch(/can't fork|Resource temporarily unavailable/);
    // Counted from the host: inside, at the limit, not even `ls` can start.
    const top = execFileSync('docker', ['top', name, '-eo', 'pid,args']).toString().trim().split('\n').slice(1);
    expect(top.length).toBeGreaterThan(5);
    expect(top.length).toBeLessThanOrEqual(20);
    for (const line of top.filter((l) => l.trim().endsWith(' sleep 300'))) process.kill(Number(line.trim().split(/\s+/)[0]), 'SIGKILL');
    await waitFor(() => execFileSync('docker', ['top', name]).toString().trim().split('\n').length <= 4, { what: 'the loop gone' });

    // Changing a limit recreates the container from its snapshot: a file written inside stays.
    inside('echo kept > /root/kept');
    await writeFile(paths.config, `containers:\n${sleeper(name, limits(40))}`);
    await daemon.until(() => inspect('{{.HostConfig.PidsLimit}}') === '40', 'the new pidsLimit applied', 90_000);
    await daemon.until((x) => running(x, name), `${name} running again`);
    expect(inside('cat /root/kept')).toBe('kept');
  }, 180_000);

  it('rolls back after an image change to the files from before it, keeps it there, and rolls the rollback back', async () => {
    paths = freshPaths('rollback');
    const name = `${prefix}-rb`;
    const image = (n: number) => `${prefix}-app:${n}`;
    for (const n of [1, 2])
      execFileSync('docker', ['build', '-q', '-t', image(n), '-'], {
        input: `FROM ${BUSYBOX_IMAGE}\nRUN echo ${n} > /version\n`,
        stdio: ['pipe', 'ignore', 'inherit'],
      });
    await mkdir(join(dir, 'rollback'), { recursive: true });
    const yaml = (n: number) => `containers:\n${sleeper(name)}`.replace(`image: ${BUSYBOX_IMAGE}`, `image: ${image(n)}`);
    await writeFile(paths.defconfig, yaml(1));
    daemon = await startDaemonProcess(paths);
    await daemon.until((x) => running(x, name), `${name} running`);
    const inside = (cmd: string) => execFileSync('docker', ['exec', name, 'sh', '-c', cmd]).toString().trim();
    inside('echo before > /root/mine');

    await writeFile(paths.config, yaml(2));
    await waitFor(() => inside('cat /version') === '2', { what: `${name} on the new image`, timeoutMs: 90_000 });
    await daemon.until((x) => running(x, name) && !x.containers.find((c) => c.name === name)?.activity, 'the replacement done');
    expect(inside('cat /root/mine 2>/dev/null || echo gone')).toBe('gone');

    const back = await runCli(['--config', paths.config, 'rollback', name, '--run-dir', paths.runDir]);
    expect(back, JSON.stringify(back)).toMatchObject({ code: 0 });
    expect(back.stdout).toMatch(
      new RegExp(`^${name}: rolling back: recreated from snapshot skiff-core-snapshot/${name}:\\S+; what it replaced is snapshot`),
    );
    expect(inside('cat /root/mine; cat /version')).toBe('before\n1');
    // The daemon keeps the rollback: a pass changes nothing.
    const id = execFileSync('docker', ['inspect', '-f', '{{.Id}}', name]).toString().trim();
    expect((await runCli(['--config', paths.config, 'reload', '--run-dir', paths.runDir])).code).toBe(0);
    expect(execFileSync('docker', ['inspect', '-f', '{{.Id}}', name]).toString().trim()).toBe(id);

    const forward = await runCli(['--config', paths.config, 'rollback', name, '--run-dir', paths.runDir]);
    expect(forward, JSON.stringify(forward)).toMatchObject({ code: 0 });
    expect(inside('cat /root/mine 2>/dev/null || echo gone; cat /version')).toBe('gone\n2');
    const refused = await runCli(['--config', paths.config, 'rollback', name, 'no-such-tag', '--run-dir', paths.runDir]);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain('no snapshot "no-such-tag"');
  }, 240_000);

  it('rolls an image update back by itself when the new container never becomes ready, with the reason in status', async () => {
    paths = freshPaths('health');
    const name = `${prefix}-gated`;
    const image = (n: number) => `${prefix}-gate:${n}`;
    execFileSync('docker', ['build', '-q', '-t', image(1), '-'], {
      input: `FROM ${BUSYBOX_IMAGE}\nRUN touch /ready\n`,
      stdio: ['pipe', 'ignore', 'inherit'],
    });
    execFileSync('docker', ['build', '-q', '-t', image(2), '-'], {
      input: `FROM ${BUSYBOX_IMAGE}\nRUN echo 2 > /version\n`,
      stdio: ['pipe', 'ignore', 'inherit'],
    });
    await mkdir(join(dir, 'health'), { recursive: true });
    const yaml = (n: number) =>
      `containers:\n${sleeper(name, '    readyCommand: ["test", "-f", "/ready"]\n    readyTimeoutSec: 3\n')}`.replace(
        `image: ${BUSYBOX_IMAGE}`,
        `image: ${image(n)}`,
      );
    await writeFile(paths.defconfig, yaml(1));
    daemon = await startDaemonProcess(paths);
    await daemon.until((x) => running(x, name), `${name} running`);
    const before = execFileSync('docker', ['inspect', '-f', '{{.Id}}', name]).toString().trim();
    execFileSync('docker', ['exec', name, 'sh', '-c', 'echo mine > /root/mine']);

    await writeFile(paths.config, yaml(2));
    const s = await daemon.until(
      (x) => Boolean(x.containers.find((c) => c.name === name)?.problem?.startsWith('rolled back:')),
      'the automatic rollback',
      90_000,
    );
    const json = JSON.parse(
      (await runCli(['--config', paths.config, 'status', '--json', '--run-dir', paths.runDir])).stdout,
    ) as StatusSnapshot;
    expect(json.containers.find((c) => c.name === name)?.problem).toMatch(
      /^rolled back: the new container did not become ready within 3 s \(readyCommand exited 1\)\nthe previous container was put back, with its files/,
    );
    expect(s.containers.find((c) => c.name === name)?.state).toBe('running');
    // Not tried again every back-off: no container is created for it in the next 8 s (passes
    // retry a failure after 1, 2 and 4 s), and status keeps saying why.
    const since = Math.floor(Date.now() / 1000);
    await new Promise((r) => setTimeout(r, 8000));
    const created = execFileSync('docker', [
      'events',
      '--since',
      String(since),
      '--until',
      String(Math.floor(Date.now() / 1000)),
      '--filter',
      'event=create',
      '--filter',
      `label=io.skiff-core.container=${name}`,
      '--format',
      '{{.ID}}',
    ])
      .toString()
      .trim();
    expect(created).toBe('');
    expect((await daemon.status()).containers.find((c) => c.name === name)?.problem).toMatch(
      /^rolled back: [\s\S]*\(not tried again until the image or the container's options change, or "skiff-core reload"\)$/,
    );
    // Back under its name with its files.
    await waitFor(
      () =>
        execFileSync('docker', ['inspect', '-f', '{{.Id}} {{.State.Running}}', name]).toString().trim() === `${before} true` &&
        execFileSync('docker', ['exec', name, 'cat', '/root/mine']).toString() === 'mine\n',
      { what: 'the previous container back under its name, with its files', timeoutMs: 30_000, intervalMs: 100 },
    );
  }, 180_000);

  it('status exits 0 when all is healthy, also for a container that restarted once and then stayed up', async () => {
    paths = freshPaths('healthy');
    const once = `${prefix}-once`;
    const steady = `${prefix}-calm`;
    await import('node:fs/promises').then((fs) => fs.mkdir(join(dir, 'healthy'), { recursive: true }));
    // Fails on its first run only: the marker lives in the container's own filesystem.
    const cmd = '["sh", "-c", "if [ -e /ran-once ]; then exec sleep 1000000; fi; touch /ran-once; exit 1"]';
    await writeFile(
      paths.defconfig,
      `containers:\n  ${once}:\n    image: ${BUSYBOX_IMAGE}\n    cmd: ${cmd}\n    startAfterCreate: true\n    restartPolicy: always\n${sleeper(steady)}`,
    );
    daemon = await startDaemonProcess(paths);
    const s = await daemon.until(
      (x) => running(x, steady) && x.containers.some((c) => c.name === once && c.state === 'running' && c.restartCount === 1),
      `${once} running after one restart`,
    );
    // Just after the restart it may still be a crash loop: status says so, naming it.
    const early = await runCli(['--config', paths.config, 'status', '--run-dir', paths.runDir]);
    expect(early.code).toBe(1);
    expect(early.stdout).toContain(`container ${once}: crash loop: the engine restarted it 1 time, the last`);

    // Once it has stayed up past the window, the restart is history.
    const startedAt = Date.parse(s.containers.find((c) => c.name === once)!.startedAt!);
    await new Promise((r) => setTimeout(r, Math.max(0, startedAt + CRASH_LOOP_WINDOW_MS + 1_000 - Date.now())));
    const later = await runCli(['--config', paths.config, 'status', '--run-dir', paths.runDir]);
    expect(later.stdout).not.toContain('not healthy');
    expect(later.stdout).toMatch(new RegExp(`^${once} +running .* 1 *$`, 'm'));
    expect(later.code).toBe(0);
    const json = await runCli(['--config', paths.config, 'status', '--json', '--run-dir', paths.runDir]);
    expect(JSON.parse(json.stdout).health).toEqual({ ok: true, reasons: [] });
    expect(json.code).toBe(0);
  }, 180_000);

  it('after kill -9 in the middle of a pull, a restart converges with no duplicates or stray files', async () => {
    // An image of random bytes no engine here has, so the pull really transfers and takes a while.
    const big = `${prefix}/big:1`;
    const context = join(dir, 'big');
    await import('node:fs/promises').then((fs) => fs.mkdir(context, { recursive: true }));
    await writeFile(join(context, 'Dockerfile'), `FROM ${BUSYBOX_IMAGE}\nRUN head -c 300000000 /dev/urandom > /random\n`);
    execFileSync('docker', ['build', '-q', '-t', `${TEST_REGISTRY}/${big}`, context], { stdio: 'ignore' });
    execFileSync('docker', ['push', `${TEST_REGISTRY}/${big}`], { stdio: 'ignore' });
    execFileSync('docker', ['rmi', `${TEST_REGISTRY}/${big}`], { stdio: 'ignore' });

    paths = freshPaths('kill');
    const c = `${prefix}-k`;
    await import('node:fs/promises').then((fs) => fs.mkdir(join(dir, 'kill'), { recursive: true }));
    const config = `containers:\n  ${c}:\n    image: ${big}\n    cmd: ["sleep", "1000000"]\n    startAfterCreate: true\nimages:\n  ${big}:\n    pull:\n      registry: ${TEST_REGISTRY}\n`;
    await writeFile(paths.defconfig, config);
    daemon = await startDaemonProcess(paths);
    // The daemon's debug log marks the engine call; kill it while the layers are coming in.
    const first = daemon;
    await waitFor(() => first.logs().includes('"op":"pullImage"'), { what: 'the pull to start', timeoutMs: 60_000, intervalMs: 20 });
    await new Promise((r) => setTimeout(r, 300));
    await daemon.stop('SIGKILL');
    expect(execFileSync('docker', ['image', 'ls', '-q', big]).toString().trim()).toBe('');

    daemon = await startDaemonProcess(paths);
    await daemon.until((x) => running(x, c), `${c} running after the restart`, 180_000);
    const names = execFileSync('docker', ['ps', '-a', '--format', '{{.Names}}'])
      .toString()
      .split('\n')
      .filter((n) => n === c || n.startsWith(`${c}-replaced-`));
    expect(names.sort()).toEqual([c]);
    expect(await readFile(paths.config, 'utf8')).toBe(config);
    expect((await readdir(join(dir, 'kill', 'persist'))).filter((f) => f.includes('.skiff-tmp-'))).toEqual([]);
  });

  describe('with an engine of its own', () => {
    let engine: PrivateEngine;
    beforeAll(async () => {
      engine = await privateEngine(join(tmpdir(), `${prefix}-dockerd`));
      await engine.start();
      engine.load(BUSYBOX_IMAGE);
    }, 180_000);
    afterAll(async () => {
      await engine?.destroy();
    });

    it('survives Docker stopping, reports it, and converges when Docker is back', async () => {
      paths = freshPaths('restart');
      const a = `${prefix}-r1`;
      const b = `${prefix}-r2`;
      await import('node:fs/promises').then((fs) => fs.mkdir(join(dir, 'restart'), { recursive: true }));
      await writeFile(paths.defconfig, `containers:\n${sleeper(a)}`);
      daemon = await startDaemonProcess(paths, { DOCKER_HOST: engine.host });
      await daemon.until((x) => running(x, a), `${a} running on the private engine`);

      await engine.stop();
      const down = await daemon.until((x) => !x.engine.reachable, 'status to report Docker unavailable');
      expect(down.engine.error).toMatch(/cannot reach Docker at .*docker\.sock/);
      const human = await runCli(['--config', paths.config, 'status', '--run-dir', paths.runDir], { env: { DOCKER_HOST: engine.host } });
      expect(human.stdout).toMatch(/engine +docker unavailable: cannot reach Docker/);
      expect(daemon.child.exitCode).toBeNull();

      // An edit made while Docker is down is applied when it returns.
      await edit(`containers:\n${sleeper(a)}${sleeper(b)}`);
      await engine.start();
      const back = await daemon.until(
        (x) => x.engine.reachable && running(x, a) && running(x, b),
        'convergence after Docker returned',
        120_000,
      );
      expect(back.reconcile.lastOk).toBe(true);
    });
  });
});

/** The samples of a Prometheus text exposition; throws on a line that is neither. */
function parsePrometheus(text: string): { name: string; labels: string; value: number }[] {
  const samples: { name: string; labels: string; value: number }[] = [];
  for (const line of text.split('\n')) {
    if (line === '' || /^# (HELP|TYPE) [a-zA-Z_:][a-zA-Z0-9_:]* /.test(line)) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (-?[0-9.e+-]+|NaN|\+Inf|-Inf)$/.exec(line);
    if (!m) throw new Error(`not Prometheus text: ${JSON.stringify(line)}`);
    samples.push({ name: m[1]!, labels: m[2] ?? '', value: Number(m[3]) });
  }
  return samples;
}
