// `npm run bench`: skiff-core's login path next to the plain Docker CLI doing the same work, on the
// real engine, interleaved (A B A B …) so machine noise hits both sides. Prints a table and writes
// bench/results.json. See bench/README.md for what each measure does and the knobs.
//
// Nothing on the machine changes: the daemon runs as a child with `--users lookup` (it only reads
// /etc/passwd), SSH is measured inside a device container, and every container and image made
// here is named skb-<random>-… and removed at the end (also on failure and Ctrl-C).
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import { cpus, loadavg, totalmem } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { SESSION_LIMITS } from '../src/session/session-server.js';
import { measureRestart } from './lib/restart.js';
import {
  configYaml,
  startDaemon,
  waitConverged,
  type ContainerDef,
  type DaemonHandle,
  type DaemonPaths,
  type UserDef,
} from './lib/daemon.js';
import { deviceUnavailable, startDevice, waitForSsh, type Device } from './lib/device.js';
import { rawExec } from './lib/engine-raw.js';
import {
  followCpu,
  liveChildren,
  MB,
  procCpu,
  procMemory,
  resetPeak,
  restrictSpawning,
  sampleMemory,
  setClockTicks,
  sleep,
  start,
  timed,
  type TimedResult,
} from './lib/proc.js';
import { inProcessSession, startStubSessionSocket } from './lib/session-client.js';
import { max, median, p95, round } from './lib/stats.js';

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const BUNDLE = join(REPO, 'dist', 'skiff-core.mjs');
/** The compiled launcher: the login client (`-c CMD`) every mapped user's login runs. */
const LAUNCHER = join(REPO, 'dist', 'skiff-core-launcher');
const DEBIAN_IMAGE = 'skiff-core-test/debian-systemd:bookworm';
const BUSYBOX_IMAGE = 'skiff-core-test/busybox:latest';
const GiB = 1024 * 1024 * 1024;

// --- knobs ------------------------------------------------------------------------------------
const QUICK = process.env.BENCH_QUICK === '1';
function int(name: string, quick: number, full: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return QUICK ? quick : full;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < 0) throw new Error(`${name} must be a non-negative integer, not ${raw}`);
  return value;
}
const CFG = {
  quick: QUICK,
  latencyPairs: int('BENCH_LATENCY_PAIRS', 10, 40),
  streamBytes: int('BENCH_STREAM_BYTES', 128 * MB, GiB),
  streamPairs: int('BENCH_STREAM_PAIRS', 2, 3),
  concurrency: int('BENCH_CONCURRENCY', 30, 100),
  concurrencyRounds: int('BENCH_CONCURRENCY_ROUNDS', 2, 3),
  memoryPairs: int('BENCH_MEMORY_PAIRS', 3, 5),
  sshPairs: int('BENCH_SSH_PAIRS', 5, 20),
  reconcileContainers: int('BENCH_RECONCILE_CONTAINERS', 20, 20),
  reconcileStarts: int('BENCH_RECONCILE_STARTS', 3, 10),
  slowSeconds: int('BENCH_SLOW_SECONDS', 5, 20),
  slowRate: int('BENCH_SLOW_RATE', 10_000, 10_000),
  warmup: int('BENCH_WARMUP', 2, 3),
  /** Idle time before each measured command of measure 1 (both sides), as between real logins. */
  gapMs: int('BENCH_GAP_MS', 300, 300),
  restartSessions: int('BENCH_RESTART_SESSIONS', 10, 20),
};
const ONLY = new Set((process.env.BENCH_ONLY ?? '1,2,3,4,5,6,7,8,9').split(',').map((s) => Number(s.trim())));
const OUT = resolve(process.env.BENCH_OUT ?? join(REPO, 'bench', 'results.json'));

// --- output -----------------------------------------------------------------------------------
const t0 = Date.now();
function say(line: string): void {
  process.stderr.write(`[bench +${((Date.now() - t0) / 1000).toFixed(1)}s] ${line}\n`);
}

interface Side {
  median: number;
  p95: number;
  n: number;
}
interface Row {
  id: string;
  measure: string;
  unit: string;
  skiff?: Side | string;
  baseline?: Side | string;
  /** skiff / baseline (what "ratio" means per row is in `ratioOf`). */
  ratio?: number;
  ratioOf?: string;
  /** Shown instead of the ratio (e.g. a difference). */
  ratioText?: string;
  target: string;
  met?: boolean;
  note?: string;
}
const rows: Row[] = [];
const raw: Record<string, unknown> = {};
const loads: Record<string, number[]> = {};

function side(values: readonly number[]): Side {
  return { median: round(median(values)), p95: round(p95(values)), n: values.length };
}

/** Runs one measure; a failure becomes a row (with the reason) and the others still run. */
async function guard(id: string, measure: string, target: string, run: () => Promise<void>): Promise<void> {
  if (cleaning) return;
  try {
    await run();
  } catch (err) {
    if (cleaning) return;
    const message = err instanceof Error ? err.message : String(err);
    say(`${id} FAILED: ${message}`);
    rows.push({ id, measure, unit: '', skiff: `failed: ${message.split('\n')[0]?.slice(0, 160) ?? ''}`, target, met: false });
    failures.push({ id, message });
    // Nothing of this measure may keep running into the next one.
    for (const child of liveChildren()) {
      if (child.pid !== undefined && child.exitCode === null && !daemonPids().has(child.pid)) {
        try {
          process.kill(child.pid, 'SIGKILL');
        } catch {
          // gone
        }
      }
    }
  }
}
const failures: { id: string; message: string }[] = [];
function daemonPids(): Set<number> {
  return new Set([...daemons].map((d) => d.pid));
}

function skipRow(id: string, measure: string, target: string, reason: string): void {
  rows.push({ id, measure, unit: '', skiff: `skipped: ${reason}`, target });
  say(`${id} skipped: ${reason}`);
}

// --- cleanup ------------------------------------------------------------------------------------
const daemons = new Set<DaemonHandle>();
let prefix = '';
let tmp = '';
let cleaning: Promise<void> | undefined;

