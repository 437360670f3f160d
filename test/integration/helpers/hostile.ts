// Tools of the hostile-client suite: a recording of what the real login shell sends, raw
// connections that send anything at all, and the figures taken after each group of attacks.
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdir, rm } from 'node:fs/promises';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { dirname, join } from 'node:path';
import { createFrameDecoder } from '../../../src/session/frames.js';
import { LAUNCHER } from './cli.js';

/**
 * A login made by the real login client (`skiff-core -c CMD`) for `user`, as root. `relayed`
 * asks for the path where the daemon relays the bytes (a recording proxy cannot pass the
 * descriptor of a hand-off on).
 */
export function realLogin(
  runDir: string,
  user: string,
  command: string,
  input = '',
  relayed = false,
): Promise<{ code: number | null; stdout: string; stderr: string; ms: number }> {
  const t0 = performance.now();
  const env = {
    PATH: process.env.PATH,
    SKIFF_CORE_RUN_DIR: runDir,
    SKIFF_CORE_SESSION_USER: user,
    ...(relayed ? { SKIFF_CORE_NO_HANDOFF: '1' } : {}),
  };
  return new Promise((resolve) => {
    const child = execFile(LAUNCHER, ['-c', command], { env, timeout: 60_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : null) : 0, stdout, stderr, ms: performance.now() - t0 });
    });
    // A login refused at once exits before reading its input: that is not the test's error.
    child.stdin!.on('error', () => undefined);
    child.stdin!.end(input);
  });
}

/**
 * Runs the real login shell through a proxy at PROXYDIR/users/USER.sock and returns every byte
 * it sent to the daemon: the suite attacks with what the real client sends, so it follows the
 * protocol when that changes.
 */
export async function recordLogin(
  runDir: string,
  proxyDir: string,
  user: string,
  command: string,
  input: string,
): Promise<{ sent: Buffer; stdout: string; code: number | null }> {
  const path = join(proxyDir, 'users', `${user}.sock`);
  await mkdir(dirname(path), { recursive: true });
  await rm(path, { force: true });
  const sent: Buffer[] = [];
  const server: Server = createServer((client) => {
    const upstream = connect(join(runDir, 'users', `${user}.sock`));
    client.on('data', (c: Buffer) => {
      sent.push(Buffer.from(c));
      upstream.write(c);
    });
    client.on('end', () => upstream.end());
    upstream.on('data', (c: Buffer) => client.write(c));
    upstream.on('end', () => client.end());
    client.on('error', () => upstream.destroy());
    upstream.on('error', () => client.destroy());
  });
  await new Promise<void>((resolve) => server.listen(path, resolve));
  try {
    const r = await realLogin(proxyDir, user, command, input, true);
    return { sent: Buffer.concat(sent), stdout: r.stdout, code: r.code };
  } finally {
    server.close();
  }
}

/** The frames of a byte stream, as [offset, length] of each frame (header included). */
export function frameBounds(bytes: Buffer): [number, number][] {
  const out: [number, number][] = [];
  for (let offset = 0; offset + 5 <= bytes.length;) {
    const length = 5 + bytes.readUInt32BE(offset + 1);
    out.push([offset, length]);
    offset += length;
  }
  return out;
}

export interface RawResult {
  /** Frame types the daemon answered with (16 progress … 20 error). */
  types: number[];
  exit: number | undefined;
  stdout: string;
  error: string | undefined;
  closedBy: 'daemon' | 'timeout';
}

/**
 * Sends `parts` (each written separately, `gapMs` apart) to USER's socket and collects what the
 * daemon answers until it closes or `timeoutMs`. Like the real client it keeps the connection
 * open while the daemon talks; once the daemon has said nothing for `quietMs` it hangs up.
 */
export function rawSession(
  runDir: string,
  user: string,
  parts: Buffer[],
  opts: { gapMs?: number; timeoutMs?: number; quietMs?: number } = {},
): Promise<RawResult> {
  return new Promise((resolve) => {
    const socket: Socket = connect(join(runDir, 'users', `${user}.sock`));
    const result: RawResult = { types: [], exit: undefined, stdout: '', error: undefined, closedBy: 'daemon' };
    const decoder = createFrameDecoder(
      (type, payload) => {
        result.types.push(type);
        if (type === 17) result.stdout += payload.toString();
        if (type === 19) result.exit = (JSON.parse(payload.toString()) as { code: number }).code;
        if (type === 20) result.error = (JSON.parse(payload.toString()) as { message: string }).message;
      },
      () => undefined,
    );
    const timer = setTimeout(() => {
      result.closedBy = 'timeout';
      socket.destroy();
    }, opts.timeoutMs ?? 20_000);
    let quiet: NodeJS.Timeout | undefined;
    const hangUpWhenQuiet = () => {
      clearTimeout(quiet);
      quiet = setTimeout(() => socket.end(), opts.quietMs ?? 3000);
    };
    socket.on('data', (c: Buffer) => {
      decoder.push(c);
      hangUpWhenQuiet();
    });
    socket.on('error', () => undefined);
    socket.once('close', () => {
      clearTimeout(timer);
      clearTimeout(quiet);
      resolve(result);
    });
    socket.once('connect', async () => {
      for (const part of parts) {
        if (socket.destroyed) return;
        socket.write(part);
        if (opts.gapMs) await new Promise((r) => setTimeout(r, opts.gapMs));
      }
      if (!socket.destroyed) hangUpWhenQuiet();
    });
  });
}

/** Resident memory of a process, in bytes. */
export function rss(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) * 1024 : 0;
}

export function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  return s.length ? s[Math.floor(s.length / 2)]! : NaN;
}

/** A seeded generator, so a failing input can be found again from the seed in the log. */
export function seeded(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x / 0x1_0000_0000;
  };
}
