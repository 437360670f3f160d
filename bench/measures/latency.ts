// Measure 1: one command through a login (`skiff-core -c true`) against `docker exec CTR true`,
// interleaved, with the in-process and raw-engine figures that show where the time goes.
import { join } from 'node:path';
import { rawExec } from '../lib/engine-raw.js';
import { sleep, timed } from '../lib/proc.js';
import { inProcessSession, startStubSessionSocket } from '../lib/session-client.js';
import { median, round } from '../lib/stats.js';
import { CFG, LAUNCHER } from '../lib/config.js';
import type { BenchContext } from '../lib/context.js';
import { check } from '../lib/helpers.js';
import { noteLoad, raw, rows, say, side } from '../lib/report.js';

export async function measureLatency(ctx: BenchContext) {
  const { tmp, c0, loginEnv, rootSocket, login, dexec } = ctx;
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
