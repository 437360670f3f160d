// Snapshot images (`skiff-core-snapshot/NAME:STAMP`): each replacement of a container commits
// one, so a year of config edits would fill the disk. The newest `keep` per container stay, and
// never one that a container (the current one, or one parked during a replacement) was made from.
import type { Engine, ImageInfo } from '../engine/engine.js';
import { isNotFound, isSkiffError } from '../errors.js';
import { LABEL } from './labels.js';

export interface Snapshot {
  /** `skiff-core-snapshot/NAME:STAMP`. */
  ref: string;
  id: string;
  created: string;
  size: number;
}

/** The snapshots of `container` (all containers when omitted), newest first. */
export async function listSnapshots(engine: Engine, container?: string): Promise<(Snapshot & { container: string })[]> {
  const images = await engine.listImages({ label: [container ? `${LABEL.snapshotOf}=${container}` : LABEL.snapshotOf] });
  return images
    .flatMap((image: ImageInfo) =>
      image.repoTags.map((ref) => ({
        ref,
        id: image.id,
        created: image.created,
        size: image.size,
        container: image.labels[LABEL.snapshotOf] ?? '',
      })),
    )
    .sort((a, b) => b.ref.localeCompare(a.ref));
}

/**
 * Which snapshots to remove: all but the newest `keep`, and none whose image a container uses.
 * Pure; `snapshots` newest first.
 */
export function planPrune(snapshots: readonly Snapshot[], keep: number, inUse: ReadonlySet<string>): Snapshot[] {
  return snapshots.slice(keep).filter((s) => !inUse.has(s.id));
}

/** Removes the snapshots of `container` beyond the newest `keep`; returns the references removed. */
export async function pruneSnapshots(
  engine: Engine,
  container: string,
  keep: number,
  options: { signal?: AbortSignal } = {},
): Promise<string[]> {
  const call = options.signal ? { signal: options.signal } : {};
  const snapshots = await listSnapshots(engine, container);
  if (snapshots.length <= keep) return [];
  const inUse = new Set((await engine.listContainers({ all: true, ...call })).map((c) => c.imageId));
  const removed: string[] = [];
  for (const snapshot of planPrune(snapshots, keep, inUse)) {
    try {
      await engine.removeImage(snapshot.ref, call);
      removed.push(snapshot.ref);
    } catch (err) {
      // Taken into use meanwhile (a rollback), or already gone: either way it is not ours to force.
      if (!isNotFound(err) && !isSkiffError(err, 'ENGINE_CONFLICT')) throw err;
    }
  }
  return removed;
}
