// The engine's containers: list, inspect, create, start, stop, remove, rename, unpause, logs.
import { SkiffError, errorMessage, isNotFound, isSkiffError } from '../../errors.js';
import type { CallOptions, ContainerCreateBody, ContainerInfo, ContainerSummary, Engine } from '../engine.js';
import { demuxStdio } from '../stdio-frames.js';
import { containerPath, parseContainer, parseContainerSummary, rec, str } from './read.js';
import type { RequestSpec, Transport } from './transport.js';

type ContainerCalls = Pick<
  Engine,
  | 'listContainers'
  | 'inspectContainer'
  | 'createContainer'
  | 'startContainer'
  | 'stopContainer'
  | 'removeContainer'
  | 'renameContainer'
  | 'unpauseContainer'
  | 'containerLogs'
>;

export function containerCalls(t: Transport): ContainerCalls {
  const { send, sendJson, sendNoContent, readBody } = t;
  async function listContainers(opts: CallOptions & { all?: boolean; labels?: string[] } = {}): Promise<ContainerSummary[]> {
    const filters: Record<string, string[]> = {};
    if (opts.labels !== undefined && opts.labels.length > 0) filters['label'] = opts.labels;
    const raw = await sendJson({
      op: 'listContainers',
      method: 'GET',
      path: '/containers/json',
      query: { all: opts.all !== false, filters: JSON.stringify(filters) },
      signal: opts.signal,
    });
    return (Array.isArray(raw) ? raw : []).map(parseContainerSummary);
  }

  async function inspectContainer(nameOrId: string, opts: CallOptions = {}): Promise<ContainerInfo | undefined> {
    try {
      const raw = await sendJson({
        op: 'inspectContainer',
        method: 'GET',
        path: `/containers/${encodeURIComponent(nameOrId)}/json`,
        signal: opts.signal,
        ids: { container: nameOrId },
      });
      return parseContainer(raw);
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  }

  async function createContainer(name: string, body: ContainerCreateBody, opts: CallOptions = {}): Promise<string> {
    const raw = rec(
      await sendJson({
        op: 'createContainer',
        method: 'POST',
        path: '/containers/create',
        query: { name },
        body,
        signal: opts.signal,
        ids: { container: name, image: body.Image },
      }),
    );
    const id = str(raw['Id']);
    if (id === '') throw new SkiffError('ENGINE_ERROR', `createContainer ${name}: the engine returned no id`);
    return id;
  }

  async function startContainer(id: string, opts: CallOptions = {}): Promise<void> {
    // 304 (already started) is below 400 and so a success.
    await sendNoContent({
      op: 'startContainer',
      method: 'POST',
      path: containerPath(id, '/start'),
      signal: opts.signal,
      ids: { container: id },
    });
  }

  async function stopContainer(id: string, opts: CallOptions & { timeoutSec?: number } = {}): Promise<void> {
    await sendNoContent({
      op: 'stopContainer',
      method: 'POST',
      path: containerPath(id, '/stop'),
      query: { t: opts.timeoutSec },
      signal: opts.signal,
      ids: { container: id },
    });
  }

  async function removeContainer(id: string, opts: CallOptions & { force?: boolean; volumes?: boolean } = {}): Promise<void> {
    await sendNoContent({
      op: 'removeContainer',
      method: 'DELETE',
      path: containerPath(id),
      query: { force: opts.force === true, v: opts.volumes === true },
      signal: opts.signal,
      ids: { container: id },
    });
  }

  async function renameContainer(id: string, newName: string, opts: CallOptions = {}): Promise<void> {
    await sendNoContent({
      op: 'renameContainer',
      method: 'POST',
      path: containerPath(id, '/rename'),
      query: { name: newName },
      signal: opts.signal,
      ids: { container: id, newName },
    });
  }

  async function unpauseContainer(id: string, opts: CallOptions = {}): Promise<void> {
    try {
      await sendNoContent({
        op: 'unpauseContainer',
        method: 'POST',
        path: containerPath(id, '/unpause'),
        signal: opts.signal,
        ids: { container: id },
      });
    } catch (err) {
      // "is not paused" is the state we want.
      if (!(isSkiffError(err, 'ENGINE_CONFLICT') || /not paused/i.test(errorMessage(err)))) throw err;
    }
  }

  async function containerLogs(id: string, opts: CallOptions & { tail?: number } = {}): Promise<string> {
    const info = await inspectContainer(id, opts.signal === undefined ? {} : { signal: opts.signal });
    if (info === undefined) throw new SkiffError('ENGINE_NOT_FOUND', `No such container: ${id}`);
    const spec: RequestSpec = {
      op: 'containerLogs',
      method: 'GET',
      path: containerPath(id, '/logs'),
      query: { stdout: true, stderr: true, tail: opts.tail === undefined ? 'all' : Math.max(0, Math.floor(opts.tail)) },
      signal: opts.signal,
      ids: { container: id },
    };
    const body = await readBody(await send(spec), spec);
    // With a TTY the engine sends the raw terminal bytes; without, multiplexed frames.
    return (info.config.tty ? body : demuxStdio(body).combined).toString('utf8');
  }

  return {
    listContainers,
    inspectContainer,
    createContainer,
    startContainer,
    stopContainer,
    removeContainer,
    renameContainer,
    unpauseContainer,
    containerLogs,
  };
}
