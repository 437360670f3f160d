import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createGzip } from 'node:zlib';
import * as tar from 'tar-stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { ImageBuild } from '../../../src/config/schema.js';
import type { BuildOptions, ImageInfo, PullOptions } from '../../../src/engine/engine.js';
import { SkiffError, isSkiffError } from '../../../src/errors.js';
import type { ProgressEvent } from '../../../src/reconcile/events.js';
import { ImageUnavailableError, isImageUnavailable, obtainImage } from '../../../src/reconcile/obtain-image.js';
import type { ImageEngine } from '../../../src/reconcile/obtain-image.js';
import type { ImageAttempt, ObtainImageStep } from '../../../src/reconcile/plan.js';

// A small in-memory engine: images by reference, a "registry" of pullable references, and a
// scripted build outcome. Only the four methods obtainImage uses exist.

type PullScript = { id: string } | { error: SkiffError } | { hang: true };
type BuildScript = { id: string; steps?: number } | { error: SkiffError } | { hang: true };

interface BuildCall {
  tag: string;
  dockerfile: string | undefined;
  buildArgs: Record<string, string | null> | undefined;
  squash: boolean | undefined;
  preserveIntermediate: boolean | undefined;
  /** Names of the entries in the context archive, sorted. */
  entries: string[];
}

function imageInfo(id: string, repoTags: string[]): ImageInfo {
  return { id, repoTags, repoDigests: [], labels: {}, created: '2024-01-01T00:00:00Z', size: 0 };
}

function cancelledBy(signal: AbortSignal | undefined, what: string): Promise<never> {
  return new Promise((_, reject) => {
    signal?.addEventListener('abort', () => reject(new SkiffError('CANCELLED', `${what} was cancelled`)), { once: true });
  });
}

async function listEntries(context: NodeJS.ReadableStream): Promise<string[]> {
  const extract = tar.extract();
  const names: string[] = [];
  (context as NodeJS.ReadableStream).pipe(extract as unknown as NodeJS.WritableStream);
  for await (const entry of extract) {
    names.push(entry.header.name);
    entry.resume();
  }
  return names.sort();
}

class FakeEngine implements ImageEngine {
  /** Local images, by the reference they are tagged with. */
  readonly images = new Map<string, ImageInfo>();
  readonly registry = new Map<string, PullScript>();
  build: BuildScript = { error: new SkiffError('BUILD_FAILED', 'no build scripted') };
  readonly calls: string[] = [];
  readonly buildCalls: BuildCall[] = [];

  addImage(ref: string, id: string): void {
    this.images.set(ref, imageInfo(id, [ref]));
  }

  async inspectImage(ref: string): Promise<ImageInfo | undefined> {
    this.calls.push(`inspect ${ref}`);
    return this.images.get(ref) ?? [...this.images.values()].find((image) => image.id === ref);
  }

  async pullImage(ref: string, options: PullOptions = {}): Promise<ImageInfo> {
    this.calls.push(`pull ${ref}`);
    const script = this.registry.get(ref) ?? {
      error: new SkiffError('PULL_FAILED', `cannot pull ${ref}: manifest for ${ref} not found: manifest unknown`),
    };
    if ('hang' in script) {
      options.onProgress?.({ status: 'Pulling fs layer', layers: [], current: 0, total: 0 });
      return cancelledBy(options.signal, `pull of ${ref}`);
    }
    if ('error' in script) throw script.error;
    options.onProgress?.({ status: '', layers: [{ id: 'l1', status: 'Downloading', current: 50, total: 100 }], current: 50, total: 100 });
    options.onProgress?.({
      status: '',
      layers: [{ id: 'l1', status: 'Pull complete', current: 100, total: 100 }],
      current: 100,
      total: 100,
    });
    this.addImage(ref, script.id);
    return imageInfo(script.id, [ref]);
  }

  async tagImage(sourceRef: string, targetRef: string): Promise<void> {
    this.calls.push(`tag ${sourceRef} ${targetRef}`);
    const source = await this.inspectImage(sourceRef);
    if (source === undefined) throw new SkiffError('ENGINE_NOT_FOUND', `No such image: ${sourceRef}`);
    this.images.set(targetRef, imageInfo(source.id, [targetRef]));
  }

