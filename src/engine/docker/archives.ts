// Image archives: `docker save` of several images into one tar stream, and `docker load` of one.
import { SkiffError } from '../../errors.js';
import type { CallOptions, Engine } from '../engine.js';
import { streamError } from '../progress.js';
import { rec } from './read.js';
import type { RequestSpec, Transport } from './transport.js';

export function archiveCalls(t: Transport): Pick<Engine, 'saveImages' | 'loadImages'> {
  async function saveImages(refs: string[], opts: CallOptions = {}): Promise<NodeJS.ReadableStream> {
    // The API wants `names` repeated, which the transport's flat query cannot say.
    const query = refs.map((ref) => `names=${encodeURIComponent(ref)}`).join('&');
    return t.send({ op: 'saveImages', method: 'GET', path: `/images/get?${query}`, signal: opts.signal, ids: { refs: refs.join(' ') } });
  }

  async function loadImages(archive: NodeJS.ReadableStream, opts: CallOptions = {}): Promise<string[]> {
    const spec: RequestSpec = {
      op: 'loadImages',
      method: 'POST',
      path: '/images/load',
      query: { quiet: false },
      file: archive,
      signal: opts.signal,
    };
    const loaded: string[] = [];
    let failure: string | undefined;
    await t.consumeJsonStream(await t.send(spec), spec, (obj) => {
      failure ??= streamError(obj);
      const line = rec(obj)['stream'];
      const match = typeof line === 'string' ? /^Loaded image: (\S+)/.exec(line.trim()) : null;
      if (match?.[1]) loaded.push(match[1]);
    });
    if (failure !== undefined) throw new SkiffError('ENGINE_ERROR', `the engine could not load the images: ${failure}`);
    return loaded;
  }

  return { saveImages, loadImages };
}
