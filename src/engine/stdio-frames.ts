// The engine's multiplexed stdio format, used for logs and exec output of containers without a
// TTY: frames of [stream (1 byte: 0 stdin, 1 stdout, 2 stderr), 3 zero bytes, size (uint32 BE)]
// followed by `size` bytes of payload. With a TTY the engine sends raw bytes instead.

export type StdioStream = 'stdin' | 'stdout' | 'stderr';

export interface StdioDemuxer {
  push(chunk: Uint8Array): void;
  /** Returns the number of bytes left over in an incomplete frame (0 for a clean end). */
  end(): number;
}

const HEADER_SIZE = 8;
const STREAMS: readonly StdioStream[] = ['stdin', 'stdout', 'stderr'];

/** Incrementally splits multiplexed bytes into frames; frames may span chunks. */
export function createStdioDemuxer(onFrame: (stream: StdioStream, data: Buffer) => void): StdioDemuxer {
  let pending = Buffer.alloc(0);

  return {
    push(chunk) {
      pending = pending.length === 0 ? Buffer.from(chunk) : Buffer.concat([pending, chunk]);
      let offset = 0;
      while (pending.length - offset >= HEADER_SIZE) {
        const type = pending[offset] ?? 1;
        const size = pending.readUInt32BE(offset + 4);
        if (pending.length - offset - HEADER_SIZE < size) break;
        const start = offset + HEADER_SIZE;
        // Unknown stream types are treated as stdout rather than dropped.
        onFrame(STREAMS[type] ?? 'stdout', pending.subarray(start, start + size));
        offset = start + size;
      }
      pending = offset === 0 ? pending : Buffer.from(pending.subarray(offset));
    },
    end() {
      const left = pending.length;
      pending = Buffer.alloc(0);
      return left;
    },
  };
}

/** Demultiplexes a complete buffer; `combined` keeps stdout and stderr interleaved in order. */
export function demuxStdio(data: Uint8Array): { stdout: Buffer; stderr: Buffer; combined: Buffer } {
  const stdout: Buffer[] = [];
  const stderr: Buffer[] = [];
  const combined: Buffer[] = [];
  const demuxer = createStdioDemuxer((stream, frame) => {
    if (stream === 'stderr') stderr.push(frame);
    else stdout.push(frame);
    combined.push(frame);
  });
  demuxer.push(data);
  demuxer.end();
  return { stdout: Buffer.concat(stdout), stderr: Buffer.concat(stderr), combined: Buffer.concat(combined) };
}
