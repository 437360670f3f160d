// Measure 6c: the login client's memory while a session runs, against a bare `node -e`.
import { MB, sampleMemory, type TimedResult } from '../lib/proc.js';
import { median, round } from '../lib/stats.js';
import { CFG } from '../lib/config.js';
import type { BenchContext } from '../lib/context.js';
import { check, mb } from '../lib/helpers.js';
import { noteLoad, raw, rows, say, side } from '../lib/report.js';

export async function measureShellMemory(ctx: BenchContext) {
  const { c0, login, dexec } = ctx;
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