async function cleanup(): Promise<void> {
  cleaning ??= (async () => {
    // Whatever the measures were doing, nothing new starts now but the removals below.
    restrictSpawning((cmd, args) => cmd === 'docker' && ['rm', 'ps', 'image', 'rmi'].includes(args[0] ?? ''));
    for (const d of daemons) await d.stop().catch(() => undefined);
    for (const child of liveChildren()) {
      if (child.pid !== undefined && child.exitCode === null) {
        try {
          process.kill(child.pid, 'SIGKILL');
        } catch {
          // already gone
        }
      }
    }
    if (prefix) {
      // The device first: its daemon would recreate the containers removed below.
      await timed('docker', ['rm', '-f', `${prefix}-device`]).catch(() => undefined);
      const names = await timed('docker', ['ps', '-a', '--format', '{{.Names}}']).catch(() => undefined);
      const ours = (names?.stdout.toString() ?? '').split('\n').filter((n) => n.startsWith(`${prefix}-`));
      if (ours.length) {
        say(`cleanup: removing ${ours.length} container(s)`);
        await timed('docker', ['rm', '-f', ...ours], { timeoutMs: 300_000 }).catch(() => undefined);
      }
      const images = await timed('docker', ['image', 'ls', '--format', '{{.Repository}}:{{.Tag}}']).catch(() => undefined);
      const ourImages = (images?.stdout.toString() ?? '').split('\n').filter((n) => n.startsWith(`${prefix}-`));
      if (ourImages.length) await timed('docker', ['rmi', '-f', ...ourImages]).catch(() => undefined);
    }
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  })();
  return cleaning;
}

// `on`, not `once`: Ctrl-C reaches npm, tsx and us, and tsx relays it again; a second signal
// without a listener would end the process in the middle of the cleanup.
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
  process.on(signal, () => {
    if (cleaning) return;
    say(`${signal}: cleaning up (containers and images named ${prefix || 'skb-…'}-*)`);
    void cleanup().finally(() => process.exit(130));
  });
}
process.once('exit', () => {
  // Last resort (an exit without cleanup): no daemon of ours may outlive the benchmark.
  for (const d of daemons) {
    try {
      process.kill(d.pid, 'SIGKILL');
    } catch {
      // gone
    }
  }
});

// --- helpers ------------------------------------------------------------------------------------
function cleanEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (k === 'NODE_OPTIONS' || k.startsWith('npm_')) continue;
    env[k] = v;
  }
  return { ...env, ...extra };
}

function check(r: TimedResult, what: string, expectOut?: string): void {
  if (r.code !== 0) throw new Error(`${what}: exit ${r.code ?? r.signal}; stderr: ${r.stderr.trim().slice(-1000)}`);
  if (expectOut !== undefined && r.stdout.toString() !== expectOut) {
    throw new Error(`${what}: stdout ${JSON.stringify(r.stdout.toString().slice(0, 200))}, expected ${JSON.stringify(expectOut)}`);
  }
}

function pickUsers(count: number): string[] {
  const names = readFileSync('/etc/passwd', 'utf8')
    .split('\n')
    .map((l) => l.split(':')[0] ?? '')
    .filter((n) => /^[a-z_][a-z0-9_-]*$/.test(n) && n.length <= 32);
  const preferred = ['root', 'daemon', 'bin', 'sys', 'sync', 'games', 'man', 'lp', 'mail', 'news'];
  const ordered = [...preferred.filter((n) => names.includes(n)), ...names.filter((n) => !preferred.includes(n))];
  if (ordered[0] !== 'root') throw new Error('/etc/passwd has no root entry');
  return ordered.slice(0, count);
}

function mb(bytes: number): number {
  return round(bytes / MB, 1);
}

function zeros(total: number): (stdin: NodeJS.WritableStream) => void {
  const buf = Buffer.alloc(1024 * 1024);
  return (stdin) => {
    let left = total;
    const pump = () => {
      while (left > 0) {
        const n = Math.min(left, buf.length);
        left -= n;
        if (!stdin.write(n === buf.length ? buf : buf.subarray(0, n))) {
          stdin.once('drain', pump);
          return;
        }
      }
      stdin.end();
    };
    pump();
  };
}

/** dockerd's pid (for its memory and CPU), when this machine runs the engine. */
function dockerdPid(): number | undefined {
  try {
    const pid = Number(readFileSync('/var/run/docker.pid', 'utf8').trim());
    return pid > 0 && procCpu(pid) !== undefined ? pid : undefined;
  } catch {
    return undefined;
  }
}

interface CpuUse {
  /** The client process (login shell or docker CLI), CPU seconds. */
  client: number;
  daemon: number;
  dockerd: number;
}

/** Runs `run`, following the CPU time of its child, the daemon and dockerd. */
async function withCpu(
  daemonPid: number,
  run: (onSpawn: (c: ChildProcess) => void) => Promise<TimedResult>,
): Promise<{ r: TimedResult; cpu: CpuUse }> {
  const engine = dockerdPid();
  const d0 = procCpu(daemonPid) ?? 0;
  const e0 = engine ? (procCpu(engine) ?? 0) : 0;
  let follower: { stop(): number } | undefined;
  const r = await run((c) => {
    if (c.pid !== undefined) follower = followCpu(c.pid, 50);
  });
  const client = follower?.stop() ?? 0;
  return {
    r,
    cpu: { client, daemon: (procCpu(daemonPid) ?? d0) - d0, dockerd: engine ? (procCpu(engine) ?? e0) - e0 : Number.NaN },
  };
}

function noteLoad(key: string): void {
  loads[key] = loadavg().map((v) => round(v));
}

