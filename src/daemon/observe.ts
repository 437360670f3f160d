// Reads what the engine has for the configured images and containers into the status lists.
// Used by the daemon after each pass and by `status` when no daemon answers.
import type { Config } from '../config/schema.js';
import type { ContainerInfo, Engine } from '../engine/engine.js';
import { normalizeImageRef } from '../engine/image-ref.js';
import { isManaged } from '../reconcile/labels.js';
import type { ContainerStatus, ImageStatus, StatusSnapshot } from './status.js';

const LOG_TAIL = 10;

export async function observeEngine(
  engine: Engine,
  config: Config,
  previous: Pick<StatusSnapshot, 'images' | 'containers'>,
): Promise<Pick<StatusSnapshot, 'images' | 'containers'>> {
  const refs = new Map<string, string>();
  for (const ref of Object.keys(config.images)) refs.set(normalizeImageRef(ref), ref);
  for (const c of Object.values(config.containers))
    if (!refs.has(normalizeImageRef(c.image))) refs.set(normalizeImageRef(c.image), c.image);

  const images = await Promise.all(
    [...refs.values()].map(async (ref): Promise<ImageStatus> => {
      const before = previous.images.find((i) => i.ref === ref);
      // Work in progress and failures are the daemon's knowledge, not the engine's.
      if (before && (before.state === 'pulling' || before.state === 'building' || before.state === 'failed')) return before;
      const info = await engine.inspectImage(ref);
      return info
        ? { ref, state: 'present', id: info.id, ...(before?.message ? { message: before.message } : {}) }
        : { ref, state: 'missing' };
    }),
  );

  const containers = await Promise.all(
    Object.entries(config.containers).map(async ([name, desired]): Promise<ContainerStatus> => {
      const before = previous.containers.find((c) => c.name === name);
      const info = await engine.inspectContainer(name);
      return describeContainer(engine, name, desired.image, info, before);
    }),
  );
  return { images, containers };
}

async function describeContainer(
  engine: Engine,
  name: string,
  image: string,
  info: ContainerInfo | undefined,
  before: ContainerStatus | undefined,
): Promise<ContainerStatus> {
  const carried = {
    ...(before?.message ? { message: before.message } : {}),
    ...(before?.problem ? { problem: before.problem } : {}),
    ...(before?.pending ? { pending: before.pending } : {}),
    ...(before?.activity ? { activity: before.activity } : {}),
  };
  if (!info) return { name, state: 'missing', image, readiness: 'not created', ...carried };
  if (!isManaged(info.labels)) {
    return { name, state: 'foreign', image: info.config.image, readiness: 'not managed by skiff-core', ...carried };
  }
  const running = info.state.running;
  const status: ContainerStatus = {
    name,
    state: info.state.restarting ? 'restarting' : info.state.status,
    image: info.config.image,
    restartCount: info.restartCount,
    // Readiness learnt from a probe holds while the container keeps running since then.
    readiness: running
      ? before &&
        (before.startedAt === undefined || before.startedAt === info.state.startedAt) &&
        (before.readiness.startsWith('ready') || before.readiness.startsWith('waiting'))
        ? before.readiness
        : 'running'
      : 'not running',
    ...carried,
  };
  if (info.state.startedAt) status.startedAt = info.state.startedAt;
  // A crash loop or a failed start: the last lines are usually the reason.
  if (info.restartCount > 0 || (!running && info.state.exitCode !== 0) || info.state.error) {
    const logs = await engine.containerLogs(info.id, { tail: LOG_TAIL }).catch(() => '');
    if (logs.trim()) status.lastLogs = logs.trimEnd();
    if (info.state.error && !status.problem) status.problem = info.state.error;
  }
  return status;
}
