// Measure 8: a client that reads slowly must not make the daemon buffer what it has not read.
import type { DaemonHandle } from '../lib/daemon.js';
import { MB, procMemory, sampleMemory, sleep, start, timed } from '../lib/proc.js';
import { median, round } from '../lib/stats.js';
import { CFG, LAUNCHER } from '../lib/config.js';
import type { BenchContext } from '../lib/context.js';
import { dockerdPid, mb } from '../lib/helpers.js';
import { noteLoad, raw, rows, say } from '../lib/report.js';

export async function measureSlowReader(ctx: BenchContext, d: DaemonHandle) {
  const { c0, loginEnv } = ctx;
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
