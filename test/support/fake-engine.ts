// One in-memory Engine for unit tests: containers and images with the engine's rules (names are
// unique, a running container is removed only with force, an image in use by name…), a log of
// calls, and scripted failures. Methods a test did not ask for throw "not implemented", so a
// test never passes by accident through a missing method.
import { createHash } from 'node:crypto';
import type { ContainerCreateBody, ContainerInfo, Engine, ImageInfo } from '../../src/engine/engine.js';
import { SkiffError } from '../../src/errors.js';

type Method = keyof Engine;

export function imageInfo(overrides: Partial<ImageInfo> = {}): ImageInfo {
  return { id: 'sha256:0', repoTags: [], repoDigests: [], labels: {}, created: '2026-01-01T00:00:00.000Z', size: 0, ...overrides };
}

export type ContainerOverrides = Partial<Omit<ContainerInfo, 'state'>> & { state?: Partial<ContainerInfo['state']> };

export function containerInfo(overrides: ContainerOverrides = {}): ContainerInfo {
  const { state, ...rest } = overrides;
  return {
    id: 'c0',
    name: 'core',
    imageId: 'sha256:0',
    created: '2026-01-01T00:00:00.000Z',
    restartCount: 0,
    labels: {},
    config: {
      image: '',
      env: [],
      user: '',
      tty: false,
      openStdin: false,
      workingDir: '',
      entrypoint: [],
      cmd: [],
      hostname: '',
      stopSignal: undefined,
      labels: {},
    },
    hostConfig: {
      binds: [],
      privileged: false,
      capAdd: [],
      securityOpt: [],
      networkMode: 'default',
      ipcMode: '',
      pidMode: '',
      utsMode: '',
      dns: [],
      dnsSearch: [],
      extraHosts: [],
      tmpfs: {},
      restartPolicy: { name: 'no', maximumRetryCount: 0 },
      init: undefined,
    },
    ...rest,
    state: {
      status: 'created',
      running: false,
      restarting: false,
      paused: false,
      exitCode: 0,
      startedAt: undefined,
      finishedAt: undefined,
      error: '',
      pid: 0,
      oomKilled: false,
      ...state,
    },
  };
}

interface Script {
  method: Method;
  when: (...args: unknown[]) => boolean;
  error: Error;
}

export interface FakeEngine extends Engine {
  /** Containers by id. */
  readonly containers: Map<string, ContainerInfo>;
  /** Images by id; a tag lives in repoTags. */
  readonly images: Map<string, ImageInfo>;
  /** `method arg0` of every call, in order. */
  readonly calls: string[];
  addImage(ref: string, overrides?: Partial<ImageInfo>): ImageInfo;
  addContainer(overrides: ContainerOverrides): ContainerInfo;
  /** The next call of `method` for which `when` holds fails with `error` (once). */
  failNext(method: Method, error: Error, when?: (...args: unknown[]) => boolean): void;
  /** Runs after each successful call of `method`, e.g. to make a started container exit. */
  after(method: Method, hook: (...args: unknown[]) => void): void;
  byName(name: string): ContainerInfo | undefined;
}

