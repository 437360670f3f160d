// The benchmark's output: progress lines, the rows of the table, raw figures for results.json, and
// the guard that turns a failing measure into a row while the others still run.
import { loadavg } from 'node:os';
import { daemons, isCleaning } from './lifecycle.js';
import { liveChildren } from './proc.js';
import { median, p95, round } from './stats.js';

// --- output -----------------------------------------------------------------------------------
/** When the run started. */
export const t0 = Date.now();
export function say(line: string): void {
  process.stderr.write(`[bench +${((Date.now() - t0) / 1000).toFixed(1)}s] ${line}\n`);
}

export interface Side {
  median: number;
  p95: number;
  n: number;
}
export interface Row {
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
export const rows: Row[] = [];
export const raw: Record<string, unknown> = {};
export const loads: Record<string, number[]> = {};

export function side(values: readonly number[]): Side {
  return { median: round(median(values)), p95: round(p95(values)), n: values.length };
}

/** Runs one measure; a failure becomes a row (with the reason) and the others still run. */
export async function guard(id: string, measure: string, target: string, run: () => Promise<void>): Promise<void> {
  if (isCleaning()) return;
  try {
    await run();
  } catch (err) {
    if (isCleaning()) return;
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
export const failures: { id: string; message: string }[] = [];
function daemonPids(): Set<number> {
  return new Set([...daemons].map((d) => d.pid));
}

export function skipRow(id: string, measure: string, target: string, reason: string): void {
  rows.push({ id, measure, unit: '', skiff: `skipped: ${reason}`, target });
  say(`${id} skipped: ${reason}`);
}

export function noteLoad(key: string): void {
  loads[key] = loadavg().map((v) => round(v));
}

export function quantileLow(values: readonly number[]): number {
  const sorted = [...values].sort((x, y) => x - y);
  const pos = (sorted.length - 1) * 0.05;
  const lo = Math.floor(pos);
  const a = sorted[lo] ?? Number.NaN;
  const b = sorted[Math.ceil(pos)] ?? Number.NaN;
  return a + (b - a) * (pos - lo);
}

export function renderTable(list: Row[]): string {
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
