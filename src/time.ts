// Waiting, in one place: a sleep that a signal cuts short, and a poll loop with a deadline, both
// on a clock that tests can replace.
import { SkiffError } from './errors.js';

export interface Clock {
  now(): number;
  /** Resolves after `ms`; rejects with CANCELLED as soon as `signal` aborts. */
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
}

export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const cancelled = () => new SkiffError('CANCELLED', 'the wait was cancelled');
    if (signal?.aborted) return reject(cancelled());
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(cancelled());
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/** A sleep that ends quietly (resolves) when the signal aborts, for loops that check it next. */
export function pause(ms: number, signal?: AbortSignal, clock: Clock = systemClock): Promise<void> {
  return clock.sleep(ms, signal).catch(() => undefined);
}

export const systemClock: Clock = { now: () => Date.now(), sleep };

export interface PollOptions {
  /** The wait after each attempt (which is numbered from 0). */
  intervalMs: number | ((attempt: number) => number);
  /** Give up once this much time has passed… */
  timeoutMs?: number;
  /** …or after this many attempts. */
  attempts?: number;
  signal?: AbortSignal;
  clock?: Clock;
}

/**
 * Calls `attempt` until it returns something other than undefined, and returns that; undefined
 * when the time or the attempts run out. A signal that aborts rejects with CANCELLED.
 */
export async function poll<T>(attempt: (index: number) => Promise<T | undefined>, options: PollOptions): Promise<T | undefined> {
  const clock = options.clock ?? systemClock;
  const deadline = options.timeoutMs === undefined ? Infinity : clock.now() + options.timeoutMs;
  for (let index = 0; ; index++) {
    const value = await attempt(index);
    if (value !== undefined) return value;
    const wait = typeof options.intervalMs === 'number' ? options.intervalMs : options.intervalMs(index);
    if (clock.now() + wait >= deadline || index + 1 === options.attempts) return undefined;
    await clock.sleep(wait, options.signal);
  }
}
