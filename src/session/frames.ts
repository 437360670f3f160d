// The session socket's wire format, between a login client (launcher/login.c) and the daemon:
// frames of [type: u8][length: u32 BE][payload]. Control frames carry JSON; data frames carry raw
// bytes. A client that asks for `handoff` gets the exec's engine connection itself (an `fd` frame
// with the descriptor attached) and from then on sends only control frames; otherwise the daemon
// relays stdin/stdout/stderr frames.

export const FRAME = {
  // login shell → daemon
  hello: 1,
  stdin: 2,
  stdinEnd: 3,
  resize: 4,
  signal: 5,
  /** The exec's output ended (handed-off sessions): the client asks for the exit status. */
  done: 6,
  // daemon → login shell
  progress: 16,
  stdout: 17,
  stderr: 18,
  exit: 19,
  error: 20,
  started: 21,
  /** `{session, token}`: what a client presents to take the session back after a daemon restart. */
  handoff: 22,
  /** A resume was accepted. */
  resumed: 23,
  /** Bytes the daemon had already read from the engine connection before handing it over. */
  engineHead: 24,
  /** Empty; the engine connection's descriptor rides on it (SCM_RIGHTS, launcher/handoff.c). */
  fd: 25,
  /** Carries the session's listening agent socket (launcher/agent.c), sent by the hand-off helper. */
  agent: 26,
} as const;
export type FrameType = (typeof FRAME)[keyof typeof FRAME];

/** What the login shell asks for. The daemon decides everything else (container, user, shell). */
export interface Hello {
  v: 1;
  tty: boolean;
  cols?: number;
  rows?: number;
  /** `-c CMD`; absent for an interactive login. */
  command?: string;
  /** Environment offered by the client; the daemon keeps only its allowlist. */
  env: Record<string, string>;
  /** The client can take the exec's connection (launcher/login.c). */
  handoff?: boolean;
  /** The client has an SSH agent it can relay to (launcher/agent.c). */
  agent?: boolean;
  /** Takes back a handed-off session after a daemon restart. */
  resume?: ResumeRequest;
}

export interface ResumeRequest {
  session: string;
  token: string;
}

/** A terminal size a client may ask for: whole numbers from 1 to 65535 (what a pty takes). */
export function validTerminalSize(cols: unknown, rows: unknown): boolean {
  const ok = (n: unknown) => Number.isInteger(n) && (n as number) > 0 && (n as number) <= 0xffff;
  return ok(cols) && ok(rows);
}

export interface ExitInfo {
  code: number;
  signal?: string;
}

const HEADER = 5;
/** Bigger frames are refused: nothing legitimate needs them, and they would pin memory. */
export const MAX_FRAME = 4 * 1024 * 1024;
/**
 * The first frame (the hello) is small: an environment allowlist, a command line and a size.
 * Until a client has said who it is, it may not make the daemon hold more than this.
 */
export const MAX_HELLO = 64 * 1024;
/**
 * What the daemon accepts from a login shell after the hello. The shell sends stdin as it reads
 * it (at most 64 KiB at a time), so with the per-user connection cap a user can make the daemon
 * hold a few MiB, not gigabytes.
 */
export const MAX_CLIENT_FRAME = 256 * 1024;

export function encodeHeader(type: FrameType, length: number): Buffer {
  const header = Buffer.allocUnsafe(HEADER);
  header.writeUInt8(type, 0);
  header.writeUInt32BE(length, 1);
  return header;
}

export function encodeFrame(type: FrameType, payload: Buffer | string | object = Buffer.alloc(0)): Buffer {
  const body = Buffer.isBuffer(payload) ? payload : Buffer.from(typeof payload === 'string' ? payload : JSON.stringify(payload));
  return Buffer.concat([encodeHeader(type, body.length), body]);
}

export interface FrameDecoder {
  push(chunk: Buffer): void;
  /** Bytes received and not yet handed out as a frame. */
  buffered(): number;
}

export interface FrameDecoderOptions {
  /** The largest frame accepted as the `index`-th (0-based); default MAX_FRAME for all. */
  maxFrame?: (index: number) => number;
}

/**
 * Calls `onFrame` for each complete frame; frames may span chunks and chunks may hold many.
 * A frame over its limit calls `onError` and stops decoding. Chunks are kept as they came and
 * joined once per frame, so a frame that trickles in byte by byte costs linear time.
 */
export function createFrameDecoder(
  onFrame: (type: number, payload: Buffer) => void,
  onError: (message: string) => void,
  options: FrameDecoderOptions = {},
): FrameDecoder {
  const limit = options.maxFrame ?? (() => MAX_FRAME);
  // A queue of received chunks: `chunks[head]` is the oldest not fully consumed.
  let chunks: Buffer[] = [];
  let head = 0;
  let size = 0;
  let index = 0;
  let broken = false;

  function drop(): void {
    head += 1;
    // Compact now and then, so a long-lived session does not keep every chunk it ever saw.
    if (head > 1024 && head * 2 > chunks.length) {
      chunks = chunks.slice(head);
      head = 0;
    }
  }

  /** Removes and returns the first `n` bytes (n <= size), copying only when they span chunks. */
  function take(n: number): Buffer {
    const first = chunks[head]!;
    if (first.length >= n) {
      if (first.length === n) drop();
      else chunks[head] = first.subarray(n);
      size -= n;
      return first.subarray(0, n);
    }
    const out = Buffer.allocUnsafe(n);
    let filled = 0;
    while (filled < n) {
      const c = chunks[head]!;
      const part = Math.min(c.length, n - filled);
      c.copy(out, filled, 0, part);
      filled += part;
      if (part === c.length) drop();
      else chunks[head] = c.subarray(part);
    }
    size -= n;
    return out;
  }

  /** The header's type and length without consuming it (size >= HEADER). */
  function peekHeader(): { type: number; length: number } {
    let bytes = chunks[head]!;
    if (bytes.length < HEADER) {
      bytes = Buffer.allocUnsafe(HEADER);
      let filled = 0;
      for (let i = head; filled < HEADER; i++) filled += chunks[i]!.copy(bytes, filled, 0, Math.min(chunks[i]!.length, HEADER - filled));
    }
    return { type: bytes.readUInt8(0), length: bytes.readUInt32BE(1) };
  }

  return {
    push(chunk) {
      if (broken || chunk.length === 0) return;
      chunks.push(chunk);
      size += chunk.length;
      while (size >= HEADER && !broken) {
        const { type, length } = peekHeader();
        const max = limit(index);
        if (length > max) {
          broken = true;
          chunks = [];
          head = 0;
          size = 0;
          onError(`${index === 0 ? 'first ' : ''}frame of ${length} bytes is over the ${max}-byte limit`);
          return;
        }
        if (size - HEADER < length) return;
        take(HEADER);
        const payload = length === 0 ? Buffer.alloc(0) : take(length);
        index += 1;
        onFrame(type, payload);
      }
    },
    buffered: () => size,
  };
}

export function parseJson<T>(payload: Buffer): T | undefined {
  try {
    return JSON.parse(payload.toString('utf8')) as T;
  } catch {
    return undefined;
  }
}
