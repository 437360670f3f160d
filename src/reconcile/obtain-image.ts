// Executor of ObtainImageStep: tries the planned pulls and builds in order until one leaves the
// image in the engine, reporting progress as it goes. The plan (which attempts, in which order)
// comes from planImage; nothing here decides policy.

import { stat } from 'node:fs/promises';
import { relative, sep } from 'node:path';
import type { ImageBuild } from '../config/schema.js';
import { prepareBuildSource } from '../engine/build-source.js';
import type { BuildSourceLog } from '../engine/build-source.js';
import { packBuildContext, resolveInside } from '../engine/build-context.js';
import type { Engine, ImageInfo } from '../engine/engine.js';
import { sameImageRef } from '../engine/image-ref.js';
import { SkiffError, errorMessage, isSkiffError } from '../errors.js';
import type { ImageEvent, OnProgress } from './events.js';
import type { ImageAttempt, ObtainImageStep } from './plan.js';
import type { SpaceGuard } from './disk-space.js';

/** The engine calls obtaining an image needs (a full Engine fits). */
export type ImageEngine = Pick<Engine, 'pullImage' | 'tagImage' | 'inspectImage' | 'buildImage'>;

export interface ObtainImageDeps {
  engine: ImageEngine;
  /** Where git clones and unpacked archives go while building (removed afterwards). */
  workDir: string;
  log?: BuildSourceLog;
  /** Throws DISK_LOW when there is no room for a pull or build (see disk-space.ts). */
  ensureSpace?: SpaceGuard;
}

export interface ObtainImageOptions {
  onProgress?: OnProgress;
  signal?: AbortSignal;
}

/** One attempt that did not produce the image. */
export interface AttemptFailure {
  attempt: 'pull' | 'build';
  /** What was tried: the reference pulled, or the build source. */
  target: string;
  /** The attempt's error message, as reported in its `attempt-failed` event. */
  message: string;
}

/** IMAGE_UNAVAILABLE, with every failed attempt for callers that present them one by one. */
export class ImageUnavailableError extends SkiffError {
  readonly ref: string;
  readonly attempts: readonly AttemptFailure[];

  constructor(ref: string, attempts: readonly AttemptFailure[], message: string, options?: { cause?: unknown }) {
    super('IMAGE_UNAVAILABLE', message, options);
    this.name = 'ImageUnavailableError';
    this.ref = ref;
    this.attempts = attempts;
  }
}

export function isImageUnavailable(err: unknown): err is ImageUnavailableError {
  return err instanceof ImageUnavailableError;
}

/**
 * Makes `step.ref` present by trying `step.attempts` in order; returns the image.
 *
 * - Each failed attempt is reported (`attempt-failed`) and the next one is tried.
 * - All failed with `step.present`: the image that is there is kept and returned, and `ready`
 *   carries a warning. Otherwise `failed` is reported and ImageUnavailableError
 *   (IMAGE_UNAVAILABLE) names every attempt with its error.
 * - Aborting the signal stops at once with CANCELLED (no further attempts, no `failed` event).
 * - An unreachable engine (ENGINE_UNREACHABLE) also stops at once: no other attempt could work.
 */
export async function obtainImage(deps: ObtainImageDeps, step: ObtainImageStep, options: ObtainImageOptions = {}): Promise<ImageInfo> {
  const { ref } = step;
  const { signal } = options;
  const emit = (event: ImageEvent): void => options.onProgress?.(event);
  const failures: AttemptFailure[] = [];

  if (step.attempts.length > 0 && deps.ensureSpace) {
    try {
      await deps.ensureSpace(`obtaining image ${ref}`);
    } catch (err) {
      // No attempt starts on a full disk; an image that is there is kept.
      const present = step.present ? await deps.engine.inspectImage(ref, signal === undefined ? {} : { signal }) : undefined;
      if (present) {
        emit({
          kind: 'image',
          ref,
          phase: 'ready',
          id: present.id,
          warning: `could not refresh ${ref}: ${errorMessage(err)}; keeping the image that is present`,
        });
        return present;
      }
      emit({ kind: 'image', ref, phase: 'failed', message: errorMessage(err) });
      throw err;
    }
  }

  for (const attempt of step.attempts) {
    throwIfCancelled(ref, signal);
    try {
      const image =
        attempt.kind === 'pull'
          ? await pullAttempt(deps, ref, attempt.from, emit, signal)
          : await buildAttempt(deps, ref, attempt.build, emit, signal);
      emit({ kind: 'image', ref, phase: 'ready', id: image.id });
      return image;
    } catch (err) {
      if (signal?.aborted === true || isSkiffError(err, 'CANCELLED')) throw cancelled(ref, err);
      if (isSkiffError(err, 'ENGINE_UNREACHABLE')) {
        emit({ kind: 'image', ref, phase: 'failed', message: err.message });
        throw err;
      }
      const failure: AttemptFailure = { attempt: attempt.kind, target: attemptTarget(attempt), message: errorMessage(err) };
      failures.push(failure);
      emit({ kind: 'image', ref, phase: 'attempt-failed', attempt: failure.attempt, message: failure.message });
    }
  }

  throwIfCancelled(ref, signal);
  if (step.present) {
    const present = await deps.engine.inspectImage(ref, signal === undefined ? {} : { signal });
    if (present !== undefined) {
      if (failures.length === 0) {
        emit({ kind: 'image', ref, phase: 'ready', id: present.id });
      } else {
        const warning = `could not refresh ${ref}: ${describeFailures(ref, failures)}; keeping the image that is present`;
        emit({ kind: 'image', ref, phase: 'ready', id: present.id, warning });
      }
      return present;
    }
  }

  const detail = failures.length === 0 ? 'no way to obtain it (no pull or build is configured)' : describeFailures(ref, failures);
  const error = new ImageUnavailableError(ref, failures, `image ${ref} is not available: ${detail}`);
  emit({ kind: 'image', ref, phase: 'failed', message: error.message });
  throw error;
}