// --- main ---------------------------------------------------------------------------------------
async function main(): Promise<number> {
  if (process.getuid?.() !== 0) {
    process.stderr.write('run the benchmark as root: the daemon hands each session socket to its user, and the login names its user\n');
    return 2;
  }
  for (const built of [BUNDLE, LAUNCHER]) {
    if (!existsSync(built)) {
      process.stderr.write(`${built} is missing: run "npm run build" first (npm run bench does).\n`);
      return 2;
    }
  }
  const dockerCli = (await timed('sh', ['-c', 'command -v docker'])).stdout.toString().trim();
  if (!dockerCli) {
    process.stderr.write('no docker CLI on PATH (bash scripts/provision.sh installs one)\n');
    return 2;
  }
  const versions = await timed('docker', ['version', '--format', '{{.Client.Version}} {{.Server.Version}} {{.Server.APIVersion}}']);
  if (versions.code !== 0) {
    process.stderr.write(`the Docker engine does not answer: ${versions.stderr.trim()}\n(bash scripts/provision.sh starts one)\n`);
    return 2;
  }
  const [clientVersion, serverVersion, apiVersion] = versions.stdout.toString().trim().split(' ');
  for (const image of [DEBIAN_IMAGE, BUSYBOX_IMAGE]) {
    const r = await timed('docker', ['image', 'inspect', '--format', '{{.Id}}', image]);
    if (r.code !== 0) {
      process.stderr.write(`${image} is missing: run "bash scripts/provision.sh" as root\n`);
      return 2;
    }
  }

  setClockTicks(Number((await timed('getconf', ['CLK_TCK'])).stdout.toString().trim()) || 100);
  prefix = `skb-${randomBytes(3).toString('hex')}`;
  tmp = await mkdtemp(`/tmp/${prefix}-`);
  const git = await timed('git', ['-C', REPO, 'rev-parse', 'HEAD']).catch(() => undefined);
  const dirty = await timed('git', ['-C', REPO, 'status', '--porcelain', '--', 'src']).catch(() => undefined);
  const environment = {
    node: process.version,
    dockerCli: `${dockerCli} ${clientVersion ?? '?'}`,
    engine: `${serverVersion ?? '?'} (API ${apiVersion ?? '?'})`,
    cpus: cpus().length,
    memoryMB: Math.round(totalmem() / MB),
    commit: git?.stdout.toString().trim(),
    srcUncommittedFiles: dirty?.stdout.toString().split('\n').filter(Boolean).length,
    loginClient: `${LAUNCHER} -c … (the compiled launcher, as installed for mapped users)`,
    prefix,
    startedAt: new Date().toISOString(),
  };
  say(
    `prefix ${prefix}; docker CLI ${dockerCli} ${clientVersion}; engine ${serverVersion}; ${environment.cpus} CPUs; node ${process.version}; ${QUICK ? 'QUICK' : 'full'} run`,
  );
  noteLoad('start');

  const users = pickUsers(10);
  const containers: ContainerDef[] = Array.from({ length: 10 }, (_, i) => ({
    name: `${prefix}-c${i}`,
    image: i === 0 ? DEBIAN_IMAGE : BUSYBOX_IMAGE,
    cmd: i === 0 ? ['sleep', 'infinity'] : ['sleep', '1000000'],
  }));
  const userDefs: UserDef[] = users.map((name, i) => ({ name, container: containers[i]!.name }));
  const c0 = containers[0]!.name;
  const paths: DaemonPaths = {
    bundle: BUNDLE,
    config: join(tmp, 'persist', 'config.yaml'),
    runDir: join(tmp, 'run'),
    workDir: join(tmp, 'work'),
  };
  await mkdir(dirname(paths.config), { recursive: true });
  await writeFile(paths.config, configYaml(containers, userDefs));
  const daemonEnv = cleanEnv();
  const loginEnv = cleanEnv({ SKIFF_CORE_RUN_DIR: paths.runDir, SKIFF_CORE_SESSION_USER: 'root' });
  const rootSocket = join(paths.runDir, 'users', 'root.sock');
  const login = (command: string, o: Parameters<typeof timed>[2] = {}) => timed(LAUNCHER, ['-c', command], { env: loginEnv, ...o });
  const dexec = (args: string[], o: Parameters<typeof timed>[2] = {}) => timed(dockerCli, ['exec', ...args], o);

  const needMain = [1, 2, 3, 4, 6, 8, 9].some((m) => ONLY.has(m));
  if (needMain) {
    say(`daemon: ${containers.length} containers, users ${users.join(', ')}`);
    const d = await startDaemon(paths, daemonEnv);
    daemons.add(d);
    await waitConverged(
      d,
      containers.map((c) => c.name),
      users,
    );
    // The documented way to check, once: the CLI's own status.
    const cli = await timed(process.execPath, [BUNDLE, '--config', paths.config, 'status', '--json', '--run-dir', paths.runDir], {
      env: daemonEnv,
    });
    const cliStatus = JSON.parse(cli.stdout.toString()) as { containers: { name: string; state: string }[] };
    if (cliStatus.containers.find((c) => c.name === c0)?.state !== 'running') throw new Error(`status --json does not show ${c0} running`);
    say('daemon: converged, all containers running');

    // 6a: idle RSS with 10 users/containers.
    if (ONLY.has(6)) {
      const bareNode = await (async () => {
        const child = start(process.execPath, ['-e', 'setTimeout(() => {}, 3000)'], { stdio: 'ignore' });
        await sleep(1500);
        const m = procMemory(child.pid!) ?? { rss: 0, anon: 0 };
        child.kill();
        return m;
      })();
      await sleep(3000);
      const samples: number[] = [];
      for (let i = 0; i < 10; i++) {
        samples.push(d.rss());
        await sleep(200);
      }
      const idle = median(samples);
      raw.daemonIdleRss = { samplesMB: samples.map(mb), hwmMB: mb(procMemory(d.pid)?.hwm ?? 0) };
      rows.push({
        id: '6a',
        measure: `daemon RSS idle, ${containers.length} users/containers`,
        unit: 'MB',
        skiff: { median: mb(idle), p95: mb(max(samples)), n: samples.length },
        target: '≤ 50 MB (no gateway)',
        met: idle <= 50 * MB,
        note: `of which private (RssAnon) ${mb(procMemory(d.pid)?.anon ?? 0)} MB and node's mapped binary and libraries (RssFile) ${mb(procMemory(d.pid)?.file ?? 0)} MB; a bare node -e is ${mb(bareNode.rss)} MB (${mb(bareNode.anon)} private)`,
      });
      say(`6a daemon idle RSS ${mb(idle)} MB`);
    }

    // Warm-up: the first login resolves the container user (an exec the daemon then caches).
    for (let i = 0; i < CFG.warmup; i++) {
      check(await login('true'), 'warm-up login');
      check(await dexec([c0, 'true']), 'warm-up docker exec');
    }

    if (ONLY.has(1)) await guard('1', 'one command: login -c true vs docker exec CTR true', 'ratio ≤ 0.4', measureLatency);
    if (ONLY.has(4)) await guard('4', 'simultaneous sessions', 'all correct; p95 ratio ≤ 1.1', () => measureConcurrency(d));
    if (ONLY.has(6)) await guard('6c', 'login client RSS', '≤ 2 MB', measureShellMemory);
    if (ONLY.has(2)) await guard('2', 'stdout throughput', 'ratio ≥ 0.95', () => measureStdout(d));
    if (ONLY.has(3)) await guard('3', 'stdin throughput', 'ratio ≥ 0.95', () => measureStdin(d));
    if (ONLY.has(8)) await guard('8', 'slow reader', 'daemon RSS growth ≤ 16 MB', () => measureSlowReader(d));
    if (ONLY.has(6)) {
      await sleep(2000);
      raw.daemonRssAfterAllMB = mb(d.rss());
    }
    let current = d;
    if (ONLY.has(9)) {
      await guard('9', '-c cat across kill -9 of the daemon and a restart', '0 sessions lost', async () => {
        current = await measureDaemonRestart(d);
      });
    }
    await current.stop();
    daemons.delete(current);
  }
  if (ONLY.has(7)) await guard('7', 'idle reconcile', '≤ 300 ms', measureReconcile);
  if (ONLY.has(5)) await guard('5', 'ssh end to end', 'report both', measureSsh);
  noteLoad('end');

  // --- 1 -----------------------------------------------------------------------------------------
  async function measureLatency() {
    say(
      `1 latency: ${CFG.latencyPairs} rounds of login -c true | docker exec true | both back to back | 2 in-process sessions | raw engine exec`,
    );
    noteLoad('1');
    const a: number[] = [];
    const b: number[] = [];
    const rawMs: number[] = [];
    const phases: { create: number[]; start: number[]; inspect: number[] } = { create: [], start: [], inspect: [] };
    const inproc: number[] = [];
    const inproc2: number[] = [];
    const stubbed: number[] = [];
    const backA: number[] = [];
    const backB: number[] = [];
    const stubDir = join(tmp, 'stub');
    const stub = await startStubSessionSocket(join(stubDir, 'users', 'root.sock'));
    const stubEnv = { ...loginEnv, SKIFF_CORE_RUN_DIR: stubDir };
    for (let i = 0; i < CFG.latencyPairs; i++) {
      await sleep(CFG.gapMs);
      const ra = await login('true', { timeoutMs: 30_000 });
      check(ra, 'login -c true', '');
      a.push(ra.ms);
      await sleep(CFG.gapMs);
      const rb = await dexec([c0, 'true'], { timeoutMs: 30_000 });
      check(rb, 'docker exec true', '');
      b.push(rb.ms);
      // Back to back, as rsync, git or an editor over SSH run them: the second of two.
      await sleep(CFG.gapMs);
      check(await login('true', { timeoutMs: 30_000 }), 'login -c true');
      const rab = await login('true', { timeoutMs: 30_000 });
      check(rab, 'login -c true (back to back)', '');
      backA.push(rab.ms);
      check(await dexec([c0, 'true'], { timeoutMs: 30_000 }), 'docker exec true');
      const rbb = await dexec([c0, 'true'], { timeoutMs: 30_000 });
      check(rbb, 'docker exec true (back to back)', '');
      backB.push(rbb.ms);
      // Two in-process sessions back to back: the first finds the daemon's waiting exec (refilled
      // since the login above), the second most likely comes before the refill (ordinary path).
      await sleep(CFG.gapMs);
      const ri = await inProcessSession(rootSocket, 'true');
      if (ri.code !== 0) throw new Error(`in-process session: exit ${ri.code}`);
      inproc.push(ri.ms);
      const ri2 = await inProcessSession(rootSocket, 'true');
      if (ri2.code !== 0) throw new Error(`in-process session: exit ${ri2.code}`);
      inproc2.push(ri2.ms);
      const rr = await rawExec(c0, ['true']);
      if (rr.exitCode !== 0) throw new Error(`raw exec: exit ${rr.exitCode}`);
      rawMs.push(rr.ms);
      phases.create.push(rr.phases.create);
      phases.start.push(rr.phases.start);
      phases.inspect.push(rr.phases.inspect);
      const rs = await timed(LAUNCHER, ['-c', 'true'], { env: stubEnv, timeoutMs: 30_000 });
      check(rs, 'login -c true against the stub socket', '');
      stubbed.push(rs.ms);
    }
    await stub.close();
    raw.latency = {
      loginMs: a,
      dockerExecMs: b,
      loginBackToBackMs: backA,
      dockerExecBackToBackMs: backB,
      rawExecMs: rawMs,
      rawExecPhasesMs: phases,
      inProcessSessionMs: inproc,
      inProcessSessionBackToBackMs: inproc2,
      loginAgainstStubMs: stubbed,
    };
    const ratio = median(a) / median(b);
    const backRatio = median(backA) / median(backB);
    rows.push({
      id: '1',
      measure: `one command: login -c true vs docker exec CTR true (${CFG.gapMs} ms apart)`,
      unit: 'ms',
      skiff: side(a),
      baseline: side(b),
      ratio: round(ratio),
      ratioOf: 'median',
      target: 'ratio ≤ 0.4',
      met: ratio <= 0.4,
    });
    rows.push({
      id: '1.iv',
      measure: 'the same, back to back (the second of two)',
      unit: 'ms',
      skiff: side(backA),
      baseline: side(backB),
      ratio: round(backRatio),
      ratioOf: 'median',
      target: 'ratio ≤ 0.8',
      met: backRatio <= 0.8,
    });
    rows.push({
      id: '1.ii',
      measure: '  attribution: login client against an instant stub socket (client + protocol)',
      unit: 'ms',
      skiff: side(stubbed),
      target: 'info',
    });
    rows.push({
      id: '1.iii',
      measure: '  attribution: a relayed session on the daemon socket, in-process (no client process)',
      unit: 'ms',
      skiff: side(inproc),
      target: 'info',
    });
    rows.push({
      id: '1.iii.b',
      measure: '  attribution: the same, right after another (no waiting exec yet)',
      unit: 'ms',
      skiff: side(inproc2),
      target: 'info',
    });
    rows.push({
      id: '1.v',
      measure: '  attribution: raw engine exec in-process (create/start/inspect)',
      unit: 'ms',
      skiff: side(rawMs),
      target: 'info',
      note: `create ${round(median(phases.create))} / start+run ${round(median(phases.start))} / inspect ${round(median(phases.inspect))} ms (medians)`,
    });
    say(
      `1 login ${round(median(a))} ms, docker exec ${round(median(b))} ms, back to back ${round(median(backA))} vs ${round(median(backB))} ms, raw exec ${round(median(rawMs))} ms, in-process session ${round(median(inproc))} / back to back ${round(median(inproc2))} ms`,
    );
  }

  // --- 4 -----------------------------------------------------------------------------------------
  async function measureConcurrency(d: DaemonHandle) {
    const n = CFG.concurrency;
    say(`4 concurrency: ${CFG.concurrencyRounds} rounds of ${n} simultaneous sessions per side`);
    noteLoad('4');
    const lat = { skiff: [] as number[], docker: [] as number[], inproc: [] as number[], raw: [] as number[] };
    const wall = { skiff: [] as number[], docker: [] as number[] };
    const wrong = { skiff: 0, docker: 0, inproc: 0, raw: 0 };
    const failed: string[] = [];
    const peakReset = resetPeak(d.pid);
    const sampler = { maxRss: 0 };
    for (let round_ = 0; round_ < CFG.concurrencyRounds; round_++) {
      for (const which of ['skiff', 'docker'] as const) {
        const sample = which === 'skiff' ? sampleMemory(d.pid, 20) : undefined;
        const tStart = performance.now();
        const runs = Array.from({ length: n }, (_, i) =>
          which === 'skiff' ? login(`echo ${i}`, { timeoutMs: 300_000 }) : dexec([c0, 'sh', '-c', `echo ${i}`], { timeoutMs: 300_000 }),
        );
        const settled = await Promise.allSettled(runs);
        wall[which].push(performance.now() - tStart);
        settled.forEach((s, i) => {
          if (s.status === 'fulfilled' && s.value.code === 0 && s.value.stdout.toString() === `${i}\n`) {
            lat[which].push(s.value.ms);
          } else {
            wrong[which]++;
            if (failed.length < 5) {
              failed.push(
                s.status === 'rejected'
                  ? `${which} #${i}: ${String(s.reason)}`
                  : `${which} #${i}: exit ${s.value.code}, stdout ${JSON.stringify(s.value.stdout.toString().slice(0, 80))}, stderr ${JSON.stringify(s.value.stderr.slice(0, 200))}`,
              );
            }
          }
        });
        if (sample) sampler.maxRss = Math.max(sampler.maxRss, sample.stop().maxRss);
      }
      // Attribution, after the first round: the daemon's share without Node start-ups, and the
      // engine alone.
      if (round_ > 0) continue;
      const sample = sampleMemory(d.pid, 20);
      const inproc = await Promise.allSettled(Array.from({ length: n }, (_, i) => inProcessSession(rootSocket, `echo ${i}`)));
      sampler.maxRss = Math.max(sampler.maxRss, sample.stop().maxRss);
      inproc.forEach((s, i) => {
        if (s.status === 'fulfilled' && s.value.code === 0 && s.value.stdout === `${i}\n`) lat.inproc.push(s.value.ms);
        else wrong.inproc++;
      });
      const engine = await Promise.allSettled(Array.from({ length: n }, () => rawExec(c0, ['true'])));
      engine.forEach((s) => {
        if (s.status === 'fulfilled' && s.value.exitCode === 0) lat.raw.push(s.value.ms);
        else wrong.raw++;
      });
    }
    const hwm = procMemory(d.pid)?.hwm ?? 0;
    const total = n * CFG.concurrencyRounds;
    const attributed = n;
    const allCorrect = wrong.skiff === 0 && wrong.docker === 0;
    // The daemon process, not an in-process attribution: only rounds of real logins count for 6b.
    const ratio = p95(lat.skiff) / p95(lat.docker);
    raw.concurrency = {
      latencyMs: lat,
      wallMs: wall,
      wrong,
      failures: failed,
      daemonPeakSampledMB: mb(sampler.maxRss),
      daemonVmHwmMB: mb(hwm),
      peakResetWorked: peakReset,
    };
    rows.push({
      id: '4',
      measure: `${n} simultaneous sessions (echo N, output checked) — per-session latency`,
      unit: 'ms',
      skiff: side(lat.skiff),
      baseline: side(lat.docker),
      ratio: round(ratio),
      ratioOf: 'p95',
      target: 'all correct; p95 ratio ≤ 1.1',
      met: allCorrect && ratio <= 1.1,
      note: `correct: skiff-core ${total - wrong.skiff}/${total}, docker ${total - wrong.docker}/${total}; round wall time median ${round(median(wall.skiff))} vs ${round(median(wall.docker))} ms`,
    });
    rows.push({
      id: '4.i',
      measure: `  attribution: ${n} simultaneous sessions in-process (no Node start)`,
      unit: 'ms',
      skiff: side(lat.inproc),
      target: 'info',
      note: `correct ${attributed - wrong.inproc}/${attributed} (first round only; relayed sessions, so at most ${SESSION_LIMITS.relayed} of one user at a time and ${SESSION_LIMITS.waitingForHello} before their hello: the others are refused by design)`,
    });
    rows.push({
      id: '4.ii',
      measure: `  attribution: ${n} simultaneous raw engine execs in-process`,
      unit: 'ms',
      skiff: side(lat.raw),
      target: 'info',
    });
    const peak = peakReset ? Math.max(hwm, sampler.maxRss) : sampler.maxRss;
    rows.push({
      id: '6b',
      measure: `daemon RSS peak during #4 (${n} sessions)`,
      unit: 'MB',
      skiff: { median: mb(peak), p95: mb(peak), n: 1 },
      target: '≤ 70 MB',
      met: peak <= 70 * MB,
      note: peakReset ? 'VmHWM reset before #4, plus 20 ms sampling' : 'sampled every 20 ms (VmHWM reset refused)',
    });
    say(`4 p95 ${round(p95(lat.skiff))} vs ${round(p95(lat.docker))} ms; wrong ${wrong.skiff}/${wrong.docker}; daemon peak ${mb(peak)} MB`);
    if (failed.length) say(`4 failures: ${failed.join(' | ')}`);
  }

  // --- 6c ----------------------------------------------------------------------------------------
  async function measureShellMemory() {
    say(`6 login client RSS: ${CFG.memoryPairs} pairs of login -c 'sleep 2' | docker exec CTR sleep 2`);
    noteLoad('6');
    const client: number[] = [];
    const cli: number[] = [];
    const peakOf = async (run: (onSpawn: (pid: number | undefined) => void) => Promise<TimedResult>) => {
      let sampler: ReturnType<typeof sampleMemory> | undefined;
      const r = await run((pid) => {
        if (pid !== undefined) sampler = sampleMemory(pid, 50);
      });
      check(r, 'memory run');
      const s = sampler?.stop();
      return Math.max(s?.hwm ?? 0, s?.maxRss ?? 0);
    };
    for (let i = 0; i < CFG.memoryPairs; i++) {
      client.push(await peakOf((onSpawn) => login('sleep 2', { onSpawn: (c) => onSpawn(c.pid) })));
      cli.push(await peakOf((onSpawn) => dexec([c0, 'sleep', '2'], { onSpawn: (c) => onSpawn(c.pid) })));
    }
    raw.clientMemory = { loginClientPeakMB: client.map((v) => round(v / MB, 2)), dockerCliPeakMB: cli.map(mb) };
    const peak = median(client);
    rows.push({
      id: '6c',
      measure: "login client RSS per session (-c 'sleep 2'), docker CLI beside it",
      unit: 'MB',
      skiff: side(client.map((v) => round(v / MB, 2))),
      baseline: side(cli.map(mb)),
      target: '≤ 2 MB',
      met: peak <= 2 * MB,
    });
    say(`6c login client ${round(peak / MB, 2)} MB vs docker CLI ${mb(median(cli))} MB`);
  }

  // --- 9 -----------------------------------------------------------------------------------------
  async function measureDaemonRestart(d: DaemonHandle): Promise<DaemonHandle> {
    const n = CFG.restartSessions;
    say(`9 restart: ${n} sessions of -c cat across kill -9 of the daemon and a new start`);
    noteLoad('9');
    let next: DaemonHandle = d;
    const result = await measureRestart({
      launcher: LAUNCHER,
      env: loginEnv,
      sessions: n,
      async kill() {
        process.kill(d.pid, 'SIGKILL');
        await d.exited;
        daemons.delete(d);
      },
      async restart() {
        next = await startDaemon(paths, daemonEnv);
        daemons.add(next);
        await waitConverged(
          next,
          containers.map((c) => c.name),
          users,
        );
      },
    });
    raw.restart = result;
    rows.push({
      id: '9',
      measure: `${n} sessions of -c cat across kill -9 of the daemon and a restart`,
      unit: 'sessions',
      skiff: { median: n - result.lost, p95: n - result.lost, n },
      target: 'bytes keep flowing; exit codes delivered; 0 lost',
      met: result.lost === 0,
      note: `${result.lost} lost; a line echoed in ${round(result.echoWhileDownMs)} ms while no daemon ran; all exit codes back ${round(result.exitsAfterRestartMs)} ms after the new start${result.failures.length ? `; ${result.failures.join(' | ')}` : ''}`,
    });
    say(`9 ${n - result.lost}/${n} sessions intact`);
    return next;
  }

  // --- 2 -----------------------------------------------------------------------------------------
  async function measureStdout(d: DaemonHandle) {
    const bytes = CFG.streamBytes;
    say(`2 stdout: ${CFG.streamPairs} pairs of ${mb(bytes)} MiB from head -c`);
    noteLoad('2');
    const a: number[] = [];
    const b: number[] = [];
    const cpuA: CpuUse[] = [];
    const cpuB: CpuUse[] = [];
    for (let i = 0; i < CFG.streamPairs; i++) {
      const A = await withCpu(d.pid, (onSpawn) => login(`head -c ${bytes} /dev/zero`, { keepStdout: false, timeoutMs: 600_000, onSpawn }));
      check(A.r, 'login head -c');
      if (A.r.stdoutBytes !== bytes) throw new Error(`login head -c: ${A.r.stdoutBytes} bytes, expected ${bytes}`);
      a.push(bytes / 1e6 / (A.r.ms / 1000));
      cpuA.push(A.cpu);
      const B = await withCpu(d.pid, (onSpawn) =>
        dexec([c0, 'head', '-c', String(bytes), '/dev/zero'], { keepStdout: false, timeoutMs: 600_000, onSpawn }),
      );
      check(B.r, 'docker exec head -c');
      if (B.r.stdoutBytes !== bytes) throw new Error(`docker exec head -c: ${B.r.stdoutBytes} bytes, expected ${bytes}`);
      b.push(bytes / 1e6 / (B.r.ms / 1000));
      cpuB.push(B.cpu);
    }
    throughputRow('2', `stdout ${mb(bytes)} MiB (head -c in the container → bench)`, a, b, cpuA, cpuB, bytes);
  }

  // --- 3 -----------------------------------------------------------------------------------------
  async function measureStdin(d: DaemonHandle) {
    const bytes = CFG.streamBytes;
    say(`3 stdin: ${CFG.streamPairs} pairs of ${mb(bytes)} MiB into cat >/dev/null`);
    noteLoad('3');
    // Once, small: every byte arrives (wc -c), on both paths.
    const probe = 16 * MB;
    const pa = await login('wc -c', { feed: zeros(probe) });
    const pb = await dexec(['-i', c0, 'sh', '-c', 'wc -c'], { feed: zeros(probe) });
    check(pa, 'login wc -c', `${probe}\n`);
    check(pb, 'docker exec -i wc -c', `${probe}\n`);
    const a: number[] = [];
    const b: number[] = [];
    const cpuA: CpuUse[] = [];
    const cpuB: CpuUse[] = [];
    for (let i = 0; i < CFG.streamPairs; i++) {
      const A = await withCpu(d.pid, (onSpawn) => login('cat >/dev/null', { feed: zeros(bytes), timeoutMs: 600_000, onSpawn }));
      check(A.r, 'login cat >/dev/null');
      a.push(bytes / 1e6 / (A.r.ms / 1000));
      cpuA.push(A.cpu);
      const B = await withCpu(d.pid, (onSpawn) =>
        dexec(['-i', c0, 'sh', '-c', 'cat >/dev/null'], { feed: zeros(bytes), timeoutMs: 600_000, onSpawn }),
      );
      check(B.r, 'docker exec -i cat >/dev/null');
      b.push(bytes / 1e6 / (B.r.ms / 1000));
      cpuB.push(B.cpu);
    }
    throughputRow('3', `stdin ${mb(bytes)} MiB (bench → cat >/dev/null)`, a, b, cpuA, cpuB, bytes);
  }

  function throughputRow(id: string, measure: string, a: number[], b: number[], cpuA: CpuUse[], cpuB: CpuUse[], bytes: number) {
    // CPU seconds per GiB moved, medians over the runs: where a 2-core machine spends its time.
    const perGiB = (list: CpuUse[], key: keyof CpuUse) => round(median(list.map((c) => (c[key] * GiB) / bytes)), 2);
    const cpu = {
      skiff: { loginClient: perGiB(cpuA, 'client'), daemon: perGiB(cpuA, 'daemon'), dockerd: perGiB(cpuA, 'dockerd') },
      docker: { dockerCli: perGiB(cpuB, 'client'), dockerd: perGiB(cpuB, 'dockerd') },
    };
    raw[`throughput${id}`] = {
      skiffMBps: a.map((v) => round(v)),
      dockerMBps: b.map((v) => round(v)),
      cpuSecondsPerGiB: cpu,
      cpuRuns: { skiff: cpuA, docker: cpuB },
    };
    const ratio = median(a) / median(b);
    // The second figure is the slow tail: the 5th percentile of throughput (95th of time).
    const tail = (v: number[]): Side => ({ median: round(median(v)), p95: round(quantileLow(v)), n: v.length });
    rows.push({
      id,
      measure,
      unit: 'MB/s',
      skiff: tail(a),
      baseline: tail(b),
      ratio: round(ratio),
      ratioOf: 'median',
      target: 'ratio ≥ 0.95; daemon CPU ≈ 0',
      met: ratio >= 0.95,
      note: `CPU s per GiB: login client ${cpu.skiff.loginClient} + daemon ${cpu.skiff.daemon} + dockerd ${cpu.skiff.dockerd}; docker CLI ${cpu.docker.dockerCli} + dockerd ${cpu.docker.dockerd}`,
    });
    say(`${id} ${round(median(a))} vs ${round(median(b))} MB/s`);
  }

  // --- 8 -----------------------------------------------------------------------------------------
  async function measureSlowReader(d: DaemonHandle) {
    const seconds = CFG.slowSeconds;
    const rate = CFG.slowRate;
    say(`8 slow reader: login -c yes read at ${rate} B/s for ${seconds} s`);
    noteLoad('8');
    const before: number[] = [];
    for (let i = 0; i < 5; i++) {
      before.push(d.rss());
      await sleep(100);
    }
    const enginePid = dockerdPid();
    const dockerdBefore = enginePid ? (procMemory(enginePid)?.rss ?? 0) : 0;
    const sampler = sampleMemory(d.pid, 100);
    const dockerdSampler = enginePid ? sampleMemory(enginePid, 250) : undefined;
    const child = start(LAUNCHER, ['-c', 'yes'], { stdio: ['ignore', 'pipe', 'pipe'], env: loginEnv });
    const exited = new Promise<void>((r) => child.once('exit', () => r()));
    const stdout = child.stdout!;
    stdout.pause();
    let got = 0;
    const perTick = Math.max(1, Math.round(rate / 10));
    const tick = setInterval(() => {
      let want = perTick;
      while (want > 0) {
        const chunk = stdout.read(Math.min(want, 1000)) as Buffer | null;
        if (!chunk) break;
        got += chunk.length;
        want -= chunk.length;
      }
    }, 100);
    await sleep(seconds * 1000);
    clearInterval(tick);
    const during = sampler.stop();
    const dockerdDuring = dockerdSampler?.stop();
    if (child.pid !== undefined && child.exitCode === null) process.kill(child.pid, 'SIGTERM');
    stdout.resume();
    await exited;
    await sleep(2000);
    const after = d.rss();
    // The client left: its exec must not keep running in the container.
    const top = await timed('docker', ['top', c0, '-eo', 'pid,args']);
    const leftover = top.stdout
      .toString()
      .split('\n')
      .filter((l) => /\byes\b/.test(l)).length;
    const base = median(before);
    const growth = during.maxRss - base;
    raw.slowReader = {
      seconds,
      rate,
      bytesRead: got,
      daemonBeforeMB: mb(base),
      daemonMaxMB: mb(during.maxRss),
      daemonAfterMB: mb(after),
      daemonSamplesMB: during.samples.filter((_, i) => i % 10 === 0).map(mb),
      dockerdGrowthMB: dockerdDuring ? mb(dockerdDuring.maxRss - dockerdBefore) : null,
      leftoverProcessesAfterClientLeft: leftover,
    };
    rows.push({
      id: '8',
      measure: `slow reader (${rate / 1000} KB/s for ${seconds} s, container writes fast)`,
      unit: 'MB',
      skiff: { median: mb(growth), p95: mb(growth), n: 1 },
      target: 'daemon RSS growth ≤ 16 MB',
      met: growth <= 16 * MB,
      note: `daemon ${mb(base)} → max ${mb(during.maxRss)} MB; read ${round(got / 1000, 1)} KB; dockerd growth ${dockerdDuring ? mb(dockerdDuring.maxRss - dockerdBefore) : '?'} MB; ${leftover === 0 ? 'exec ended when the client left' : `${leftover} process(es) left running after the client left`}`,
    });
    say(`8 daemon RSS growth ${mb(growth)} MB (read ${got} bytes)`);
  }

  // --- 7 -----------------------------------------------------------------------------------------
  async function measureReconcile() {
    const count = Math.max(CFG.reconcileContainers, 1);
    say(`7 idle reconcile: ${count} containers in place, ${CFG.reconcileStarts} daemon starts`);
    noteLoad('7');
    const all: ContainerDef[] = Array.from({ length: count }, (_, i) =>
      i < containers.length ? containers[i]! : { name: `${prefix}-c${i}`, image: BUSYBOX_IMAGE, cmd: ['sleep', '1000000'] },
    );
    const mapped = userDefs.filter((u) => all.some((c) => c.name === u.container));
    const p7: DaemonPaths = { ...paths, config: join(tmp, 'persist7', 'config.yaml'), runDir: join(tmp, 'run7') };
    await mkdir(dirname(p7.config), { recursive: true });
    await writeFile(p7.config, configYaml(all, mapped));
    const names = all.map((c) => c.name);
    const userNames = mapped.map((u) => u.name);
    // Put them in place (the first start creates what is missing).
    {
      const d = await startDaemon(p7, daemonEnv);
      daemons.add(d);
      await waitConverged(d, names, userNames, 300_000, 100);
      await d.stop();
      daemons.delete(d);
    }
    const afterEngine: number[] = [];
    const fromSpawn: number[] = [];
    const engineAfterSpawn: number[] = [];
    const changed: string[] = [];
    for (let i = 0; i < CFG.reconcileStarts; i++) {
      await sleep(500);
      const d = await startDaemon(p7, daemonEnv);
      daemons.add(d);
      const snap = await waitConverged(d, names, userNames, 120_000, 10);
      const reachable = await d.logged('Docker engine reachable', 5000);
      const engineAt = Date.parse(reachable.time ?? '');
      const convAt = Date.parse(snap.reconcile.lastRunAt ?? '');
      afterEngine.push(convAt - engineAt);
      fromSpawn.push(convAt - d.spawnedAt);
      engineAfterSpawn.push(engineAt - d.spawnedAt);
      // An idle pass changes nothing; anything logged as converged means it did work.
      for (const e of d.logs)
        if (e.msg === 'Converged' || e.msg === 'Not converged') changed.push(`${String(e.item)}: ${String(e.status)}`);
      await d.stop();
      daemons.delete(d);
    }
    raw.reconcile = {
      containers: count,
      afterEngineMs: afterEngine,
      fromSpawnMs: fromSpawn,
      engineReachableAfterSpawnMs: engineAfterSpawn,
      changesSeen: changed,
    };
    rows.push({
      id: '7',
      measure: `idle reconcile, ${count} containers in place: engine answered → converged`,
      unit: 'ms',
      skiff: side(afterEngine),
      target: '≤ 300 ms',
      met: p95(afterEngine) <= 300,
      note: `process spawn → converged ${round(median(fromSpawn))} ms median (engine answered ${round(median(engineAfterSpawn))} ms after spawn)${changed.length ? `; NOT idle: ${changed.slice(0, 3).join(', ')}` : ''}`,
    });
    say(`7 converge after engine ${round(median(afterEngine))} ms median, spawn→converged ${round(median(fromSpawn))} ms`);
  }

  // --- 5 -----------------------------------------------------------------------------------------
  async function measureSsh() {
    const targetText = 'report both';
    const unavailable = await deviceUnavailable(REPO);
    if (unavailable) {
      skipRow('5a', 'ssh -T core@127.0.0.1 true via OpenSSH + login shell', targetText, unavailable);
      skipRow('5b', 'ssh -T core@127.0.0.1 true via the built-in gateway', targetText, unavailable);
      return;
    }
    say('5 ssh: building and starting the device container');
    noteLoad('5');
    const ctr = `${prefix}-dev-core`;
    let device: Device;
    try {
      device = await startDevice({ repoRoot: REPO, prefix, tmp, container: ctr, containerImage: DEBIAN_IMAGE, dockerCli, log: say });
    } catch (err) {
      const reason = `device did not start: ${(err as Error).message.split('\n')[0]}`;
      skipRow('5a', 'ssh -T core@127.0.0.1 true via OpenSSH + login shell', targetText, reason);
      skipRow('5b', 'ssh -T core@127.0.0.1 true via the built-in gateway', targetText, reason);
      return;
    }
    const rootWait = await waitForSsh(device, device.sshPort, 'root', 60_000);
    const coreWait = rootWait ?? (await waitForSsh(device, device.sshPort, 'core', 180_000));
    const gatewayWait = await waitForSsh(device, device.gatewayPort, 'core', coreWait ? 5_000 : 60_000);
    const docker = `/usr/local/bin/docker exec ${ctr} true`;
    if (rootWait) {
      skipRow('5a', 'ssh -T core@127.0.0.1 true via OpenSSH + login shell', targetText, `sshd in the device: ${rootWait}`);
      skipRow('5b', 'ssh -T core@127.0.0.1 true via the built-in gateway', targetText, `sshd in the device: ${rootWait}`);
      return;
    }
    const plainDocker = await device.ssh(device.sshPort, 'root', docker);
    if (plainDocker.code !== 0) say(`5 warning: ${docker} over ssh failed: ${plainDocker.stderr.trim()}`);
    for (let i = 0; i < CFG.warmup; i++) {
      if (!coreWait) await device.ssh(device.sshPort, 'core', 'true');
      if (!gatewayWait) await device.ssh(device.gatewayPort, 'core', 'true');
      await device.ssh(device.sshPort, 'root', docker);
    }
    const openssh: number[] = [];
    const gateway: number[] = [];
    const plain: number[] = [];
    const plainExec: number[] = [];
    for (let i = 0; i < CFG.sshPairs; i++) {
      if (!coreWait) {
        const r = await device.ssh(device.sshPort, 'core', 'true');
        check(r, 'ssh core (OpenSSH)');
        openssh.push(r.ms);
      }
      if (!gatewayWait) {
        const r = await device.ssh(device.gatewayPort, 'core', 'true');
        check(r, 'ssh core (gateway)');
        gateway.push(r.ms);
      }
      const rp = await device.ssh(device.sshPort, 'root', 'true');
      check(rp, 'ssh root true');
      plain.push(rp.ms);
      if (plainDocker.code === 0) {
        const rd = await device.ssh(device.sshPort, 'root', docker);
        check(rd, 'ssh root docker exec');
        plainExec.push(rd.ms);
      }
    }
    raw.ssh = {
      opensshLoginShellMs: openssh,
      gatewayMs: gateway,
      plainAccountTrueMs: plain,
      plainAccountDockerExecMs: plainExec,
      device: device.name,
    };
    const base = plainExec.length ? side(plainExec) : 'skipped: docker exec inside the device failed';
    const ratio = (v: number[]) => (plainExec.length && v.length ? round(median(v) / median(plainExec)) : undefined);
    if (coreWait) skipRow('5a', 'ssh -T core@127.0.0.1 true via OpenSSH + login shell', targetText, `login never succeeded: ${coreWait}`);
    else
      rows.push({
        id: '5a',
        measure: 'ssh -T core@127.0.0.1 true: OpenSSH + login shell vs plain account + docker exec',
        unit: 'ms',
        skiff: side(openssh),
        baseline: base,
        ratio: ratio(openssh),
        ratioOf: 'median',
        target: targetText,
      });
    if (gatewayWait)
      skipRow('5b', 'ssh -T core@127.0.0.1 true via the built-in gateway', targetText, `gateway did not accept the login: ${gatewayWait}`);
    else
      rows.push({
        id: '5b',
        measure: 'ssh -T core@127.0.0.1 true: built-in gateway vs plain account + docker exec',
        unit: 'ms',
        skiff: side(gateway),
        baseline: base,
        ratio: ratio(gateway),
        ratioOf: 'median',
        target: targetText,
      });
    rows.push({ id: '5c', measure: '  reference: ssh -T root@ (plain account) true', unit: 'ms', skiff: side(plain), target: 'info' });
    say(
      `5 openssh ${round(median(openssh))} ms, gateway ${round(median(gateway))} ms, plain ${round(median(plain))} ms, plain+docker exec ${round(median(plainExec))} ms`,
    );
  }

  // --- report ------------------------------------------------------------------------------------
  const table = renderTable(rows);
  process.stdout.write(`\n${table}\n`);
  const result = {
    environment,
    config: CFG,
    loadavg: loads,
    failures,
    finishedAt: new Date().toISOString(),
    durationS: round((Date.now() - t0) / 1000, 1),
    rows,
    raw,
  };
  await mkdir(dirname(OUT), { recursive: true });
  await writeFile(OUT, `${JSON.stringify(result, null, 2)}\n`);
  process.stdout.write(
    `\nload average (1/5/15 min) at start ${loads.start?.join(' ')}, at end ${loads.end?.join(' ')}; results in ${OUT}\n`,
  );
  if (failures.length)
    process.stdout.write(`${failures.length} measure(s) failed: ${failures.map((f) => f.id).join(', ')} (details in the JSON)\n`);
  return failures.length ? 1 : 0;
}

