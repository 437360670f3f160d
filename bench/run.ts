// `npm run bench`: skiff-core's login path next to the plain Docker CLI doing the same work, on the
// real engine, interleaved (A B A B …) so machine noise hits both sides. Prints a table and writes
// bench/results.json. See bench/README.md for what each measure does and the knobs.
//
// Nothing on the machine changes: the daemon runs as a child with `--users lookup` (it only reads
// /etc/passwd), SSH is measured inside a device container, and every container and image made
// here is named skb-<random>-… and removed at the end (also on failure and Ctrl-C).
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import { cpus, totalmem } from 'node:os';
import { dirname, join } from 'node:path';
import { configYaml, startDaemon, waitConverged, type ContainerDef, type DaemonPaths, type UserDef } from './lib/daemon.js';
import { BUNDLE, BUSYBOX_IMAGE, CFG, DEBIAN_IMAGE, LAUNCHER, ONLY, OUT, QUICK, REPO } from './lib/config.js';
import type { BenchContext } from './lib/context.js';
import { check, cleanEnv, mb, pickUsers } from './lib/helpers.js';
import { cleanup, daemons, run } from './lib/lifecycle.js';
import { MB, procMemory, setClockTicks, sleep, start, timed } from './lib/proc.js';
import { failures, loads, noteLoad, raw, renderTable, rows, say, t0 } from './lib/report.js';
import { max, median, round } from './lib/stats.js';
import { measureBackup } from './measures/backup.js';
import { measureConcurrency } from './measures/concurrency.js';
import { measureDaemonRestart } from './measures/daemon-restart.js';
import { measureLatency } from './measures/latency.js';
import { measureReconcile } from './measures/reconcile.js';
import { measureShellMemory } from './measures/shell-memory.js';
import { measureSlowReader } from './measures/slow-reader.js';
import { measureSsh } from './measures/ssh.js';
import { measureStdin, measureStdout } from './measures/throughput.js';
import { guard } from './lib/report.js';

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
  const prefix = (run.prefix = `skb-${randomBytes(3).toString('hex')}`);
  const tmp = (run.tmp = await mkdtemp(`/tmp/${prefix}-`));
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
  const ctx: BenchContext = {
    prefix,
    tmp,
    dockerCli,
    users,
    containers,
    userDefs,
    c0,
    paths,
    daemonEnv,
    loginEnv,
    rootSocket,
    login,
    dexec,
  };

  const needMain = [1, 2, 3, 4, 6, 8, 9, 10].some((m) => ONLY.has(m));
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

    if (ONLY.has(1)) await guard('1', 'one command: login -c true vs docker exec CTR true', 'ratio ≤ 0.4', () => measureLatency(ctx));
    if (ONLY.has(4)) await guard('4', 'simultaneous sessions', 'all correct; p95 ratio ≤ 1.1', () => measureConcurrency(ctx, d));
    if (ONLY.has(6)) await guard('6c', 'login client RSS', '≤ 2 MB', () => measureShellMemory(ctx));
    if (ONLY.has(2)) await guard('2', 'stdout throughput', 'ratio ≥ 0.95', () => measureStdout(ctx, d));
    if (ONLY.has(3)) await guard('3', 'stdin throughput', 'ratio ≥ 0.95', () => measureStdin(ctx, d));
    if (ONLY.has(8)) await guard('8', 'slow reader', 'daemon RSS growth ≤ 16 MB', () => measureSlowReader(ctx, d));
    if (ONLY.has(6)) {
      await sleep(2000);
      raw.daemonRssAfterAllMB = mb(d.rss());
    }
    if (ONLY.has(10)) await guard('10', 'backup and restore', 'ratio ≤ 1.2', () => measureBackup(ctx));
    let current = d;
    if (ONLY.has(9)) {
      await guard('9', '-c cat across kill -9 of the daemon and a restart', '0 sessions lost', async () => {
        current = await measureDaemonRestart(ctx, d);
      });
    }
    await current.stop();
    daemons.delete(current);
  }
  if (ONLY.has(7)) await guard('7', 'idle reconcile', '≤ 300 ms', () => measureReconcile(ctx));
  if (ONLY.has(5)) await guard('5', 'ssh end to end', 'report both', () => measureSsh(ctx));
  noteLoad('end');

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
