// Follows the engine's events for managed containers: a container removed, stopped or crashed
// asks for a converge pass. The stream is also how the daemon learns at once that the engine went
// away or came back: an idle daemon would otherwise wait for the periodic relist, and a converge
// loop backed off after a long outage for up to retry.maxMs.
import type { Engine } from '../engine/engine.js';
import { errorMessage, isSkiffError } from '../errors.js';
import type { Logger } from '../log.js';
import { LABEL } from '../reconcile/labels.js';
import { pause } from '../time.js';

/** How often an unreachable engine is asked again. */
const ENGINE_POLL_MS = 1000;

export interface EngineWatchOptions {
  engine: Engine;
  log: Logger;
  retry: { initialMs: number; maxMs: number };
  signal: AbortSignal;
  /** A pass now. */
  request(why: string): void;
  /** A pass once things settle (events come in bursts). */
  requestSoon(why: string): void;
  /** The engine does not answer. */
  engineGone(err: unknown): void;
}

export async function followEngine(opts: EngineWatchOptions): Promise<void> {
  const { engine, signal } = opts;
  let since: Date | undefined;
  let delay = opts.retry.initialMs;
  let unreachable = false;
  while (!signal.aborted) {
    try {
      if (unreachable) {
        await engine.ping({ signal });
        unreachable = false;
        opts.request('Docker answers again');
      }
      for await (const event of engine.events({
        signal,
        filters: { type: ['container'], label: [`${LABEL.managed}=true`] },
        ...(since ? { since } : {}),
      })) {
        since = event.time;
        delay = opts.retry.initialMs;
        if (event.action.startsWith('exec_')) continue;
        // A removed container is recreated; a stop or crash only changes what status shows.
        opts.requestSoon(`engine event ${event.action} ${event.name ?? event.id}`);
      }
      // The stream ended: the engine restarted or went away. Converge once it answers again.
      opts.requestSoon('engine event stream ended');
    } catch (err) {
      if (signal.aborted) return;
      opts.log.debug({ reason: errorMessage(err) }, 'Engine event stream failed');
      if (isSkiffError(err, 'ENGINE_UNREACHABLE')) {
        // Asking a missing socket costs nothing: look again every second, not with back-off.
        if (!unreachable) opts.engineGone(err);
        unreachable = true;
        await pause(ENGINE_POLL_MS, signal);
        continue;
      }
    }
    await pause(delay, signal);
    delay = Math.min(delay * 2, opts.retry.maxMs);
  }
}
