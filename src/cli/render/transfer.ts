// Progress of a long byte stream (a backup written, a restore read): one line redrawn in place on
// a terminal, nothing on a pipe or journal (the summary line at the end says what was done).
import { Transform } from 'node:stream';
import { formatBytes } from '../../reconcile/disk-space.js';
import type { Io } from '../io.js';

export interface TransferMeter {
  /** Pass the bytes through this to count them. */
  counter: Transform;
  bytes(): number;
  /** Clears the progress line. */
  close(): void;
}

const REDRAW_MS = 250;

/** The progress line: "backing up core: 1.2 GB" or, with a total, "… 45% (1.2 GB of 2.7 GB)". */
export function transferLine(what: string, bytes: number, total?: number): string {
  if (!total) return `${what}: ${formatBytes(bytes)}`;
  const pct = Math.min(100, Math.floor((bytes / total) * 100));
  return `${what}: ${pct}% (${formatBytes(bytes)} of ${formatBytes(total)})`;
}

export function transferMeter(io: Io, what: string, total?: number): TransferMeter {
  let bytes = 0;
  const live = Boolean(io.stderr.isTTY) && io.env.TERM !== 'dumb';
  let drawn = false;
  const draw = () => {
    io.stderr.write(`\r\u001b[2K${transferLine(what, bytes, total)}`);
    drawn = true;
  };
  const timer = live ? setInterval(draw, REDRAW_MS) : undefined;
  timer?.unref();
  const counter = new Transform({
    highWaterMark: 1 << 20,
    transform(chunk: Buffer, _encoding, done) {
      bytes += chunk.length;
      done(null, chunk);
    },
  });
  return {
    counter,
    bytes: () => bytes,
    close() {
      clearInterval(timer);
      if (drawn) io.stderr.write('\r\u001b[2K');
    },
  };
}
