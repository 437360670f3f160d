// npm run soak -- --minutes M: the daemon under a loop of config edits, logins, container kills
// and engine restarts, against a private engine of its own (so restarting it touches nothing
// else), printing the daemon's memory, open descriptors and errors over time. The target: no
// growth trend and no errors outside the engine's restarts. Not part of npm test.
import { execFileSync, spawn } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';
import { startDaemon, writeConfig, type DaemonHandle } from './lib/daemon.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const BUNDLE = join(ROOT, 'dist/skiff-core.mjs');
/** The login client, as installed for mapped users. */
const LAUNCHER = join(ROOT, 'dist/skiff-core-launcher');
const PROVISION = join(ROOT, 'scripts/provision.sh');
const BUSYBOX = 'skiff-core-test/busybox:latest';

const { values } = parseArgs({
  options: { minutes: { type: 'string', default: '30' }, 'restart-every': { type: 'string', default: '5' } },
});
const minutes = Number(values.minutes);
const restartEveryMs = Number(values['restart-every']) * 60_000;
if (!(minutes > 0)) throw new Error('--minutes takes a positive number');

const dir = await mkdtemp(join(tmpdir(), 'skt-soak-'));
const host = `unix://${join(dir, 'engine', 'docker.sock')}`;
const env = { ...process.env, DOCKER_HOST: host, SKIFF_CORE_USERS: 'lookup', NO_COLOR: '1' };
const docker = (...args: string[]) => execFileSync('docker', args, { env, stdio: ['ignore', 'pipe', 'ignore'] }).toString();
const startEngine = () => execFileSync('bash', [PROVISION, 'engine'], { env, stdio: 'ignore' });
async function stopEngine(): Promise<void> {
  const pid = Number((await readFile(join(dir, 'engine', 'docker.pid'), 'utf8')).trim());
  process.kill(pid, 'SIGTERM');
  while (
    await readFile(`/proc/${pid}/stat`).then(
      () => true,
      () => false,
    )
  )
    await new Promise((r) => setTimeout(r, 100));
}

const config = (edition: number) => `containers:
  skt-soak-a:
    image: ${BUSYBOX}
    cmd: ["sleep", "1000000"]
    env: ["EDITION=${edition}"]
    startAfterCreate: true
    restartPolicy: unless-stopped
  skt-soak-b:
    image: ${BUSYBOX}
    cmd: ["sleep", "1000000"]
    startAfterCreate: true
    restartPolicy: always
users:
  root:
    container: skt-soak-a
  daemon:
    container: skt-soak-b
storage:
  keepSnapshots: 2
  minFree: 100MB
`;

