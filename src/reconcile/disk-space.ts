// Before a pull, a build or a snapshot commit: is there room where the engine keeps its data?
// Running out in the middle leaves half-written layers and a persist partition that cannot take
// a config edit, so the work is refused up front, with a reason status and logins show.
import { statfs } from 'node:fs/promises';
import type { Engine } from '../engine/engine.js';
import { SkiffError } from '../errors.js';

export type MinFree = { bytes: number } | { percent: number };

const UNITS: Record<string, number> = { B: 1, KB: 1e3, MB: 1e6, GB: 1e9, TB: 1e12 };

/** `500MB`, `2GB`, `10%` (validated by the config schema). */
export function parseMinFree(spec: string): MinFree {
  const m = /^(\d+(?:\.\d+)?)\s*(B|KB|MB|GB|TB|%)$/i.exec(spec.trim());
  if (!m) throw new SkiffError('CONFIG_INVALID', `storage.minFree: "${spec}" is not a size or a share`);
  const n = Number(m[1]);
  const unit = m[2]!.toUpperCase();
  return unit === '%' ? { percent: n } : { bytes: n * UNITS[unit]! };
}

export interface DiskFacts {
  free: number;
  total: number;
}

/** Why there is not enough room, or undefined when there is. Pure. */
export function lowSpace(facts: DiskFacts, min: MinFree): string | undefined {
  const needed = 'bytes' in min ? min.bytes : (facts.total * min.percent) / 100;
  return facts.free < needed ? `${formatBytes(facts.free)} free of ${formatBytes(facts.total)}` : undefined;
}

export function formatBytes(n: number): string {
  if (n >= 1e9) return `${(n / 1e9).toFixed(1)} GB`;
  if (n >= 1e6) return `${Math.round(n / 1e6)} MB`;
  return `${Math.round(n / 1e3)} KB`;
}

export type SpaceGuard = (what: string) => Promise<void>;

/**
 * A guard that throws DISK_LOW when the engine's data root (`GET /info`, DockerRootDir) has less
 * free than `minFree`. An engine whose data root is not on this machine (a remote engine) is
 * not checked.
 */
export function spaceGuard(engine: Engine, minFree: string, facts: (path: string) => Promise<DiskFacts> = diskFacts): SpaceGuard {
  const min = parseMinFree(minFree);
  let root: Promise<string | undefined> | undefined;
  return async (what) => {
    root ??= engine.dataRoot().catch(() => undefined);
    const path = await root;
    if (!path) return;
    const here = await facts(path).catch(() => undefined);
    if (!here) return;
    const low = lowSpace(here, min);
    if (low) {
      throw new SkiffError(
        'DISK_LOW',
        `not enough disk for ${what}: ${low} where the engine keeps its data (${path}), below storage.minFree (${minFree}). Free some space (docker image prune; skiff-core snapshots lists what skiff-core keeps); it is retried.`,
      );
    }
  };
}

async function diskFacts(path: string): Promise<DiskFacts> {
  const s = await statfs(path);
  return { free: s.bavail * s.bsize, total: s.blocks * s.bsize };
}
