// Measures 2 and 3: bulk stdout and stdin through a login against `docker exec`, with the CPU
// time each side costs the client, the daemon and dockerd.
import type { DaemonHandle } from '../lib/daemon.js';
import { MB } from '../lib/proc.js';
import { median, round } from '../lib/stats.js';
import { CFG, GiB } from '../lib/config.js';
import type { BenchContext } from '../lib/context.js';
import { check, mb, withCpu, zeros, type CpuUse } from '../lib/helpers.js';
import { noteLoad, quantileLow, raw, rows, say, type Side } from '../lib/report.js';

export async function measureStdout(ctx: BenchContext, d: DaemonHandle) {
  const { c0, login, dexec } = ctx;
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

export async function measureStdin(ctx: BenchContext, d: DaemonHandle) {
  const { c0, login, dexec } = ctx;
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
