import { describe, expect, it } from 'vitest';
import { isSkiffError } from '../../src/errors.js';
import { poll, sleep, type Clock } from '../../src/time.js';

function fakeClock(): Clock & { waits: number[] } {
  let t = 0;
  const waits: number[] = [];
  return {
    waits,
    now: () => t,
    async sleep(ms) {
      waits.push(ms);
      t += ms;
    },
  };
}

describe('time', () => {
  it('polls until an attempt returns a value, waiting the interval each attempt asks for', async () => {
    const clock = fakeClock();
    const seen: number[] = [];
    const value = await poll(async (i) => (seen.push(i), i === 3 ? 'done' : undefined), { intervalMs: (i) => (i + 1) * 10, clock });
    expect(value).toBe('done');
    expect(seen).toEqual([0, 1, 2, 3]);
    expect(clock.waits).toEqual([10, 20, 30]);
  });

  it('gives up with undefined after its attempts or its time, without a last useless wait', async () => {
    const byAttempts = fakeClock();
    expect(await poll(async () => undefined, { intervalMs: 5, attempts: 3, clock: byAttempts })).toBeUndefined();
    expect(byAttempts.waits).toEqual([5, 5]);
    const byTime = fakeClock();
    expect(await poll(async () => undefined, { intervalMs: 100, timeoutMs: 250, clock: byTime })).toBeUndefined();
    expect(byTime.waits).toEqual([100, 100]);
  });

  it('cancels a sleep when its signal aborts', async () => {
    const stop = new AbortController();
    const slept = sleep(60_000, stop.signal);
    stop.abort();
    await expect(slept).rejects.toSatisfy((err) => isSkiffError(err, 'CANCELLED'));
    await expect(sleep(1, stop.signal)).rejects.toSatisfy((err) => isSkiffError(err, 'CANCELLED'));
  });
});
