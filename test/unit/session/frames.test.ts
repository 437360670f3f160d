import { describe, expect, it } from 'vitest';
import { createFrameDecoder, encodeFrame, FRAME, MAX_FRAME, MAX_HELLO } from '../../../src/session/frames.js';

function decodeAll(parts: Buffer[], maxFrame?: (i: number) => number) {
  const frames: [number, Buffer][] = [];
  const errors: string[] = [];
  const decoder = createFrameDecoder(
    (t, p) => frames.push([t, Buffer.from(p)]),
    (m) => errors.push(m),
    maxFrame ? { maxFrame } : {},
  );
  for (const p of parts) decoder.push(p);
  return { frames, errors, decoder };
}

describe('frame decoder', () => {
  const stream = Buffer.concat([
    encodeFrame(FRAME.hello, { v: 1, tty: false, env: {} }),
    encodeFrame(FRAME.stdin, Buffer.from('abc')),
    encodeFrame(FRAME.stdin, Buffer.alloc(0)),
    encodeFrame(FRAME.stdinEnd),
    encodeFrame(FRAME.resize, { cols: 80, rows: 24 }),
  ]);

  it('gives the same frames however the bytes are split', () => {
    const whole = decodeAll([stream]).frames;
    expect(whole.map(([t]) => t)).toEqual([FRAME.hello, FRAME.stdin, FRAME.stdin, FRAME.stdinEnd, FRAME.resize]);
    for (let cut = 1; cut < stream.length; cut++) {
      expect(decodeAll([stream.subarray(0, cut), stream.subarray(cut)]).frames).toEqual(whole);
    }
    expect(decodeAll([...stream].map((b) => Buffer.from([b]))).frames).toEqual(whole);
  });

  it('holds a frame arriving a byte at a time without re-copying what it has (1 MiB in 1-byte chunks)', () => {
    const payload = Buffer.alloc(1024 * 1024, 7);
    const bytes = encodeFrame(FRAME.stdin, payload);
    const frames: Buffer[] = [];
    const decoder = createFrameDecoder(
      (_t, p) => frames.push(p),
      () => undefined,
    );
    for (let i = 0; i < bytes.length - 1; i++) decoder.push(bytes.subarray(i, i + 1));
    expect(decoder.buffered()).toBe(bytes.length - 1);
    decoder.push(bytes.subarray(bytes.length - 1));
    expect(frames).toHaveLength(1);
    expect(frames[0]!.equals(payload)).toBe(true);
    expect(decoder.buffered()).toBe(0);
  });

  it('refuses a first frame over the hello limit before its payload arrives, and stops', () => {
    const limits = (i: number) => (i === 0 ? MAX_HELLO : MAX_FRAME);
    const big = encodeFrame(FRAME.hello, Buffer.alloc(MAX_HELLO + 1));
    const r = decodeAll([big.subarray(0, 5)], limits);
    expect(r.errors).toEqual([`first frame of ${MAX_HELLO + 1} bytes is over the ${MAX_HELLO}-byte limit`]);
    r.decoder.push(encodeFrame(FRAME.stdin, 'x'));
    expect(r.frames).toEqual([]);
    expect(r.decoder.buffered()).toBe(0);
    // Later frames may be larger.
    const ok = decodeAll([encodeFrame(FRAME.hello, '{}'), encodeFrame(FRAME.stdin, Buffer.alloc(MAX_HELLO * 2))], limits);
    expect(ok.errors).toEqual([]);
    expect(ok.frames).toHaveLength(2);
  });
});
