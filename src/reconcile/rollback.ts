// `skiff-core rollback NAME [SNAPSHOT]`: the container is recreated from an earlier snapshot, with
// the options of the config in force. What it replaces becomes a snapshot too, so a rollback can
// be rolled back. The new container counts as up to date with the configured image, so the
// daemon keeps it until the image or the options change again.
import type { Config } from '../config/schema.js';
import { SkiffError } from '../errors.js';
import { applyContainerStep, type ContainerApplyOptions, type ContainerDeps, type ContainerOutcome } from './apply-container.js';
import { containerSpec } from './container-spec.js';
import { isManaged } from './labels.js';
import { listSnapshots, type Snapshot } from './snapshots.js';

/**
 * The snapshot to go back to: the one asked for (a reference or just its tag), else the newest
 * one the current container was not made from. Pure; `snapshots` newest first.
 */
export function chooseRollbackTarget(snapshots: readonly Snapshot[], currentImageId: string, requested?: string): Snapshot | string {
  if (requested) {
    const found = snapshots.find((s) => s.ref === requested || s.ref.endsWith(`:${requested}`));
    return found ?? `no snapshot "${requested}"; "skiff-core snapshots" lists them`;
  }
  return snapshots.find((s) => s.id !== currentImageId) ?? 'no earlier snapshot to roll back to ("skiff-core snapshots" lists them)';
}

export async function rollbackContainer(
  deps: ContainerDeps,
  config: Config,
  name: string,
  requested: string | undefined,
  options: ContainerApplyOptions = {},
): Promise<ContainerOutcome> {
  const { engine } = deps;
  const desired = config.containers[name];
  if (!desired) throw new SkiffError('USAGE', `container ${name} is not in the config`);
  const current = await engine.inspectContainer(name);
  if (!current || !isManaged(current.labels))
    throw new SkiffError('USAGE', `container ${name} does not exist or is not managed by skiff-core`);
  const target = chooseRollbackTarget(await listSnapshots(engine, name), current.imageId, requested);
  if (typeof target === 'string') throw new SkiffError('USAGE', target);
  const image = await engine.inspectImage(desired.image);
  if (!image) throw new SkiffError('IMAGE_UNAVAILABLE', `image ${desired.image} is not present; the daemon obtains it first`);
  return applyContainerStep(
    deps,
    {
      kind: 'replace-container',
      name,
      id: current.id,
      reason: 'rollback',
      spec: containerSpec(name, desired),
      fromSnapshot: true,
      fromImage: target.ref,
      baseImageId: image.id,
      start: true,
    },
    options,
  );
}