function quantileLow(values: readonly number[]): number {
  const sorted = [...values].sort((x, y) => x - y);
  const pos = (sorted.length - 1) * 0.05;
  const lo = Math.floor(pos);
  const a = sorted[lo] ?? Number.NaN;
  const b = sorted[Math.ceil(pos)] ?? Number.NaN;
  return a + (b - a) * (pos - lo);
}

function renderTable(list: Row[]): string {
  const fmt = (s: Side | string | undefined, unit: string) =>
    s === undefined ? '—' : typeof s === 'string' ? s : `${s.median} / ${s.p95} ${unit}`;
  const header = ['#', 'measure', 'skiff-core median / p95', 'baseline median / p95', 'ratio', 'target', 'met?'];
  const body = list.map((r) => [
    r.id,
    r.measure,
    fmt(r.skiff, r.unit),
    fmt(r.baseline, r.unit),
    r.ratioText ?? (r.ratio === undefined ? '—' : `${r.ratio}${r.ratioOf && r.ratioOf !== 'median' ? ` (${r.ratioOf})` : ''}`),
    r.target,
    r.met === undefined ? '—' : r.met ? 'yes' : 'NO',
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((b) => (b[i] ?? '').length)));
  const line = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i] ?? 0)).join(' | ')} |`;
  const out = [line(header), `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`, ...body.map(line)];
  const notes = list.filter((r) => r.note).map((r) => `  ${r.id}: ${r.note}`);
  if (notes.length) out.push('', 'notes:', ...notes);
  out.push('', 'throughput rows: the second figure is the slow tail (5th percentile of MB/s).');
  return out.join('\n');
}

let code: number;
try {
  code = await main();
} catch (err) {
  process.stderr.write(`bench failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  code = 1;
} finally {
  await cleanup();
}
process.exit(code);