export function createFakeEngine(): FakeEngine {
  const containers = new Map<string, ContainerInfo>();
  const images = new Map<string, ImageInfo>();
  const calls: string[] = [];
  const scripts: Script[] = [];
  const hooks = new Map<Method, ((...args: unknown[]) => void)[]>();
  let seq = 0;

  const notFound = (what: string) => new SkiffError('ENGINE_NOT_FOUND', `No such ${what}`);
  const byName = (name: string) => [...containers.values()].find((c) => c.name === name);
  const find = (nameOrId: string) => containers.get(nameOrId) ?? byName(nameOrId);
  const mustFind = (nameOrId: string) => find(nameOrId) ?? throwing(notFound(`container: ${nameOrId}`));
  const image = (ref: string) => images.get(ref) ?? [...images.values()].find((i) => i.repoTags.includes(withTag(ref)));
  const addImage = (ref: string, overrides: Partial<ImageInfo> = {}) => {
    const id = overrides.id ?? `sha256:${createHash('sha256').update(`${ref}${seq++}`).digest('hex')}`;
    const existing = images.get(id);
    for (const other of images.values()) other.repoTags = other.repoTags.filter((t) => t !== withTag(ref));
    const info = existing ?? imageInfo({ id, ...overrides, repoTags: [] });
    info.repoTags.push(withTag(ref));
    images.set(id, info);
    return info;
  };

  const impl: Partial<Engine> = {
    async ping() {
      return { version: '0-fake', apiVersion: '1.41', experimental: false, os: 'linux', arch: 'amd64' };
    },
    async inspectContainer(nameOrId) {
      const c = find(nameOrId);
      return c && structuredClone(c);
    },
    async listContainers(opts = {}) {
      return [...containers.values()]
        .filter((c) => (opts.labels ?? []).every((l) => hasLabel(c.labels, l)))
        .map((c) => ({
          id: c.id,
          names: [c.name],
          image: c.config.image,
          imageId: c.imageId,
          state: c.state.status,
          labels: { ...c.labels },
        }));
    },
    async createContainer(name, body: ContainerCreateBody) {
      if (byName(name)) throw new SkiffError('ENGINE_CONFLICT', `Conflict. The container name "/${name}" is already in use`);
      const img = image(body.Image) ?? throwing(notFound(`image: ${body.Image}`));
      const id = `c${++seq}`;
      const labels = { ...(body.Labels ?? {}) };
      containers.set(
        id,
        containerInfo({
          id,
          name,
          imageId: img.id,
          labels,
          config: { ...containerInfo().config, image: body.Image, env: body.Env ?? [], cmd: body.Cmd ?? [], labels },
        }),
      );
      return id;
    },
    async startContainer(id) {
      const c = mustFind(id);
      c.state = { ...c.state, status: 'running', running: true, pid: 1000 + seq++, startedAt: new Date().toISOString(), exitCode: 0 };
    },
    async stopContainer(id) {
      const c = mustFind(id);
      c.state = { ...c.state, status: 'exited', running: false, pid: 0, finishedAt: new Date().toISOString() };
    },
    async removeContainer(id, opts = {}) {
      const c = mustFind(id);
      if (c.state.running && !opts.force) throw new SkiffError('ENGINE_CONFLICT', `You cannot remove a running container ${c.id}`);
      containers.delete(c.id);
    },
    async renameContainer(id, newName) {
      const c = mustFind(id);
      if (byName(newName)) throw new SkiffError('ENGINE_CONFLICT', `Conflict. The container name "/${newName}" is already in use`);
      c.name = newName;
    },
    async unpauseContainer(id) {
      const c = mustFind(id);
      c.state = { ...c.state, paused: false };
    },
    async commitContainer(id, opts) {
      mustFind(id);
      return addImage(`${opts.repo}:${opts.tag}`, { labels: { ...(opts.labels ?? {}) }, created: new Date().toISOString() }).id;
    },
    async inspectImage(ref) {
      const i = image(ref);
      return i && structuredClone(i);
    },
    async listImages(filter = {}) {
      return [...images.values()].filter((i) => (filter.label ?? []).every((l) => hasLabel(i.labels, l))).map((i) => structuredClone(i));
    },
    async removeImage(ref) {
      const i = image(ref) ?? throwing(notFound(`image: ${ref}`));
      const tag = withTag(ref);
      if (i.repoTags.length > 1 && i.repoTags.includes(tag)) i.repoTags = i.repoTags.filter((t) => t !== tag);
      else images.delete(i.id);
    },
    async containerLogs() {
      return '';
    },
  };

  const engine = {} as Record<Method, unknown>;
  const methods: Method[] = [
    'ping',
    'inspectImage',
    'listImages',
    'pullImage',
    'tagImage',
    'removeImage',
    'buildImage',
    'listContainers',
    'inspectContainer',
    'createContainer',
    'startContainer',
    'stopContainer',
    'removeContainer',
    'renameContainer',
    'unpauseContainer',
    'dataRoot',
    'commitContainer',
    'containerLogs',
    'execRun',
    'events',
    'execSession',
    'execControl',
  ];
  for (const method of methods) {
    engine[method] = async (...args: unknown[]) => {
      calls.push(`${method} ${typeof args[0] === 'string' ? args[0] : ''}`.trim());
      const script = scripts.findIndex((s) => s.method === method && s.when(...args));
      if (script >= 0) throw scripts.splice(script, 1)[0]!.error;
      const fn = impl[method] as ((...a: unknown[]) => Promise<unknown>) | undefined;
      if (!fn) throw new Error(`fake engine: ${method} is not implemented; script it in the test`);
      const result = await fn(...args);
      for (const hook of hooks.get(method) ?? []) hook(...args);
      return result;
    };
  }

  return Object.assign(engine as unknown as Engine, {
    containers,
    images,
    calls,
    addImage,
    addContainer(overrides: ContainerOverrides) {
      const c = containerInfo({ id: `c${++seq}`, ...overrides });
      containers.set(c.id, c);
      return c;
    },
    failNext(method: Method, error: Error, when: (...args: unknown[]) => boolean = () => true) {
      scripts.push({ method, when, error });
    },
    after(method: Method, hook: (...args: unknown[]) => void) {
      hooks.set(method, [...(hooks.get(method) ?? []), hook]);
    },
    byName,
  });
}

function withTag(ref: string): string {
  return /:[^/]+$/.test(ref) || ref.includes('@') ? ref : `${ref}:latest`;
}

function hasLabel(labels: Record<string, string>, filter: string): boolean {
  const [key, value] = filter.split('=', 2) as [string, string | undefined];
  return value === undefined ? key in labels : labels[key] === value;
}

function throwing(err: Error): never {
  throw err;
}
