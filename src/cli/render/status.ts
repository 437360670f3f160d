// `skiff-core status` as a person reads it. Pure: snapshot in, text out.
import type { StatusSnapshot } from '../../daemon/status.js';

type Paint = (s: string) => string;
export interface Palette {
  red: Paint;
  yellow: Paint;
  green: Paint;
  bold: Paint;
  dim: Paint;
}

export function formatDuration(ms: number): string {
  const s = Math.max(0, Math.floor(ms / 1000));
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m${s % 60 ? `${s % 60}s` : ''}`;
  const h = Math.floor(m / 60);
  if (h < 48) return `${h}h${m % 60 ? `${m % 60}m` : ''}`;
  return `${Math.floor(h / 24)}d${h % 24 ? `${h % 24}h` : ''}`;
}

function clock(iso: string | undefined): string {
  return iso ? new Date(iso).toISOString().slice(11, 19) : '-';
}

export function table(header: string[], rows: string[][], paintCell: (row: string[], col: number, text: string) => string): string[] {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').split('\n')[0]!.length)));
  const out = [header.map((h, i) => (i === header.length - 1 ? h : h.padEnd(widths[i]!))).join('  ')];
  for (const row of rows) {
    const cells = row.map((cell, i) => {
      const first = cell.split('\n')[0] ?? '';
      const padded = i === row.length - 1 ? first : first.padEnd(widths[i]!);
      return paintCell(row, i, padded);
    });
    out.push(cells.join('  ').trimEnd());
    // Multi-line details (errors with log tails) continue under the last column.
    const last = row[row.length - 1] ?? '';
    const indent = widths.slice(0, -1).reduce((a, w) => a + w + 2, 0);
    for (const more of last.split('\n').slice(1)) out.push(`${' '.repeat(indent)}${more}`);
  }
  return out;
}

export function formatStatus(s: StatusSnapshot, color: Palette, now = Date.now()): string {
  const lines: string[] = [];
  const d = s.daemon;
  lines.push(
    `daemon    ${d.running ? color.green('running') : color.yellow('not running')}` +
      (d.running && d.pid
        ? ` (pid ${d.pid}${d.startedAt ? `, up ${formatDuration(now - Date.parse(d.startedAt))}` : ''}, ${d.version})`
        : ''),
  );
  const c = s.config;
  const warn = c.warnings.length ? `, ${c.warnings.length} warning(s)` : '';
  if (c.ok) lines.push(`config    ${c.path}: ${color.green('ok')}${warn}${c.loadedAt ? `, loaded ${clock(c.loadedAt)}` : ''}`);
  else {
    lines.push(
      `config    ${c.path}: ${color.red(`${c.errors.length} error(s)`)}${warn}${c.loadedAt ? `; still using the config loaded ${clock(c.loadedAt)}` : '; nothing is changed until it is fixed'}`,
    );
    for (const e of c.errors.slice(0, 10))
      lines.push(`          ${e.file}:${e.line ?? '?'}:${e.col ?? '?'}: ${e.path.join('.')}: ${e.message}`);
  }
  const e = s.engine;
  lines.push(
    `engine    ${e.reachable ? `${color.green('reachable')} (Docker ${e.version ?? '?'}, API ${e.apiVersion ?? '?'})` : `${color.red('docker unavailable')}${e.error ? `: ${e.error}` : ''}`}`,
  );
  if (s.gateway?.listening.length) {
    lines.push(
      `ssh       ${s.gateway.listening.join(', ')}${s.gateway.hostKeyFingerprint ? `, host key ${s.gateway.hostKeyFingerprint}` : ''}`,
    );
  }
  const r = s.reconcile;
  const last = r.lastRunAt ? `, last pass ${clock(r.lastRunAt)} ${r.lastOk ? 'ok' : 'with problems'}` : '';
  const retry = r.state === 'waiting-retry' && r.nextRetryAt ? `, retrying ${clock(r.nextRetryAt)}` : '';
  lines.push(`converge  ${r.state}${last}${retry}${r.lastError ? ` (${r.lastError})` : ''}`);

  if (s.images.length) {
    lines.push('');
    const rows = s.images.map((i) => {
      let detail = i.message ?? (i.id ? i.id.slice(0, 19) : '');
      if (i.state === 'pulling' && i.pull)
        detail = `${i.pull.from} ${i.pull.percent ?? '?'}% of ${(i.pull.total / 1048576).toFixed(1)} MiB`;
      if (i.state === 'building' && i.build) detail = `step ${i.build.step}/${i.build.total}: ${i.build.text}`;
      return [i.ref, i.state, detail];
    });
    lines.push(...table(['IMAGE', 'STATE', 'DETAIL'], rows, (row, col, text) => (col === 1 ? stateColor(row[1]!, color)(text) : text)));
  }
  if (s.containers.length) {
    lines.push('');
    const rows = s.containers.map((x) => {
      const up = x.state === 'running' && x.startedAt ? formatDuration(now - Date.parse(x.startedAt)) : '-';
      const detail = [
        x.activity,
        x.pending ? `pending: ${x.pending}` : undefined,
        x.problem,
        x.message,
        x.lastLogs ? `last log lines:\n${x.lastLogs}` : undefined,
      ]
        .filter(Boolean)
        .join('\n');
      return [x.name, x.state, up, x.image || '-', x.readiness, String(x.restartCount ?? '-'), detail];
    });
    lines.push(
      ...table(['CONTAINER', 'STATE', 'UP', 'IMAGE', 'READINESS', 'RESTARTS', 'DETAIL'], rows, (row, col, text) =>
        col === 1 ? stateColor(row[1]!, color)(text) : text,
      ),
    );
  }
  if (s.users.length) {
    lines.push('');
    const rows = s.users.map((u) => [u.name, u.container, u.ready ? 'yes' : 'no', String(u.sessions), u.problem ?? '']);
    lines.push(
      ...table(['USER', 'CONTAINER', 'READY', 'SESSIONS', 'DETAIL'], rows, (row, col, text) =>
        col === 2 ? (row[2] === 'yes' ? color.green : color.yellow)(text) : text,
      ),
    );
  }
  return lines.join('\n');
}

function stateColor(state: string, color: Palette): Paint {
  if (['running', 'present'].includes(state)) return color.green;
  if (['failed', 'foreign', 'missing', 'exited', 'dead', 'restarting'].includes(state)) return color.red;
  return color.yellow;
}
