// The engine's images: inspect, list, pull, tag, remove, build, and snapshots committed from
// containers (with the config of another image when asked).
import type { IncomingMessage } from 'node:http';
import { Readable } from 'node:stream';
import { SkiffError, errorMessage, isNotFound, isSkiffError } from '../../errors.js';
import type { BuildOptions, CallOptions, CommitOptions, Engine, EngineVersion, ImageFilter, ImageInfo, PullOptions } from '../engine.js';
import { configOnlyArchive, type RawImageInspect } from '../image-config.js';
import { splitRepoTag } from '../image-ref.js';
import { createBuildOutputParser, createPullProgressTracker, streamError } from '../progress.js';
import { imagePath, optStr, parseImage, rec, str } from './read.js';
import type { RequestSpec, Transport } from './transport.js';

type ImageCalls = Pick<
  Engine,
  'ping' | 'inspectImage' | 'listImages' | 'pullImage' | 'tagImage' | 'removeImage' | 'buildImage' | 'dataRoot' | 'commitContainer'
>;

export function imageCalls(t: Transport): ImageCalls {
  const { send, sendJson, sendNoContent, consumeJsonStream } = t;
  async function ping(opts: CallOptions = {}): Promise<EngineVersion> {
    const raw = rec(await sendJson({ op: 'ping', method: 'GET', path: '/version', signal: opts.signal }));
    const engine = (Array.isArray(raw['Components']) ? raw['Components'] : []).map(rec).find((component) => component['Name'] === 'Engine');
    return {
      version: str(raw['Version']),
      apiVersion: str(raw['ApiVersion']),
      experimental: raw['Experimental'] === true || rec(engine?.['Details'])['Experimental'] === 'true',
      os: str(raw['Os']),
      arch: str(raw['Arch']),
    };
  }

  async function inspectImage(ref: string, opts: CallOptions = {}): Promise<ImageInfo | undefined> {
    try {
      return parseImage(
        await sendJson({ op: 'inspectImage', method: 'GET', path: imagePath(ref, '/json'), signal: opts.signal, ids: { ref } }),
      );
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  }

  async function listImages(filter: ImageFilter = {}, opts: CallOptions = {}): Promise<ImageInfo[]> {
    const filters: Record<string, string[]> = {};
    if (filter.label !== undefined && filter.label.length > 0) filters['label'] = filter.label;
    if (filter.reference !== undefined) filters['reference'] = [filter.reference];
    const raw = await sendJson({
      op: 'listImages',
      method: 'GET',
      path: '/images/json',
      query: { filters: JSON.stringify(filters) },
      signal: opts.signal,
    });
    return (Array.isArray(raw) ? raw : []).map(parseImage);
  }

  async function pullImage(ref: string, opts: PullOptions = {}): Promise<ImageInfo> {
    const { repo, tag, digest } = splitRepoTag(ref);
    const spec: RequestSpec = {
      op: 'pullImage',
      method: 'POST',
      path: '/images/create',
      query: { fromImage: repo, tag: digest ?? tag },
      signal: opts.signal,
      ids: { ref },
    };
    let res: IncomingMessage;
    try {
      res = await send(spec);
    } catch (err) {
      if (isSkiffError(err, 'ENGINE_UNREACHABLE') || isSkiffError(err, 'CANCELLED')) throw err;
      throw new SkiffError('PULL_FAILED', `cannot pull ${ref}: ${errorMessage(err)}`, { cause: err });
    }
    const tracker = createPullProgressTracker();
    let failure: string | undefined;
    await consumeJsonStream(res, spec, (obj) => {
      const message = streamError(obj);
      if (message !== undefined) {
        failure ??= message;
        return;
      }
      const progress = tracker.push(obj);
      opts.onProgress?.(progress);
    });
    if (failure !== undefined) throw new SkiffError('PULL_FAILED', `cannot pull ${ref}: ${failure}`);
    const image = await inspectImage(ref, opts);
    if (image === undefined) {
      throw new SkiffError('PULL_FAILED', `cannot pull ${ref}: the engine reported success but has no such image`);
    }
    return image;
  }

  async function tagImage(sourceRef: string, targetRef: string, opts: CallOptions = {}): Promise<void> {
    const { repo, tag, digest } = splitRepoTag(targetRef);
    if (digest !== undefined) {
      throw new SkiffError('ENGINE_ERROR', `cannot tag ${sourceRef} as ${targetRef}: a tag cannot contain a digest`);
    }
    await sendNoContent({
      op: 'tagImage',
      method: 'POST',
      path: imagePath(sourceRef, '/tag'),
      query: { repo, tag },
      signal: opts.signal,
      ids: { sourceRef, targetRef },
    });
  }

  async function removeImage(ref: string, opts: CallOptions & { force?: boolean } = {}): Promise<void> {
    await sendNoContent({
      op: 'removeImage',
      method: 'DELETE',
      path: imagePath(ref),
      query: { force: opts.force === true },
      signal: opts.signal,
      ids: { ref },
    });
  }

  async function buildImage(opts: BuildOptions): Promise<ImageInfo> {
    const { context, tag } = opts;
    // A failing context (unreadable file…) must not be mistaken for a failing engine.
    let contextError: unknown;
    context.on('error', (err: unknown) => {
      contextError ??= err;
    });
    function contextFailure(): SkiffError | undefined {
      if (contextError === undefined) return undefined;
      if (contextError instanceof SkiffError) return contextError;
      return new SkiffError('SOURCE_INVALID', `cannot read the build context of ${tag}: ${errorMessage(contextError)}`, {
        cause: contextError,
      });
    }
    try {
      if (opts.squash === true) {
        const version = await ping({ ...(opts.signal === undefined ? {} : { signal: opts.signal }) });
        if (!version.experimental) {
          throw new SkiffError(
            'ENGINE_NOT_SUPPORTED',
            `cannot build ${tag} with squash: the Docker engine (${version.version}) does not run with experimental features enabled`,
          );
        }
      }
      const preserve = opts.preserveIntermediate === true;
      const spec: RequestSpec = {
        op: 'buildImage',
        method: 'POST',
        path: '/build',
        query: {
          t: tag,
          dockerfile: opts.dockerfile,
          // A null value is how the API passes an argument without a value.
          buildargs: opts.buildArgs === undefined ? undefined : JSON.stringify(opts.buildArgs),
          labels: opts.labels === undefined ? undefined : JSON.stringify(opts.labels),
          squash: opts.squash === true ? true : undefined,
          rm: !preserve,
          forcerm: !preserve,
        },
        file: context,
        signal: opts.signal,
        ids: { tag },
      };
      let res: IncomingMessage;
      try {
        res = await send(spec);
      } catch (err) {
        const failure = contextFailure();
        if (failure !== undefined) throw failure;
        if (isSkiffError(err, 'ENGINE_UNREACHABLE') || isSkiffError(err, 'CANCELLED')) throw err;
        if (opts.squash === true && /experimental/i.test(errorMessage(err))) {
          throw new SkiffError('ENGINE_NOT_SUPPORTED', `cannot build ${tag} with squash: ${errorMessage(err)}`, { cause: err });
        }
        if (isSkiffError(err) && err.code.startsWith('ENGINE_')) {
          throw new SkiffError('BUILD_FAILED', `build of ${tag} failed: ${errorMessage(err)}`, { cause: err });
        }
        throw err;
      }
      const parser = createBuildOutputParser((event) => opts.onProgress?.(event));
      try {
        await consumeJsonStream(res, spec, (obj) => parser.push(obj));
      } catch (err) {
        throw contextFailure() ?? err;
      }
      parser.end();
      if (parser.error !== undefined) {
        const tail = parser.tail;
        const output = tail.length === 0 ? '' : `\nlast output:\n${tail.map((line) => `  ${line}`).join('\n')}`;
        throw new SkiffError('BUILD_FAILED', `build of ${tag} failed: ${parser.error}${output}`);
      }
      const image = await inspectImage(tag, opts.signal === undefined ? {} : { signal: opts.signal });
      if (image === undefined) {
        throw new SkiffError('BUILD_FAILED', `build of ${tag} finished but the engine has no image ${tag}`);
      }
      return image;
    } finally {
      // Stop packing the context if the engine answered before reading all of it.
      destroyStream(context);
    }
  }

  async function dataRoot(opts: CallOptions = {}): Promise<string | undefined> {
    const info = rec(await sendJson({ op: 'info', method: 'GET', path: '/info', signal: opts.signal }));
    return optStr(info['DockerRootDir']);
  }

  async function commitContainer(id: string, opts: CommitOptions): Promise<string> {
    const raw = rec(
      await sendJson({
        op: 'commitContainer',
        method: 'POST',
        path: '/commit',
        query: { container: id, repo: opts.repo, tag: opts.tag, comment: opts.comment, pause: opts.pause ?? true },
        // The engine merges this config with the container's; only labels are changed.
        body: opts.labels === undefined ? undefined : { Labels: opts.labels },
        signal: opts.signal,
        ids: { container: id, repo: opts.repo, tag: opts.tag },
      }),
    );
    const committed = str(raw['Id']);
    if (opts.configFrom === undefined) return committed;
    return replaceImageConfig(committed, { ...opts, configFrom: opts.configFrom });
  }

  /** Re-tags `repo:tag` as the committed layers with the config of `opts.configFrom` (see image-config.ts). */
  async function replaceImageConfig(committed: string, opts: CommitOptions & { configFrom: string }): Promise<string> {
    const call = opts.signal === undefined ? {} : { signal: opts.signal };
    const inspectRaw = async (ref: string) =>
      rec(await sendJson({ op: 'inspectImage', method: 'GET', path: imagePath(ref, '/json'), ...call, ids: { ref } })) as RawImageInspect;
    const { archive, id } = await configOnlyArchive({
      target: `${opts.repo}:${opts.tag}`,
      layersOf: await inspectRaw(committed),
      configOf: await inspectRaw(opts.configFrom),
      ...(opts.labels ? { labels: opts.labels } : {}),
      ...(opts.comment ? { comment: opts.comment } : {}),
    });
    const spec: RequestSpec = {
      op: 'loadImage',
      method: 'POST',
      path: '/images/load',
      query: { quiet: true },
      file: Readable.from([archive]),
      ...call,
      ids: { target: `${opts.repo}:${opts.tag}` },
    };
    let failure: string | undefined;
    await consumeJsonStream(await send(spec), spec, (obj) => {
      failure ??= streamError(obj);
    });
    if (failure !== undefined)
      throw new SkiffError('ENGINE_ERROR', `cannot give snapshot ${opts.repo}:${opts.tag} the config of ${opts.configFrom}: ${failure}`);
    // The commit itself is now untagged; its layers live on in the loaded image.
    await sendNoContent({ op: 'removeImage', method: 'DELETE', path: imagePath(committed), ...call, ids: { ref: committed } }).catch(
      () => undefined,
    );
    return id;
  }

  return { ping, inspectImage, listImages, pullImage, tagImage, removeImage, buildImage, dataRoot, commitContainer };
}

function destroyStream(stream: NodeJS.ReadableStream): void {
  const maybe = stream as { destroy?: () => void };
  if (typeof maybe.destroy === 'function') maybe.destroy();
}
