// One pass that makes the engine match the config: images first, each container once its image
// is settled, independent work in parallel. It reports every outcome instead of stopping at the
// first failure, so one broken image never blocks an unrelated container.
import { DEFAULT_STORAGE, type Config, type Image } from '../config/schema.js';
import type { ContainerInfo, Engine, ImageInfo } from '../engine/engine.js';
import { normalizeImageRef } from '../engine/image-ref.js';
import { errorMessage, isSkiffError, operatorMessage } from '../errors.js';
import { faultPoint } from '../faults.js';
import { applyContainerStep, ROLLED_BACK, type ContainerDeps } from './apply-container.js';
import { containerSpec } from './container-spec.js';
import { spaceGuard } from './disk-space.js';
import type { OnProgress } from './events.js';
import { isManaged, LABEL, PARKED_SUFFIX } from './labels.js';
import { obtainImage } from './obtain-image.js';
import { planContainer, planImage } from './plan.js';
import { pruneSnapshots } from './snapshots.js';

export interface ConvergeDeps extends ContainerDeps {
  engine: Engine;
  /** Where builds unpack and clone their sources. */
  workDir: string;
}

export interface ConvergeOptions {
  onProgress?: OnProgress;
  signal?: AbortSignal;
  /** Unlabelled containers with these names are taken over (snapshot, recreate). */
  adopt?: ReadonlySet<string>;
  readyTimeoutMs?: number;
  /** Start existing stopped containers (setup: yes; the daemon: no). Default true. */
  startStopped?: boolean;
  /** Why a due replacement of this container must wait, or undefined. */
  holdReplace?: (name: string) => string | undefined;
  /**
   * Image updates that did not become ready and were rolled back, by container, kept by the
   * caller across passes: the same update (image and options) is not tried again, so a broken
   * image does not cost a snapshot and a restart every back-off. Without it, every pass tries.
   */
  rolledBack?: Map<string, RolledBackUpdate>;
}

export interface RolledBackUpdate {
  /** The image id and options hash of the update. */
  attempt: string;
  /** What the pass that rolled it back said. */
  message: string;
}

const NOT_RETRIED = 'not tried again until the image or the container\'s options change, or "skiff-core reload"';

export type ImageStatus = 'present' | 'obtained' | 'failed';
export type ContainerStatus = 'unchanged' | 'created' | 'started' | 'replaced' | 'ready' | 'pending' | 'failed' | 'foreign' | 'blocked';

export interface ConvergeReport {
  ok: boolean;
  images: { ref: string; status: ImageStatus; id?: string; message?: string }[];
  containers: { name: string; status: ContainerStatus; message?: string }[];
}

export async function converge(config: Config, deps: ConvergeDeps, options: ConvergeOptions = {}): Promise<ConvergeReport> {
  // Fails fast with ENGINE_UNREACHABLE: nothing below can succeed without the engine.
  await deps.engine.ping(options.signal ? { signal: options.signal } : {});

  const storage = config.storage ?? DEFAULT_STORAGE;
  // One guard per pass: the engine's data root is looked up once, and only if something needs room.
  deps = { ...deps, ensureSpace: deps.ensureSpace ?? spaceGuard(deps.engine, storage.minFree) };
  const wanted = wantedImages(config);
  const images = new Map<string, Promise<ImageInfo>>();
  const imageReport: ConvergeReport['images'] = [];
  for (const [key, { ref, image }] of wanted) {
    images.set(
      key,
      settleImage(deps, ref, image, options).then(
        (result) => {
          imageReport.push({
            ref,
            status: result.obtained ? 'obtained' : 'present',
            id: result.info.id,
            ...(result.warning ? { message: result.warning } : {}),
          });
          return result.info;
        },
        (err: unknown) => {
          imageReport.push({ ref, status: 'failed', message: errorMessage(err) });
          throw err;
        },
      ),
    );
  }
  // Failures are read through the per-container awaits below; avoid unhandled rejections.
  for (const p of images.values()) p.catch(() => undefined);

  const containerReport = await Promise.all(
    Object.entries(config.containers).map(async ([name, desired]) => {
      const imagePromise = images.get(normalizeImageRef(desired.image));
      let image: ImageInfo | undefined;
      try {
        image = await imagePromise;
      } catch (err) {
        const message = `waiting for image ${desired.image}, which is not available`;
        options.onProgress?.({ kind: 'container', name, phase: 'blocked', message });
        // A container that already exists keeps running on what it has.
        return { name, status: 'blocked' as const, message: `${message}: ${errorMessage(err)}` };
      }
      return convergeContainer(deps, name, desired, image, options, storage.keepSnapshots);
    }),
  );

  imageReport.sort((a, b) => a.ref.localeCompare(b.ref));
  const ok =
    imageReport.every((i) => i.status !== 'failed') && containerReport.every((c) => !['failed', 'foreign', 'blocked'].includes(c.status));
  return { ok, images: imageReport, containers: containerReport };
}

/** Every image the config needs, keyed by its normalised reference (`ubuntu` = `ubuntu:latest`). */
function wantedImages(config: Config): Map<string, { ref: string; image: Image | undefined }> {
  const out = new Map<string, { ref: string; image: Image | undefined }>();
  for (const [ref, image] of Object.entries(config.images)) out.set(normalizeImageRef(ref), { ref, image });
  for (const c of Object.values(config.containers)) {
    const key = normalizeImageRef(c.image);
    if (!out.has(key)) out.set(key, { ref: c.image, image: undefined });
  }
  return out;
}

