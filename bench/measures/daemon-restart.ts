// Measure 9: sessions that carry on across `kill -9` of the daemon and its restart.
import { measureRestart } from '../lib/restart.js';
import { startDaemon, waitConverged, type DaemonHandle } from '../lib/daemon.js';
import { round } from '../lib/stats.js';
import { CFG, LAUNCHER } from '../lib/config.js';
import type { BenchContext } from '../lib/context.js';
import { daemons } from '../lib/lifecycle.js';
import { noteLoad, raw, rows, say } from '../lib/report.js';

export async function measureDaemonRestart(ctx: BenchContext, d: DaemonHandle): Promise<DaemonHandle> {
  const { users, containers, paths, daemonEnv, loginEnv } = ctx;
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
