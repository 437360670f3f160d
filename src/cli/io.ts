// What a command may touch of its process, passed in so tests can run commands in-process.

export interface Io {
  stdout: NodeJS.WritableStream & { isTTY?: boolean };
  stderr: NodeJS.WritableStream & { isTTY?: boolean };
  env: NodeJS.ProcessEnv;
}

export function processIo(): Io {
  return { stdout: process.stdout, stderr: process.stderr, env: process.env };
}

/** Exit codes: 0 done, 1 the work failed (bad config, engine error), 2 the command line was wrong. */
export const EXIT = { ok: 0, failure: 1, usage: 2 } as const;

export function useColor(io: Io, stream: 'stdout' | 'stderr'): boolean {
  // https://no-color.org: any non-empty NO_COLOR disables colour.
  if (io.env.NO_COLOR) return false;
  if (io.env.FORCE_COLOR && io.env.FORCE_COLOR !== '0') return true;
  return Boolean(io[stream].isTTY) && io.env.TERM !== 'dumb';
}

export function paint(enabled: boolean) {
  const wrap = (code: number) => (s: string) => (enabled ? `\u001b[${code}m${s}\u001b[0m` : s);
  return { red: wrap(31), yellow: wrap(33), green: wrap(32), bold: wrap(1), dim: wrap(2) };
}

export function writeLine(stream: NodeJS.WritableStream, line = ''): void {
  stream.write(`${line}\n`);
}