  async buildImage(options: BuildOptions): Promise<ImageInfo> {
    this.calls.push(`build ${options.tag}`);
    const entries = await listEntries(options.context);
    this.buildCalls.push({
      tag: options.tag,
      dockerfile: options.dockerfile,
      buildArgs: options.buildArgs,
      squash: options.squash,
      preserveIntermediate: options.preserveIntermediate,
      entries,
    });
    const script = this.build;
    if ('hang' in script) return cancelledBy(options.signal, `build of ${options.tag}`);
    if ('error' in script) throw script.error;
    const steps = script.steps ?? 2;
    for (let step = 1; step <= steps; step++) {
      options.onProgress?.({ kind: 'step', step, total: steps, text: step === 1 ? 'FROM base' : 'RUN true' });
    }
    this.addImage(options.tag, script.id);
    return imageInfo(script.id, [options.tag]);
  }
}

const REF = 'skiffos/x:latest';

let work: string;
let source: string;

beforeEach(async () => {
  work = await mkdtemp(join(tmpdir(), 'skt-obtain-'));
  source = join(work, 'source');
  await mkdir(source);
  await writeFile(join(source, 'Dockerfile'), 'FROM base\nRUN true\n');
});

afterEach(async () => {
  await rm(work, { recursive: true, force: true });
});

function buildConfig(overrides: Partial<ImageBuild> = {}): ImageBuild {
  return { source, buildArgs: {}, preserveIntermediate: false, squash: false, scratchBuild: false, ...overrides };
}

function step(attempts: ImageAttempt[], present = false): ObtainImageStep {
  return { kind: 'obtain-image', ref: REF, attempts, present };
}

function pull(from: string = REF): ImageAttempt {
  return { kind: 'pull', from };
}

function build(overrides: Partial<ImageBuild> = {}): ImageAttempt {
  return { kind: 'build', build: buildConfig(overrides) };
}

async function run(
  engine: FakeEngine,
  obtain: ObtainImageStep,
  signal?: AbortSignal,
): Promise<{ events: ProgressEvent[]; result: ImageInfo | undefined; error: unknown }> {
  const events: ProgressEvent[] = [];
  const workDir = join(work, 'tmp');
  try {
    const result = await obtainImage({ engine, workDir }, obtain, {
      onProgress: (event) => events.push(event),
      ...(signal === undefined ? {} : { signal }),
    });
    return { events, result, error: undefined };
  } catch (error) {
    return { events, result: undefined, error };
  }
}

/** Phases in order, with consecutive progress events collapsed into one. */
function phases(events: ProgressEvent[]): string[] {
  const out: string[] = [];
  for (const event of events) {
    if (event.kind !== 'image') continue;
    const label = event.phase === 'attempt-failed' ? `attempt-failed:${event.attempt}` : event.phase;
    if (out[out.length - 1] !== label) out.push(label);
  }
  return out;
}

const BUILD_ERROR = "build of skiffos/x:latest failed: The command '/bin/sh -c exit 3' returned a non-zero code: 3";

