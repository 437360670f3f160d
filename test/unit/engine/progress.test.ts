import { describe, expect, it } from 'vitest';
import {
  createBuildOutputParser,
  createJsonLineParser,
  createPullProgressTracker,
  parseBuildLine,
  streamError,
} from '../../../src/engine/progress.js';
import type { BuildProgress } from '../../../src/engine/progress.js';

function parseAll(chunks: (string | Uint8Array)[]): unknown[] {
  const objects: unknown[] = [];
  const parser = createJsonLineParser((obj) => objects.push(obj));
  for (const chunk of chunks) parser.push(chunk);
  parser.end();
  return objects;
}

describe('engine/progress', () => {
  describe('createJsonLineParser', () => {
    it('parses newline-separated objects in one chunk', () => {
      expect(parseAll(['{"a":1}\r\n{"b":2}\n'])).toEqual([{ a: 1 }, { b: 2 }]);
    });

    it('joins an object split across chunks, including inside strings and escapes', () => {
      const text = '{"status":"x \\"}{ y","id":"1"}\r\n{"stream":"Step 1/2 : FROM a"}\r\n';
      for (let cut = 1; cut < text.length; cut++) {
        expect(parseAll([text.slice(0, cut), text.slice(cut)])).toEqual([{ status: 'x "}{ y', id: '1' }, { stream: 'Step 1/2 : FROM a' }]);
      }
    });

    it('handles objects without separators and nested objects', () => {
      expect(parseAll(['{"a":{"b":[1,{"c":2}]}}{"d":3}'])).toEqual([{ a: { b: [1, { c: 2 }] } }, { d: 3 }]);
    });

    it('decodes a multi-byte character split between byte chunks', () => {
      const bytes = Buffer.from('{"stream":"h\u00e9llo \u2713"}\n', 'utf8');
      const splitAt = bytes.indexOf(0xe2) + 1; // inside the 3-byte check mark
      expect(parseAll([bytes.subarray(0, splitAt), bytes.subarray(splitAt)])).toEqual([{ stream: 'h\u00e9llo \u2713' }]);
    });

    it('ignores text that is not JSON and drops an unterminated object', () => {
      expect(parseAll(['garbage {"ok":true} more {"cut":'])).toEqual([{ ok: true }]);
    });
  });

  describe('streamError', () => {
    it.each([
      [{ errorDetail: { message: 'detail' }, error: 'short' }, 'detail'],
      [{ error: 'only error' }, 'only error'],
      [{ errorDetail: {} }, 'unknown engine error'],
      [{ status: 'Downloading' }, undefined],
      ['text', undefined],
    ])('%j -> %j', (obj, expected) => {
      expect(streamError(obj)).toBe(expected);
    });
  });

  describe('createPullProgressTracker', () => {
    it('aggregates layer bytes and keeps them from going backwards while extracting', () => {
      const tracker = createPullProgressTracker();
      const stream = [
        { status: 'Pulling from skiffos/x', id: 'latest' },
        { status: 'Already exists', progressDetail: {}, id: 'aaa' },
        { status: 'Pulling fs layer', progressDetail: {}, id: 'bbb' },
        { status: 'Pulling fs layer', progressDetail: {}, id: 'ccc' },
        { status: 'Downloading', progressDetail: { current: 100, total: 1000 }, id: 'bbb' },
        { status: 'Downloading', progressDetail: { current: 50, total: 500 }, id: 'ccc' },
      ];
      for (const obj of stream) tracker.push(obj);
      let progress = tracker.progress;
      expect(progress.status).toBe('Pulling from skiffos/x (latest)');
      expect(progress.layers.map((l) => l.id)).toEqual(['aaa', 'bbb', 'ccc']);
      expect(progress).toMatchObject({ current: 150, total: 1500 });

      progress = tracker.push({ status: 'Download complete', progressDetail: {}, id: 'bbb' });
      expect(progress).toMatchObject({ current: 1050, total: 1500 });
      progress = tracker.push({ status: 'Extracting', progressDetail: { current: 10, total: 1000 }, id: 'bbb' });
      expect(progress.layers.find((l) => l.id === 'bbb')).toEqual({
        id: 'bbb',
        status: 'Extracting',
        current: 1000,
        total: 1000,
      });
      expect(progress.current).toBe(1050);

      tracker.push({ status: 'Pull complete', progressDetail: {}, id: 'ccc' });
      progress = tracker.push({ status: 'Digest: sha256:abc' });
      expect(progress).toMatchObject({ status: 'Digest: sha256:abc', current: 1500, total: 1500 });
    });

    it('returns snapshots that later objects do not change', () => {
      const tracker = createPullProgressTracker();
      const first = tracker.push({ status: 'Downloading', progressDetail: { current: 1, total: 10 }, id: 'l' });
      tracker.push({ status: 'Downloading', progressDetail: { current: 5, total: 10 }, id: 'l' });
      expect(first.layers[0]?.current).toBe(1);
    });

    it('is lenient with malformed objects', () => {
      const tracker = createPullProgressTracker();
      tracker.push(null);
      tracker.push({ status: 'Downloading', progressDetail: { current: 'x', total: -1 }, id: 'l' });
      expect(tracker.progress).toMatchObject({ current: 0, total: 0 });
    });
  });

  describe('parseBuildLine', () => {
    it.each<[string, BuildProgress]>([
      ['Step 1/5 : FROM busybox', { kind: 'step', step: 1, total: 5, text: 'FROM busybox' }],
      ['Step 12/12 : RUN echo "a : b"', { kind: 'step', step: 12, total: 12, text: 'RUN echo "a : b"' }],
      [' ---> Running in 026277128fef', { kind: 'output', text: ' ---> Running in 026277128fef' }],
      ['Step x/y : nope', { kind: 'output', text: 'Step x/y : nope' }],
    ])('%j', (line, expected) => {
      expect(parseBuildLine(line)).toEqual(expected);
    });
  });

  describe('createBuildOutputParser', () => {
    it('joins the step text and its separate newline, and reports output lines', () => {
      const events: BuildProgress[] = [];
      const parser = createBuildOutputParser((event) => events.push(event));
      for (const obj of [
        { stream: 'Step 1/2 : FROM base' },
        { stream: '\n' },
        { stream: ' ---> 4bdcf1b2c3e5\n' },
        { stream: 'Step 2/2 : RUN echo hi' },
        { stream: '\n' },
        { stream: 'hi\nsecond ' },
        { stream: 'half\r\n' },
        { aux: { ID: 'sha256:abc' } },
        { stream: 'Successfully built abc' },
      ]) {
        parser.push(obj);
      }
      parser.end();
      expect(events).toEqual([
        { kind: 'step', step: 1, total: 2, text: 'FROM base' },
        { kind: 'output', text: ' ---> 4bdcf1b2c3e5' },
        { kind: 'step', step: 2, total: 2, text: 'RUN echo hi' },
        { kind: 'output', text: 'hi' },
        { kind: 'output', text: 'second half' },
        { kind: 'output', text: 'Successfully built abc' },
      ]);
      expect(parser.imageId).toBe('sha256:abc');
      expect(parser.error).toBeUndefined();
    });

    it('records the first error and keeps the last lines of output', () => {
      const parser = createBuildOutputParser(() => undefined, { tailLines: 3 });
      for (let i = 1; i <= 5; i++) parser.push({ stream: `line ${i}\n` });
      parser.push({
        errorDetail: { code: 1, message: "The command '/bin/sh -c false' returned a non-zero code: 1" },
        error: "The command '/bin/sh -c false' returned a non-zero code: 1",
      });
      parser.push({ error: 'second' });
      parser.end();
      expect(parser.error).toBe("The command '/bin/sh -c false' returned a non-zero code: 1");
      expect(parser.tail).toEqual(['line 3', 'line 4', 'line 5']);
    });

    it('reports state changes of a base image pulled during the build, not byte counts', () => {
      const events: BuildProgress[] = [];
      const parser = createBuildOutputParser((event) => events.push(event));
      parser.push({ status: 'Pulling fs layer', progressDetail: {}, id: 'abc' });
      parser.push({ status: 'Downloading', progressDetail: { current: 1, total: 2 }, id: 'abc' });
      parser.push({ status: 'Pull complete', progressDetail: {}, id: 'abc' });
      expect(events).toEqual([
        { kind: 'output', text: 'abc: Pulling fs layer' },
        { kind: 'output', text: 'abc: Pull complete' },
      ]);
    });
  });
});