async function settleImage(
  deps: ConvergeDeps,
  ref: string,
  image: Image | undefined,
  options: ConvergeOptions,
): Promise<{ info: ImageInfo; obtained: boolean; warning?: string }> {
  const call = options.signal ? { signal: options.signal } : {};
  const present = await deps.engine.inspectImage(ref, call);
  const step = planImage(ref, image, present);
  if (!step && present) return { info: present, obtained: false };
  if (!step) throw new Error(`no way to obtain image ${ref}`);
  let warning: string | undefined;
  const info = await obtainImage(deps, step, {
    ...call,
    onProgress: (event) => {
      if (event.kind === 'image' && event.phase === 'ready' && event.warning) warning = event.warning;
      options.onProgress?.(event);
    },
  });
  return { info, obtained: !present || info.id !== present.id, ...(warning ? { warning } : {}) };
}

async function convergeContainer(
  deps: ConvergeDeps,
  name: string,
  desired: Config['containers'][string],
  image: ImageInfo | undefined,
  options: ConvergeOptions,
  keepSnapshots: number,
): Promise<ConvergeReport['containers'][number]> {
  let attempt: string | undefined;
  try {
    const container = await recoverInterrupted(deps.engine, name, options);
    attempt = image ? `${image.id} ${containerSpec(name, desired).hash}` : undefined;
    const rolledBack = options.rolledBack?.get(name);
    if (rolledBack && rolledBack.attempt !== attempt) options.rolledBack?.delete(name);
    const held = rolledBack?.attempt === attempt ? rolledBack : undefined;
    const hold = options.holdReplace?.(name) ?? (held ? NOT_RETRIED : undefined);
    const steps = planContainer(name, desired, {
      image,
      container,
      adopt: options.adopt?.has(name) ?? false,
      ...(options.startStopped === false ? { startStopped: false } : {}),
      ...(hold ? { holdReplace: hold } : {}),
    });
    if (steps.length === 0) return { name, status: 'unchanged' };
    // Still the update that was rolled back: say so again, as the failure it is.
    if (held && steps[0]?.kind === 'hold-replace' && steps[0].why === NOT_RETRIED)
      return { name, status: 'failed', message: `${held.message}\n(${NOT_RETRIED})` };
    let status: ContainerStatus = 'unchanged';
    const messages: string[] = [];
    for (const step of steps) {
      const outcome = await applyContainerStep(deps, step, options);
      // The first step says what changed; wait-ready after it only confirms it.
      if (status === 'unchanged') status = outcome.status;
      if ('message' in outcome && outcome.message) messages.push(outcome.message);
      if (outcome.status === 'foreign' || outcome.status === 'pending') return { name, status: outcome.status, message: outcome.message };
    }
    if (status === 'replaced') {
      // Only after the replacement has succeeded: until then the newest snapshot is the way back.
      const pruned = await pruneSnapshots(deps.engine, name, keepSnapshots, options.signal ? { signal: options.signal } : {}).catch(
        (err: unknown) => {
          messages.push(`old snapshots not pruned: ${errorMessage(err)}`);
          return [];
        },
      );
      faultPoint('snapshots-pruned');
      if (pruned.length)
        messages.push(`removed ${pruned.length} old snapshot${pruned.length > 1 ? 's' : ''} (storage.keepSnapshots: ${keepSnapshots})`);
    }
    return { name, status, ...(messages.length ? { message: messages.join('; ') } : {}) };
  } catch (err) {
    if (isSkiffError(err, 'CANCELLED')) throw err;
    const message = operatorMessage(err);
    if (attempt && errorMessage(err).startsWith(ROLLED_BACK)) options.rolledBack?.set(name, { attempt, message });
    options.onProgress?.({ kind: 'container', name, phase: 'failed', message });
    return { name, status: 'failed', message };
  }
}

/**
 * A replacement interrupted by a crash leaves the old container parked as NAME-replaced-STAMP.
 * Put it back before planning, so its files are never lost: if NAME is missing or never got
 * running, the parked container returns under its name (and is replaced again, properly).
 */
async function recoverInterrupted(engine: Engine, name: string, options: ConvergeOptions): Promise<ContainerInfo | undefined> {
  const call = options.signal ? { signal: options.signal } : {};
  let current = await engine.inspectContainer(name, call);
  // A snapshot commit pauses the container; an engine that died during it leaves it paused (and
  // every login to it hanging). skiff-core pauses nothing else, so a paused container is resumed.
  if (current?.state.paused && isManaged(current.labels)) {
    await engine.unpauseContainer(current.id, call);
    options.onProgress?.({
      kind: 'container',
      name,
      phase: 'starting',
      message: 'resumed: it was left paused (by an interrupted snapshot, or docker pause)',
    });
    current = await engine.inspectContainer(name, call);
  }
  const parked = (await engine.listContainers({ all: true, labels: [`${LABEL.container}=${name}`], ...call }))
    .filter((c) => c.names.some((n) => n.startsWith(`${name}${PARKED_SUFFIX}`)))
    .sort((a, b) => (a.names[0] ?? '').localeCompare(b.names[0] ?? ''));
  const newest = parked[parked.length - 1];
  if (!newest) return current;
  if (current && (current.state.running || current.state.restarting)) {
    // The replacement finished but the old one was not removed yet.
    for (const p of parked) await engine.removeContainer(p.id, { force: true, ...call });
    return current;
  }
  if (current) await engine.removeContainer(current.id, { force: true, ...call });
  await engine.renameContainer(newest.id, name, call);
  options.onProgress?.({
    kind: 'container',
    name,
    phase: 'replacing',
    message: 'restored the previous container after an interrupted replacement',
  });
  return engine.inspectContainer(name, call);
}