describe('reconcile/obtain-image', () => {
  describe('pull', () => {
    it('pulls the reference, reports byte progress and returns the image', async () => {
      const engine = new FakeEngine();
      engine.registry.set(REF, { id: 'sha256:aaa' });

      const { events, result, error } = await run(engine, step([pull()]));

      expect(error).toBeUndefined();
      expect(result?.id).toBe('sha256:aaa');
      expect(phases(events)).toEqual(['pulling', 'ready']);
      expect(events).toContainEqual(
        expect.objectContaining({ phase: 'pulling', from: REF, progress: expect.objectContaining({ current: 50, total: 100 }) }),
      );
      expect(events.at(-1)).toEqual({ kind: 'image', ref: REF, phase: 'ready', id: 'sha256:aaa' });
      expect(engine.calls.filter((call) => call.startsWith('tag'))).toEqual([]);
    });

    it('tags an image pulled from pull.registry with the plain reference', async () => {
      const engine = new FakeEngine();
      const from = `quay.io/${REF}`;
      engine.registry.set(from, { id: 'sha256:bbb' });

      const { events, result } = await run(engine, step([pull(from)]));

      expect(engine.calls).toContain(`tag sha256:bbb ${REF}`);
      expect(engine.images.get(REF)?.id).toBe('sha256:bbb');
      expect(result?.id).toBe('sha256:bbb');
      expect(events[0]).toMatchObject({ phase: 'pulling', from, ref: REF });
    });

    it('does not tag when the pulled reference is the same image reference spelled differently', async () => {
      const engine = new FakeEngine();
      engine.registry.set('docker.io/skiffos/x:latest', { id: 'sha256:ccc' });
      engine.addImage(REF, 'sha256:ccc');

      await run(engine, step([pull('docker.io/skiffos/x:latest')]));

      expect(engine.calls.filter((call) => call.startsWith('tag'))).toEqual([]);
    });
  });

  describe('attempts in order', () => {
    it('stops at the first attempt that succeeds', async () => {
      const engine = new FakeEngine();
      engine.registry.set(REF, { id: 'sha256:pulled' });
      engine.build = { id: 'sha256:built' };

      const { result, events } = await run(engine, step([pull(), build()]));

      expect(result?.id).toBe('sha256:pulled');
      expect(engine.buildCalls).toEqual([]);
      expect(phases(events)).toEqual(['pulling', 'ready']);
    });

    it('builds first for [build, pull] and never pulls when the build succeeds', async () => {
      const engine = new FakeEngine();
      engine.registry.set(REF, { id: 'sha256:pulled' });
      engine.build = { id: 'sha256:built' };

      const { result, events } = await run(engine, step([build(), pull()]));

      expect(result?.id).toBe('sha256:built');
      expect(engine.calls.filter((call) => call.startsWith('pull'))).toEqual([]);
      expect(phases(events)).toEqual(['building', 'ready']);
      expect(events).toContainEqual({
        kind: 'image',
        ref: REF,
        phase: 'building',
        progress: { kind: 'step', step: 1, total: 2, text: 'FROM base' },
      });
    });

    it('falls back to the build when the pull fails, reporting the failed pull', async () => {
      const engine = new FakeEngine();
      engine.build = { id: 'sha256:built' };

      const { result, events } = await run(engine, step([pull(), build()]));

      expect(result?.id).toBe('sha256:built');
      expect(phases(events)).toEqual(['attempt-failed:pull', 'building', 'ready']);
      expect(events[0]).toEqual({
        kind: 'image',
        ref: REF,
        phase: 'attempt-failed',
        attempt: 'pull',
        message: `cannot pull ${REF}: manifest for ${REF} not found: manifest unknown`,
      });
    });

    it('falls back to the pull when the build fails', async () => {
      const engine = new FakeEngine();
      engine.build = { error: new SkiffError('BUILD_FAILED', BUILD_ERROR) };
      engine.registry.set(REF, { id: 'sha256:pulled' });

      const { result, events } = await run(engine, step([build(), pull()]));

      expect(result?.id).toBe('sha256:pulled');
      expect(phases(events)).toEqual(['attempt-failed:build', 'pulling', 'ready']);
      expect(events).toContainEqual({ kind: 'image', ref: REF, phase: 'attempt-failed', attempt: 'build', message: BUILD_ERROR });
    });
  });

  describe('when every attempt fails', () => {
    it('throws IMAGE_UNAVAILABLE naming the image and every attempt with its error', async () => {
      const engine = new FakeEngine();
      const from = `quay.io/${REF}`;
      engine.registry.set(from, { error: new SkiffError('PULL_FAILED', `cannot pull ${from}: unauthorized: access denied`) });
      engine.build = { error: new SkiffError('BUILD_FAILED', BUILD_ERROR) };

      const { error, events } = await run(engine, step([pull(from), build()]));

      expect(isImageUnavailable(error)).toBe(true);
      const unavailable = error as ImageUnavailableError;
      expect(unavailable.code).toBe('IMAGE_UNAVAILABLE');
      expect(unavailable.message).toBe(
        `image ${REF} is not available: pull ${from} failed: unauthorized: access denied; ` +
          `build from ${source} failed: The command '/bin/sh -c exit 3' returned a non-zero code: 3`,
      );
      expect(unavailable.attempts).toEqual([
        { attempt: 'pull', target: from, message: `cannot pull ${from}: unauthorized: access denied` },
        { attempt: 'build', target: source, message: BUILD_ERROR },
      ]);
      expect(phases(events)).toEqual(['attempt-failed:pull', 'attempt-failed:build', 'failed']);
      expect(events.at(-1)).toEqual({ kind: 'image', ref: REF, phase: 'failed', message: unavailable.message });
    });

    it('keeps the present image on a failed refresh (policy always) and warns', async () => {
      const engine = new FakeEngine();
      engine.addImage(REF, 'sha256:old');

      const { result, error, events } = await run(engine, step([pull()], true));

      expect(error).toBeUndefined();
      expect(result?.id).toBe('sha256:old');
      expect(phases(events)).toEqual(['attempt-failed:pull', 'ready']);
      expect(events.at(-1)).toEqual({
        kind: 'image',
        ref: REF,
        phase: 'ready',
        id: 'sha256:old',
        warning:
          `could not refresh ${REF}: pull ${REF} failed: manifest for ${REF} not found: manifest unknown; ` +
          'keeping the image that is present',
      });
    });

    it('returns the refreshed image when a refresh succeeds', async () => {
      const engine = new FakeEngine();
      engine.addImage(REF, 'sha256:old');
      engine.registry.set(REF, { id: 'sha256:new' });

      const { result, events } = await run(engine, step([pull()], true));

      expect(result?.id).toBe('sha256:new');
      expect(events.at(-1)).toEqual({ kind: 'image', ref: REF, phase: 'ready', id: 'sha256:new' });
    });

    it('fails when the "present" image vanished before the refresh failed', async () => {
      const engine = new FakeEngine();

      const { error, events } = await run(engine, step([pull()], true));

      expect(isSkiffError(error, 'IMAGE_UNAVAILABLE')).toBe(true);
      expect(phases(events)).toEqual(['attempt-failed:pull', 'failed']);
    });

    it('says there is no way to obtain an image without attempts', async () => {
      const engine = new FakeEngine();

      const { error, events } = await run(engine, step([]));

      expect(isSkiffError(error, 'IMAGE_UNAVAILABLE')).toBe(true);
      expect((error as Error).message).toBe(`image ${REF} is not available: no way to obtain it (no pull or build is configured)`);
      expect((error as ImageUnavailableError).attempts).toEqual([]);
      expect(phases(events)).toEqual(['failed']);
    });

    it('stops at once when the engine is unreachable instead of trying the next attempt', async () => {
      const engine = new FakeEngine();
      const unreachable = new SkiffError('ENGINE_UNREACHABLE', 'cannot reach Docker at /var/run/docker.sock: connection refused');
      engine.registry.set(REF, { error: unreachable });
      engine.build = { id: 'sha256:built' };

      const { error, events } = await run(engine, step([pull(), build()]));

      expect(error).toBe(unreachable);
      expect(engine.buildCalls).toEqual([]);
      expect(phases(events)).toEqual(['failed']);
    });
  });

  describe('cancellation', () => {
    it('stops during a pull with CANCELLED and tries nothing else', async () => {
      const engine = new FakeEngine();
      engine.registry.set(REF, { hang: true });
      engine.build = { id: 'sha256:built' };
      const controller = new AbortController();

      const running = run(engine, step([pull(), build()]), controller.signal);
      await new Promise((resolve) => setTimeout(resolve, 10));
      controller.abort();
      const { error, events } = await running;

      expect(isSkiffError(error, 'CANCELLED')).toBe(true);
      expect(engine.buildCalls).toEqual([]);
      expect(events.filter((event) => event.kind === 'image' && event.phase !== 'pulling')).toEqual([]);
    });

    it('stops during a build with CANCELLED and still removes the unpacked source', async () => {
      const engine = new FakeEngine();
      engine.build = { hang: true };
      engine.registry.set(REF, { id: 'sha256:pulled' });
      const archive = await writeTarGz(join(work, 'src.tar.gz'), { Dockerfile: 'FROM base\n' });
      const controller = new AbortController();

      const running = run(engine, step([build({ source: archive }), pull()]), controller.signal);
      await waitUntil(() => engine.buildCalls.length === 1);
      controller.abort();
      const { error } = await running;

      expect(isSkiffError(error, 'CANCELLED')).toBe(true);
      expect(engine.calls.filter((call) => call.startsWith('pull'))).toEqual([]);
      expect(await readdir(join(work, 'tmp'))).toEqual([]);
    });

    it('does not start when the signal is already aborted', async () => {
      const engine = new FakeEngine();
      engine.registry.set(REF, { id: 'sha256:pulled' });
      const controller = new AbortController();
      controller.abort();

      const { error, events } = await run(engine, step([pull()]), controller.signal);

      expect(isSkiffError(error, 'CANCELLED')).toBe(true);
      expect(engine.calls).toEqual([]);
      expect(events).toEqual([]);
    });
  });

  describe('build', () => {
    it('sends the root as context, the Dockerfile relative to it, and the build options', async () => {
      const engine = new FakeEngine();
      engine.build = { id: 'sha256:built' };
      await mkdir(join(source, 'image', 'docker'), { recursive: true });
      await writeFile(join(source, 'image', 'docker', 'Dockerfile.arm'), 'FROM base\n');
      await writeFile(join(source, 'image', 'payload.txt'), 'hello\n');
      await writeFile(join(source, 'outside-root.txt'), 'not sent\n');

      const { result } = await run(
        engine,
        step([
          build({
            root: 'image',
            dockerfile: './docker//Dockerfile.arm',
            buildArgs: { A: '1', B: null },
            squash: true,
            preserveIntermediate: true,
          }),
        ]),
      );

      expect(result?.id).toBe('sha256:built');
      expect(engine.buildCalls).toEqual([
        {
          tag: REF,
          dockerfile: 'docker/Dockerfile.arm',
          buildArgs: { A: '1', B: null },
          squash: true,
          preserveIntermediate: true,
          entries: ['docker/', 'docker/Dockerfile.arm', 'payload.txt'],
        },
      ]);
    });

    it('reports a missing Dockerfile by its path and never calls the engine', async () => {
      const engine = new FakeEngine();
      engine.build = { id: 'sha256:built' };
      await mkdir(join(source, 'image'));

      const { error, events } = await run(engine, step([build({ root: 'image', dockerfile: 'Dockerfile.arm' })]));

      expect(engine.buildCalls).toEqual([]);
      const message = `Dockerfile "Dockerfile.arm" not found in directory "image" of build source ${source}`;
      expect(events[0]).toEqual({ kind: 'image', ref: REF, phase: 'attempt-failed', attempt: 'build', message });
      expect((error as Error).message).toBe(`image ${REF} is not available: build from ${source} failed: ${message}`);
    });

    it('reports a missing build root', async () => {
      const engine = new FakeEngine();

      const { error } = await run(engine, step([build({ root: 'nope' })]));

      expect((error as ImageUnavailableError).attempts[0]?.message).toBe(`build root "nope" is not a directory in build source ${source}`);
    });

    it('refuses a Dockerfile outside the source', async () => {
      const engine = new FakeEngine();

      const { error } = await run(engine, step([build({ dockerfile: '../Dockerfile' })]));

      expect(engine.buildCalls).toEqual([]);
      expect((error as ImageUnavailableError).attempts[0]?.message).toMatch(/path "\.\.\/Dockerfile" leads outside/);
    });

    it('removes an unpacked archive after a successful and after a failed build', async () => {
      const engine = new FakeEngine();
      const archive = await writeTarGz(join(work, 'src.tar.gz'), { Dockerfile: 'FROM base\n', 'files/a.txt': 'a\n' });

      engine.build = { id: 'sha256:built' };
      const ok = await run(engine, step([build({ source: archive })]));
      expect(ok.result?.id).toBe('sha256:built');
      expect(engine.buildCalls[0]?.entries).toEqual(['Dockerfile', 'files/', 'files/a.txt']);
      expect(await readdir(join(work, 'tmp'))).toEqual([]);

      engine.build = { error: new SkiffError('BUILD_FAILED', BUILD_ERROR) };
      const failed = await run(engine, step([build({ source: archive })]));
      expect(isSkiffError(failed.error, 'IMAGE_UNAVAILABLE')).toBe(true);
      expect(await readdir(join(work, 'tmp'))).toEqual([]);
    });
  });
});

async function writeTarGz(path: string, files: Record<string, string>): Promise<string> {
  const pack = tar.pack();
  const dirs = new Set<string>();
  for (const [name, content] of Object.entries(files)) {
    const parts = name.split('/');
    for (let i = 1; i < parts.length; i++) {
      const dir = `${parts.slice(0, i).join('/')}/`;
      if (!dirs.has(dir)) {
        dirs.add(dir);
        pack.entry({ name: dir, type: 'directory', mode: 0o755 });
      }
    }
    pack.entry({ name, mode: 0o644 }, content);
  }
  pack.finalize();
  const chunks: Buffer[] = [];
  const gzip = createGzip();
  (pack as unknown as NodeJS.ReadableStream).pipe(gzip);
  for await (const chunk of gzip as AsyncIterable<Buffer>) chunks.push(chunk);
  await writeFile(path, Buffer.concat(chunks));
  return path;
}

async function waitUntil(condition: () => boolean): Promise<void> {
  for (let i = 0; i < 200 && !condition(); i++) await new Promise((resolve) => setTimeout(resolve, 5));
  if (!condition()) throw new Error('condition never became true');
}
