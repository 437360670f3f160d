// The engine's event stream, as a generator that ends quietly when its signal aborts.
import type { IncomingMessage } from 'node:http';
import type { Engine, EngineEvent, EventsOptions } from '../engine.js';
import { createJsonLineParser } from '../progress.js';
import { engineTime, parseEvent } from './read.js';
import type { RequestSpec, Transport } from './transport.js';

export function eventCalls(t: Transport): Pick<Engine, 'events'> {
  const { send, mapError } = t;
  async function* events(opts: EventsOptions = {}): AsyncGenerator<EngineEvent> {
    const spec: RequestSpec = {
      op: 'events',
      method: 'GET',
      path: '/events',
      query: {
        since: opts.since === undefined ? undefined : engineTime(opts.since),
        filters: opts.filters === undefined ? undefined : JSON.stringify(opts.filters),
      },
      signal: opts.signal,
    };
    let res: IncomingMessage | undefined;
    const queue: EngineEvent[] = [];
    const parser = createJsonLineParser((obj) => {
      const event = parseEvent(obj);
      if (event !== undefined) queue.push(event);
    });
    try {
      res = await send(spec);
      for await (const chunk of res as AsyncIterable<Buffer>) {
        parser.push(chunk);
        while (queue.length > 0) yield queue.shift() as EngineEvent;
      }
    } catch (err) {
      if (opts.signal?.aborted === true) return;
      throw mapError(err, spec);
    } finally {
      res?.destroy();
    }
  }

  return { events };
}
