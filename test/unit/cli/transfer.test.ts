// The progress line of a backup or restore: redrawn on a terminal, silent on a pipe.
import { PassThrough, Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { describe, expect, it, vi } from 'vitest';
import { transferLine, transferMeter } from '../../../src/cli/render/transfer.js';

function stderrOf(tty: boolean) {
  const stream = Object.assign(new PassThrough(), { isTTY: tty });
  let text = '';
  stream.on('data', (c: Buffer) => (text += c.toString()));
  return { stream, text: () => text };
}

describe('transfer progress', () => {
  it('says how much, and how far when the total is known', () => {
    expect(transferLine('backing up core', 2_500_000)).toBe('backing up core: 3 MB');
    expect(transferLine('restoring from core.tar', 1_200_000_000, 2_700_000_000)).toBe('restoring from core.tar: 44% (1.2 GB of 2.7 GB)');
  });

  it('redraws one line on a terminal and clears it at the end; prints nothing on a pipe', async () => {
    vi.useFakeTimers();
    try {
      for (const tty of [true, false]) {
        const err = stderrOf(tty);
        const meter = transferMeter({ stdout: new PassThrough(), stderr: err.stream, env: {} }, 'backing up core', 4_000_000);
        const sink = new PassThrough();
        sink.resume();
        await pipeline(Readable.from([Buffer.alloc(2_000_000)]), meter.counter, sink);
        vi.advanceTimersByTime(300);
        meter.close();
        expect(meter.bytes()).toBe(2_000_000);
        expect(err.text()).toBe(tty ? '\r\u001b[2Kbacking up core: 50% (2 MB of 4 MB)\r\u001b[2K' : '');
      }
    } finally {
      vi.useRealTimers();
    }
  });
});
