// Logging: JSON lines for journald and log shippers; a short human form when stderr is a terminal.
import { Writable } from 'node:stream';
import { pino, type DestinationStream, type Logger } from 'pino';

export type { Logger } from 'pino';

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export interface LogOptions {
  level?: LogLevel;
  /** Human-readable lines instead of JSON (default: when the stream is a TTY). */
  pretty?: boolean;
  stream?: NodeJS.WritableStream & { isTTY?: boolean };
}

export function createLogger(options: LogOptions = {}): Logger {
  const stream = options.stream ?? process.stderr;
  const pretty = options.pretty ?? Boolean(stream.isTTY);
  return pino(
    {
      level: options.level ?? 'info',
      base: undefined,
      // journald adds its own timestamp, but a log shipped elsewhere needs one.
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
    },
    pretty ? humanStream(stream) : (stream as unknown as DestinationStream),
  );
}

/** A logger that drops everything, for tests and library callers that pass none. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}

const HIDDEN = new Set(['level', 'time', 'msg', 'pid', 'hostname']);

/** `12:00:01 WARN  Container start failed container=core err="…"` */
export function formatHuman(line: string): string {
  let entry: Record<string, unknown>;
  try {
    entry = JSON.parse(line) as Record<string, unknown>;
  } catch {
    return line;
  }
  const time = typeof entry.time === 'string' ? entry.time.slice(11, 19) : '';
  const level = String(entry.level ?? '')
    .toUpperCase()
    .padEnd(5);
  const fields = Object.entries(entry)
    .filter(([k]) => !HIDDEN.has(k))
    .map(([k, v]) => {
      const value = typeof v === 'object' && v !== null && 'message' in v ? (v as { message: unknown }).message : v;
      const text = typeof value === 'string' ? value : JSON.stringify(value);
      return `${k}=${/[\s"]/.test(text ?? '') ? JSON.stringify(text) : text}`;
    });
  return `${time} ${level} ${String(entry.msg ?? '')}${fields.length ? ` ${fields.join(' ')}` : ''}`;
}

function humanStream(out: NodeJS.WritableStream): Writable {
  let pending = '';
  return new Writable({
    write(chunk: Buffer, _enc, done) {
      pending += chunk.toString();
      let nl: number;
      while ((nl = pending.indexOf('\n')) >= 0) {
        out.write(`${formatHuman(pending.slice(0, nl))}\n`);
        pending = pending.slice(nl + 1);
      }
      done();
    },
  });
}
