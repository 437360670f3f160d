// The session socket's wire format, between a login shell and the daemon: frames of
// [type: u8][length: u32 BE][payload]. Control frames carry JSON; data frames carry raw bytes.
// Kept dependency-free: the login shell loads it on every login.

export const FRAME = {
  // login shell → daemon
  hello: 1,
  stdin: 2,
  stdinEnd: 3,
  resize: 4,
  signal: 5,
  // daemon → login shell
  progress: 16,
  stdout: 17,
  stderr: 18,
  exit: 19,
  error: 20,
  started: 21,
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
}

export interface ExitInfo {
  code: number;
  signal?: string;
}

const HEADER = 5;
/** Bigger frames are refused: nothing legitimate needs them, and they would pin memory. */
export const MAX_FRAME = 4 * 1024 * 1024;

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
}

/**
 * Calls `onFrame` for each complete frame; frames may span chunks and chunks may hold many.
 * A frame over MAX_FRAME calls `onError` and stops decoding.
 */
export function createFrameDecoder(onFrame: (type: number, payload: Buffer) => void, onError: (message: string) => void): FrameDecoder {
  let pending: Buffer = Buffer.alloc(0);
  let broken = false;
  return {
    push(chunk) {
      if (broken) return;
      pending = pending.length === 0 ? chunk : Buffer.concat([pending, chunk]);
      let offset = 0;
      while (pending.length - offset >= HEADER) {
        const type = pending.readUInt8(offset);
        const length = pending.readUInt32BE(offset + 1);
        if (length > MAX_FRAME) {
          broken = true;
          onError(`frame of ${length} bytes is over the ${MAX_FRAME}-byte limit`);
          return;
        }
        if (pending.length - offset - HEADER < length) break;
        onFrame(type, pending.subarray(offset + HEADER, offset + HEADER + length));
        offset += HEADER + length;
      }
      pending = offset === 0 ? pending : pending.subarray(offset);
    },
  };
}

export function parseJson<T>(payload: Buffer): T | undefined {
  try {
    return JSON.parse(payload.toString('utf8')) as T;
  } catch {
    return undefined;
  }
}