/** A login; undefined when it worked, else what it printed. */
function login(user: string): Promise<string | undefined> {
  return new Promise((resolve) => {
    const child = spawn(LAUNCHER, ['-c', 'echo ok'], {
      env: { PATH: process.env.PATH, SKIFF_CORE_RUN_DIR: join(dir, 'run'), SKIFF_CORE_SESSION_USER: user },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout!.on('data', (c: Buffer) => (out += c.toString()));
    child.stderr!.on('data', (c: Buffer) => (err += c.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.once('exit', (code) => {
      clearTimeout(timer);
      resolve(
        code === 0 && out === 'ok\n'
          ? undefined
          : `${user}: exit ${code}, ${JSON.stringify(out)} ${err.trim().split('\n').slice(-2).join(' | ')}`,
      );
    });
  });
}

const fds = async (pid: number) => (await readdir(`/proc/${pid}/fd`)).length;
const slope = (points: [number, number][]) => {
  const n = points.length;
  const mx = points.reduce((a, [x]) => a + x, 0) / n;
  const my = points.reduce((a, [, y]) => a + y, 0) / n;
  const num = points.reduce((a, [x, y]) => a + (x - mx) * (y - my), 0);
  const den = points.reduce((a, [x]) => a + (x - mx) ** 2, 0);
  return den === 0 ? 0 : num / den;
};

let daemon: DaemonHandle | undefined;
const counts = {
  edits: 0,
  logins: 0,
  loginFailures: 0,
  loginFailuresDuringRestart: 0,
  loginFailuresAfterKill: 0,
  kills: 0,
  engineRestarts: 0,
  daemonErrors: 0,
};
const failures: string[] = [];
let lastKill = 0;
const samples: { min: number; rssMB: number; fds: number }[] = [];
try {
  startEngine();
  execFileSync('sh', ['-c', `docker save ${BUSYBOX} | DOCKER_HOST=${host} docker load`], { stdio: 'ignore' });
  const paths = { bundle: BUNDLE, config: join(dir, 'config.yaml'), runDir: join(dir, 'run'), workDir: join(dir, 'work') };
  await writeConfig(paths.config, config(0));
  daemon = await startDaemon(paths, env);
  const started = Date.now();
  const end = started + minutes * 60_000;
  let nextRestart = started + restartEveryMs;
  let nextSample = started;
  let restarting = false;
  console.log(`soak: ${minutes} min against a private engine in ${dir}; engine restart every ${restartEveryMs / 60_000} min`);
  console.log('minute  rss MB  fds  edits  logins  failed  kills  restarts');
  for (let i = 0; Date.now() < end; i++) {
    if (Date.now() >= nextSample) {
      const sample = {
        min: +((Date.now() - started) / 60_000).toFixed(1),
        rssMB: +(daemon.rss() / 1048576).toFixed(1),
        fds: await fds(daemon.pid),
      };
      samples.push(sample);
      console.log(
        `${String(sample.min).padStart(6)}  ${String(sample.rssMB).padStart(6)}  ${String(sample.fds).padStart(3)}  ${String(counts.edits).padStart(5)}  ${String(counts.logins).padStart(6)}  ${String(counts.loginFailures).padStart(6)}  ${String(counts.kills).padStart(5)}  ${String(counts.engineRestarts).padStart(8)}`,
      );
      nextSample += 30_000;
    }
    if (Date.now() >= nextRestart) {
      restarting = true;
      await stopEngine();
      await new Promise((r) => setTimeout(r, 3000));
      startEngine();
      counts.engineRestarts++;
      nextRestart += restartEveryMs;
      setTimeout(() => (restarting = false), 20_000);
    }
    const action = i % 10;
    if (action === 0) {
      await writeConfig(paths.config, config(++counts.edits));
    } else if (action === 5) {
      try {
        docker('kill', 'skt-soak-b');
        counts.kills++;
        lastKill = Date.now();
      } catch {
        // the engine may be restarting
      }
    } else {
      const user = i % 2 ? 'root' : 'daemon';
      const failed = await login(user);
      counts.logins++;
      if (failed) {
        // The loop kills the container of `daemon` on purpose: a login into it right then may end.
        if (restarting) counts.loginFailuresDuringRestart++;
        else if (user === 'daemon' && Date.now() - lastKill < 10_000) counts.loginFailuresAfterKill++;
        else counts.loginFailures++;
        if (failures.length < 20) failures.push(`${((Date.now() - started) / 60_000).toFixed(1)} min: ${failed}`);
      }
    }
    await new Promise((r) => setTimeout(r, 500));
  }
  counts.daemonErrors = daemon.logs.filter((l) => l.level === 'error' || l.level === 'fatal').length;
  const half = samples.filter((s) => s.min >= minutes / 2);
  const summary = {
    minutes,
    ...counts,
    daemonPidUnchanged: daemon.child.exitCode === null,
    rssMB: {
      first: samples[0]?.rssMB,
      last: samples.at(-1)?.rssMB,
      max: Math.max(...samples.map((s) => s.rssMB)),
      slopeSecondHalfMBPerHour: +(slope(half.map((s) => [s.min / 60, s.rssMB])) || 0).toFixed(1),
    },
    fds: {
      first: samples[0]?.fds,
      last: samples.at(-1)?.fds,
      max: Math.max(...samples.map((s) => s.fds)),
      slopeSecondHalfPerHour: +(slope(half.map((s) => [s.min / 60, s.fds])) || 0).toFixed(1),
    },
  };
  console.log(`soak summary: ${JSON.stringify(summary, null, 2)}`);
  if (failures.length) console.log(`failed logins:\n  ${failures.join('\n  ')}`);
} finally {
  await daemon?.stop().catch(() => undefined);
  try {
    for (const id of docker('ps', '-aq').split('\n').filter(Boolean)) docker('rm', '-f', id);
    await stopEngine();
  } catch {
    // the engine is already down
  }
  await rm(dir, { recursive: true, force: true });
}
