import { describe, expect, it } from 'vitest';
import { createStdioDemuxer, demuxStdio } from '../../../src/engine/stdio-frames.js';
import type { StdioStream } from '../../../src/engine/stdio-frames.js';

function frame(stream: number, text: string): Buffer {
  const payload = Buffer.from(text);
  const header = Buffer.alloc(8);
  header[0] = stream;
  header.writeUInt32BE(payload.length, 4);
  return Buffer.concat([header, payload]);
}

describe('engine/stdio-frames', () => {
  const data = Buffer.concat([frame(1, 'out 1\n'), frame(2, 'err 1\n'), frame(1, ''), frame(1, 'out 2\n')]);

  it('splits a complete buffer and keeps the order in combined', () => {
    const result = demuxStdio(data);
    expect(result.stdout.toString()).toBe('out 1\nout 2\n');
    expect(result.stderr.toString()).toBe('err 1\n');
    expect(result.combined.toString()).toBe('out 1\nerr 1\nout 2\n');
  });

  it('handles frames split at every possible byte', () => {
    for (let cut = 0; cut <= data.length; cut++) {
      const frames: [StdioStream, string][] = [];
      const demuxer = createStdioDemuxer((stream, payload) => frames.push([stream, payload.toString()]));
      demuxer.push(data.subarray(0, cut));
      demuxer.push(data.subarray(cut));
      expect(demuxer.end()).toBe(0);
      expect(frames.filter(([, text]) => text !== '')).toEqual([
        ['stdout', 'out 1\n'],
        ['stderr', 'err 1\n'],
        ['stdout', 'out 2\n'],
      ]);
    }
  });

  it('reports the bytes of an incomplete last frame', () => {
    const demuxer = createStdioDemuxer(() => undefined);
    demuxer.push(frame(1, 'abcdef').subarray(0, 10));
    expect(demuxer.end()).toBe(10);
  });
});
