import { describe, expect, it } from 'vitest';
import { startConvergeLoop } from '../../../src/daemon/converge-loop.js';
import type { Clock } from '../../../src/time.js';

/** A clock whose sleeps are recorded and end at once, or when the test says. */
function fakeClock(onSleep: (ms: number, signal?: AbortSignal) => Promise<void>): Clock & { waits: number[] } {
  const waits: number[] = [];
  return {
    waits,
    now: () => 0,
    sleep(ms, signal) {
      waits.push(ms);
      return onSleep(ms, signal);
    },
  };
}

describe('daemon/converge-loop', () => {
  const retry = { initialMs: 1000, maxMs: 5000 };

  it('retries a failing pass with a doubling back-off, capped at retry.maxMs', async () => {
    const stop = new AbortController();
    const clock = fakeClock(async () => {
      if (clock.waits.length >= 6) stop.abort();
    });
    const retries: number[] = [];
    const loop = startConvergeLoop({
      pass: async () => false,
      onError: () => undefined,
      onRetryAt: (at) => retries.push(at.getTime()),
      retry,
      signal: stop.signal,
      clock,
    });
    await loop.done;
    expect(clock.waits).toEqual([1000, 2000, 4000, 5000, 5000, 5000]);
    expect(retries).toEqual([1000, 2000, 4000, 5000, 5000, 5000]);
  });

  it('counts a thrown pass as failed, reports it, and starts over from the first delay after a success', async () => {
    const stop = new AbortController();
    const outcomes: (boolean | Error)[] = [new Error('engine said no'), false, true, false, false];
    const errors: unknown[] = [];
    const clock = fakeClock(async () => undefined);
    const loop = startConvergeLoop({
      pass: async () => {
        const next = outcomes.shift();
        if (next === undefined) {
          stop.abort();
          return true;
        }
        if (next instanceof Error) throw next;
        if (next) loop.request(); // a success then one more request
        return next;
      },
      onError: (err) => errors.push(err),
      onRetryAt: () => undefined,
      retry,
      signal: stop.signal,
      clock,
    });
    await loop.done;
    expect(errors).toEqual([new Error('engine said no')]);
    expect(clock.waits).toEqual([1000, 2000, 1000, 2000]);
  });

  it('cuts the back-off short when a new request comes, and settles waiters after each pass', async () => {
    const stop = new AbortController();
    let passes = 0;
    const clock = fakeClock((_ms, signal) => new Promise((resolve) => signal?.addEventListener('abort', () => resolve(), { once: true })));
    const loop = startConvergeLoop({
      pass: async () => ++passes > 1,
      onError: () => undefined,
      onRetryAt: () => undefined,
      retry,
      signal: stop.signal,
      clock,
    });
    await new Promise((r) => setTimeout(r, 10));
    expect(passes).toBe(1); // failed, now in a back-off that never ends by itself
    const settled = loop.settled();
    loop.request();
    await settled;
    expect(passes).toBe(2);
    stop.abort();
    await loop.done;
  });
});
