// The one loop that runs converge passes, so that passes never overlap. Edits, engine events,
// reloads and the periodic relist only ask for another pass; a failed pass is retried with a
// doubling back-off that any new request cuts short.
import { pause, systemClock, type Clock } from '../time.js';

export interface ConvergeLoopOptions {
  /** One pass; true when everything converged. A throw counts as a failure. */
  pass(): Promise<boolean>;
  /** A pass threw (the loop goes on). */
  onError(err: unknown): void;
  /** Waiting until `at` before retrying a failed pass. */
  onRetryAt(at: Date): void;
  retry: { initialMs: number; maxMs: number };
  signal: AbortSignal;
  clock?: Clock;
}

export interface ConvergeLoop {
  request(): void;
  /** Resolves when the next pass has finished (or the loop stopped). */
  settled(): Promise<void>;
  /** Resolves once the loop has stopped, after its signal aborted. */
  done: Promise<void>;
}

export function startConvergeLoop(opts: ConvergeLoopOptions): ConvergeLoop {
  const clock = opts.clock ?? systemClock;
  let wanted = true;
  let wake: AbortController | undefined;
  const waiters: (() => void)[] = [];
  opts.signal.addEventListener('abort', () => wake?.abort(), { once: true });

  /** Until a request or the stop, and at most `ms`. */
  async function idle(ms: number) {
    const cut = (wake = new AbortController());
    if (ms === Infinity) await new Promise((resolve) => cut.signal.addEventListener('abort', resolve, { once: true }));
    else await pause(ms, cut.signal, clock);
    wake = undefined;
  }

  async function run() {
    let delay = opts.retry.initialMs;
    while (!opts.signal.aborted) {
      if (!wanted) {
        await idle(Infinity);
        continue;
      }
      wanted = false;
      let ok = false;
      try {
        ok = await opts.pass();
      } catch (err) {
        if (opts.signal.aborted) break;
        opts.onError(err);
      }
      for (const resolve of waiters.splice(0)) resolve();
      if (ok) {
        delay = opts.retry.initialMs;
        continue;
      }
      opts.onRetryAt(new Date(clock.now() + delay));
      await idle(delay);
      wanted = true;
      delay = Math.min(delay * 2, opts.retry.maxMs);
    }
    for (const resolve of waiters.splice(0)) resolve();
  }

  return {
    request() {
      wanted = true;
      wake?.abort();
    },
    settled: () => new Promise((resolve) => waiters.push(resolve)),
    done: run(),
  };
}
