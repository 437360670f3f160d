// The container half of `skiff-core backup` and `restore`: a snapshot to save, and a container
// made from a loaded one. Moving the bytes is the CLI's business (cli/commands/backup.ts).
import type { BackupManifest } from '../backup/manifest.js';
import type { Container } from '../config/schema.js';
import { SkiffError } from '../errors.js';
import { VERSION } from '../cli/version.js';
import { applyContainerStep, type ContainerApplyOptions, type ContainerDeps, type ContainerOutcome } from './apply-container.js';
import { containerSpec } from './container-spec.js';
import { isManaged, LABEL, snapshotRef } from './labels.js';

/**
 * Commits container `name` to a fresh snapshot (paused for the moment of the commit, so its files
 * are consistent) and returns the manifest of a backup holding it. The snapshot is kept like any
 * other, so it is also a point to roll back to.
 */
export async function snapshotForBackup(deps: ContainerDeps, name: string, desired: Container | undefined): Promise<BackupManifest> {
  const { engine } = deps;
  if (!desired) throw new SkiffError('USAGE', `container ${name} is not in the config`);
  const current = await engine.inspectContainer(name);
  if (!current || !isManaged(current.labels))
    throw new SkiffError('USAGE', `container ${name} does not exist or is not managed by skiff-core`);
  const image = await engine.inspectImage(desired.image);
  if (!image) throw new SkiffError('IMAGE_UNAVAILABLE', `image ${desired.image} is not present; the daemon obtains it first`);
  await deps.ensureSpace?.(`a snapshot of ${name}`);
  const now = (deps.now ?? (() => new Date()))();
  const snap = snapshotRef(name, now);
  await engine.commitContainer(current.id, {
    ...snap,
    labels: { [LABEL.snapshotOf]: name },
    comment: `skiff-core snapshot of ${name} for a backup`,
    // As for any snapshot a container is recreated from: settings come from the image and the config.
    configFrom: image.id,
  });
  const version = await engine.ping();
  return {
    format: 1,
    container: name,
    createdAt: now.toISOString(),
    skiffCoreVersion: VERSION,
    snapshot: `${snap.repo}:${snap.tag}`,
    image: desired.image,
    platform: {
      os: image.os ?? version.os,
      architecture: image.architecture ?? version.arch,
      ...(image.variant ? { variant: image.variant } : {}),
    },
    entry: desired as unknown as Record<string, unknown>,
  };
}

/**
 * Makes container `name` from the loaded snapshot `snapshot`, with the options of `desired`:
 * created when there is none, replaced when skiff-core made the one there (what it held becomes
 * a snapshot, so the restore can be rolled back). Someone else's container is never touched.
 */
export async function restoreContainer(
  deps: ContainerDeps,
  name: string,
  desired: Container,
  snapshot: string,
  options: ContainerApplyOptions = {},
): Promise<ContainerOutcome> {
  const { engine } = deps;
  const image = await engine.inspectImage(desired.image);
  if (!image) throw new SkiffError('IMAGE_UNAVAILABLE', `image ${desired.image} is not present: the backup should have loaded it`);
  if (!(await engine.inspectImage(snapshot))) throw new SkiffError('IMAGE_UNAVAILABLE', `snapshot ${snapshot} is not loaded`);
  const spec = containerSpec(name, desired);
  const current = await engine.inspectContainer(name);
  if (current && !isManaged(current.labels)) throw new SkiffError('USAGE', foreignName(name));
  if (!current) {
    const outcome = await applyContainerStep(
      deps,
      { kind: 'create-container', name, spec, baseImageId: image.id, start: desired.startAfterCreate, fromImage: snapshot },
      options,
    );
    return { ...outcome, message: `restored from snapshot ${snapshot}` };
  }
  return applyContainerStep(
    deps,
    {
      kind: 'replace-container',
      name,
      id: current.id,
      reason: 'restore',
      spec,
      fromSnapshot: true,
      fromImage: snapshot,
      baseImageId: image.id,
      start: desired.startAfterCreate,
    },
    options,
  );
}

export function foreignName(name: string): string {
  return `a container named "${name}" exists and skiff-core did not create it; restore with --as OTHER-NAME, or rename or remove it`;
}
