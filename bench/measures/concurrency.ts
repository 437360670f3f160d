// Measure 4: many simultaneous sessions, each checked for its own output, against as many
// simultaneous `docker exec`s; per-session latency and the daemon's peak memory (6b).
import { SESSION_LIMITS } from '../../src/session/session-server.js';
import type { DaemonHandle } from '../lib/daemon.js';
import { rawExec } from '../lib/engine-raw.js';
import { MB, procMemory, resetPeak, sampleMemory } from '../lib/proc.js';
import { inProcessSession } from '../lib/session-client.js';
import { median, p95, round } from '../lib/stats.js';
import { CFG } from '../lib/config.js';
import type { BenchContext } from '../lib/context.js';
import { mb } from '../lib/helpers.js';
import { noteLoad, raw, rows, say, side } from '../lib/report.js';

export async function measureConcurrency(ctx: BenchContext, d: DaemonHandle) {
  const { c0, rootSocket, login, dexec } = ctx;
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