async function pullAttempt(
  deps: ObtainImageDeps,
  ref: string,
  from: string,
  emit: (event: ImageEvent) => void,
  signal: AbortSignal | undefined,
): Promise<ImageInfo> {
  const call = signal === undefined ? {} : { signal };
  const pulled = await deps.engine.pullImage(from, {
    ...call,
    onProgress: (progress) => emit({ kind: 'image', ref, phase: 'pulling', from, progress }),
  });
  if (!sameImageRef(from, ref)) {
    // By id: whatever `from` names by now, the image just pulled is the one to keep.
    await deps.engine.tagImage(pulled.id === '' ? from : pulled.id, ref, call);
  }
  const image = await deps.engine.inspectImage(ref, call);
  if (image === undefined) {
    throw new SkiffError('PULL_FAILED', `pulled ${from}, but the engine has no image ${ref} afterwards`);
  }
  return image;
}

async function buildAttempt(
  deps: ObtainImageDeps,
  ref: string,
  build: ImageBuild,
  emit: (event: ImageEvent) => void,
  signal: AbortSignal | undefined,
): Promise<ImageInfo> {
  const call = signal === undefined ? {} : { signal };
  const source = await prepareBuildSource(build.source, {
    workDir: deps.workDir,
    ...call,
    ...(deps.log === undefined ? {} : { log: deps.log }),
  });
  try {
    const root = build.root ?? '.';
    const where = build.root === undefined ? `build source ${build.source}` : `directory "${build.root}" of build source ${build.source}`;
    const contextDir = await resolveInside(source.dir, root);
    const rootInfo = await stat(contextDir).catch(() => undefined);
    if (rootInfo?.isDirectory() !== true) {
      throw new SkiffError('SOURCE_INVALID', `build root "${root}" is not a directory in build source ${build.source}`);
    }
    const dockerfile = build.dockerfile ?? 'Dockerfile';
    const dockerfilePath = await resolveInside(contextDir, dockerfile);
    const dockerfileInfo = await stat(dockerfilePath).catch(() => undefined);
    if (dockerfileInfo?.isFile() !== true) {
      throw new SkiffError('SOURCE_INVALID', `Dockerfile "${dockerfile}" not found in ${where}`);
    }
    // The path inside the context archive, normalized (`./a//Dockerfile` → `a/Dockerfile`).
    const dockerfileInContext = relative(contextDir, dockerfilePath).split(sep).join('/');
    const context = await packBuildContext(contextDir, { dockerfile: dockerfileInContext, ...call });
    return await deps.engine.buildImage({
      ...call,
      context,
      tag: ref,
      dockerfile: dockerfileInContext,
      buildArgs: build.buildArgs,
      squash: build.squash,
      preserveIntermediate: build.preserveIntermediate,
      onProgress: (progress) => emit({ kind: 'image', ref, phase: 'building', progress }),
    });
  } finally {
    await source.cleanup();
  }
}

function attemptTarget(attempt: ImageAttempt): string {
  return attempt.kind === 'pull' ? attempt.from : attempt.build.source;
}

/** `pull X failed: …; build from Y failed: …`, without repeating what each message already says. */
function describeFailures(ref: string, failures: readonly AttemptFailure[]): string {
  return failures
    .map((failure) => {
      if (failure.attempt === 'pull') {
        return `pull ${failure.target} failed: ${withoutPrefix(failure.message, `cannot pull ${failure.target}: `)}`;
      }
      return `build from ${failure.target} failed: ${withoutPrefix(failure.message, `build of ${ref} failed: `)}`;
    })
    .join('; ');
}

function withoutPrefix(message: string, prefix: string): string {
  return message.startsWith(prefix) && message.length > prefix.length ? message.slice(prefix.length) : message;
}

function throwIfCancelled(ref: string, signal: AbortSignal | undefined): void {
  if (signal?.aborted === true) throw cancelled(ref, signal.reason);
}

function cancelled(ref: string, cause: unknown): SkiffError {
  if (isSkiffError(cause, 'CANCELLED')) return cause;
  return new SkiffError('CANCELLED', `obtaining image ${ref} was cancelled`, { cause });
}
