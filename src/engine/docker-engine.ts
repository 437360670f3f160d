// The Engine implemented against the Docker API. This is the only file that imports dockerode.
//
// Every call goes through dockerode's modem as a raw request so that all of them share one
// error mapping: the HTTP status decides the code and the engine's own `message` is kept
// (dockerode's wrappers would otherwise add their text, or lose the body of streamed errors).

import type { IncomingMessage } from 'node:http';
import { connect as netConnect } from 'node:net';
import { addAbortSignal, Readable, type Duplex } from 'node:stream';
import { SkiffError, errorMessage, isNotFound, isSkiffError } from '../errors.js';
import type {
  BuildOptions,
  CallOptions,
  CommitOptions,
  ContainerCreateBody,
  ContainerInfo,
  ContainerSummary,
  Engine,
  EngineEvent,
  EngineVersion,
  EventsOptions,
  ExecOptions,
  ExecResult,
  ExecControl,
  ExecSession,
  ExecSessionOptions,
  ImageFilter,
  ImageInfo,
  PullOptions,
} from './engine.js';
import { configOnlyArchive, type RawImageInspect } from './image-config.js';
import { splitRepoTag } from './image-ref.js';
import { dialEngine, type EngineEndpoint } from './http-dial.js';
import { stopReading } from './socket-reading.js';
import { createBuildOutputParser, createJsonLineParser, createPullProgressTracker, streamError } from './progress.js';
import { createStdioDemuxer, demuxStdio } from './stdio-frames.js';

export interface EngineLog {
  debug(obj: object, msg: string): void;
}

export interface DockerEngineOptions {
  /** Unix socket of the engine. */
  socketPath?: string;
  /** `unix:///path`, `tcp://host:port` or `http://host:port` (no TLS). */
  host?: string;
  /** Where DOCKER_HOST is read when neither option is given; default process.env. */
  env?: Record<string, string | undefined>;
  /** Receives a debug line before and after every engine call. */
  log?: EngineLog;
}

type Endpoint = EngineEndpoint;

const DEFAULT_SOCKET = '/var/run/docker.sock';

function parseHost(host: string): Endpoint {
  if (host.startsWith('unix://')) return { kind: 'socket', socketPath: host.slice('unix://'.length) || DEFAULT_SOCKET };
  const withScheme = /^[a-z]+:\/\//i.test(host) ? host : `tcp://${host}`;
  let url: URL;
  try {
    url = new URL(withScheme);
  } catch {
    throw new SkiffError('ENGINE_UNREACHABLE', `cannot reach Docker at ${host}: not a unix:// or tcp:// address`);
  }
  const scheme = url.protocol.replace(/:$/, '');
  if (scheme !== 'tcp' && scheme !== 'http' && scheme !== 'https') {
    throw new SkiffError('ENGINE_UNREACHABLE', `cannot reach Docker at ${host}: unsupported scheme ${scheme}://`);
  }
  const protocol = scheme === 'https' ? 'https' : 'http';
  const port = url.port === '' ? (protocol === 'https' ? 2376 : 2375) : Number(url.port);
  return { kind: 'tcp', host: url.hostname, port, protocol };
}

function resolveEndpoint(options: DockerEngineOptions): Endpoint {
  if (options.socketPath !== undefined) return { kind: 'socket', socketPath: options.socketPath };
  if (options.host !== undefined) return parseHost(options.host);
  const fromEnv = (options.env ?? process.env)['DOCKER_HOST'];
  if (fromEnv !== undefined && fromEnv !== '') return parseHost(fromEnv);
  return { kind: 'socket', socketPath: DEFAULT_SOCKET };
}

function describeEndpoint(endpoint: Endpoint): string {
  return endpoint.kind === 'socket' ? endpoint.socketPath : `tcp://${endpoint.host}:${endpoint.port}`;
}

const UNREACHABLE_REASONS: Record<string, string> = {
  ECONNREFUSED: 'connection refused (is dockerd running?)',
  ENOENT: 'no such socket (is dockerd running?)',
  EACCES: 'permission denied',
  EPERM: 'permission denied',
  ENOTSOCK: 'not a socket',
  ECONNRESET: 'connection reset',
  EPIPE: 'connection closed',
  ETIMEDOUT: 'connection timed out',
  EHOSTUNREACH: 'host unreachable',
  ENETUNREACH: 'network unreachable',
  ENOTFOUND: 'host not found',
  EAI_AGAIN: 'host name lookup failed',
};

type Query = Record<string, string | number | boolean | undefined>;

interface RequestSpec {
  op: string;
  method: 'GET' | 'POST' | 'DELETE';
  path: string;
  query?: Query;
  body?: unknown;
  file?: NodeJS.ReadableStream;
  signal?: AbortSignal | undefined;
  /** Ids for the debug log. */
  ids?: Record<string, unknown>;
}

function cleanQuery(query: Query | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [key, value] of Object.entries(query ?? {})) {
    if (value === undefined) continue;
    out[key] = typeof value === 'boolean' ? (value ? '1' : '0') : String(value);
  }
  return out;
}

async function readAll(stream: NodeJS.ReadableStream): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream as AsyncIterable<Buffer | string>) {
    chunks.push(typeof chunk === 'string' ? Buffer.from(chunk) : chunk);
  }
  return Buffer.concat(chunks);
}

function engineMessage(body: Buffer, status: number): string {
  const text = body.toString('utf8').trim();
  try {
    const parsed: unknown = JSON.parse(text);
    if (isRecord(parsed) && typeof parsed['message'] === 'string') return parsed['message'];
  } catch {
    // Not JSON: use the text itself.
  }
  return text.length > 0 ? text : `HTTP ${status}`;
}

// Lenient readers for engine data: anything unexpected becomes an empty value.
function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
function rec(value: unknown): Record<string, unknown> {
  return isRecord(value) ? value : {};
}
function str(value: unknown): string {
  return typeof value === 'string' ? value : '';
}
function optStr(value: unknown): string | undefined {
  return typeof value === 'string' && value !== '' ? value : undefined;
}
function num(value: unknown): number {
  return typeof value === 'number' && Number.isFinite(value) ? value : 0;
}
function bool(value: unknown): boolean {
  return value === true;
}
function strArr(value: unknown): string[] {
  return Array.isArray(value) ? value.filter((v): v is string => typeof v === 'string') : [];
}
function strRecord(value: unknown): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(rec(value))) if (typeof v === 'string') out[k] = v;
  return out;
}
/** The engine's zero time (`0001-01-01T00:00:00Z`) means "never". */
function time(value: unknown): string | undefined {
  const text = optStr(value);
  return text === undefined || text.startsWith('0001-01-01') ? undefined : text;
}

function parseImage(raw: unknown): ImageInfo {
  const image = rec(raw);
  const created = image['Created'];
  return {
    id: str(image['Id']),
    repoTags: strArr(image['RepoTags']).filter((t) => t !== '<none>:<none>'),
    repoDigests: strArr(image['RepoDigests']).filter((d) => d !== '<none>@<none>'),
    labels: strRecord(isRecord(image['Config']) ? image['Config']['Labels'] : image['Labels']),
    size: num(image['Size']),
    created:
      typeof created === 'number'
        ? new Date(created * 1000).toISOString()
        : typeof created === 'string'
          ? created
          : new Date(0).toISOString(),
  };
}

function parseContainerSummary(raw: unknown): ContainerSummary {
  const c = rec(raw);
  return {
    id: str(c['Id']),
    names: strArr(c['Names']).map((n) => n.replace(/^\//, '')),
    image: str(c['Image']),
    imageId: str(c['ImageID']),
    state: str(c['State']),
    labels: strRecord(c['Labels']),
  };
}

function parseContainer(raw: unknown): ContainerInfo {
  const c = rec(raw);
  const state = rec(c['State']);
  const config = rec(c['Config']);
  const host = rec(c['HostConfig']);
  const restart = rec(host['RestartPolicy']);
  const labels = strRecord(config['Labels']);
  return {
    id: str(c['Id']),
    name: str(c['Name']).replace(/^\//, ''),
    imageId: str(c['Image']),
    created: str(c['Created']),
    state: {
      status: str(state['Status']),
      running: bool(state['Running']),
      restarting: bool(state['Restarting']),
      paused: bool(state['Paused']),
      exitCode: num(state['ExitCode']),
      startedAt: time(state['StartedAt']),
      finishedAt: time(state['FinishedAt']),
      error: str(state['Error']),
      pid: num(state['Pid']),
      oomKilled: bool(state['OOMKilled']),
    },
    restartCount: num(c['RestartCount']),
    labels,
    config: {
      image: str(config['Image']),
      env: strArr(config['Env']),
      user: str(config['User']),
      tty: bool(config['Tty']),
      openStdin: bool(config['OpenStdin']),
      workingDir: str(config['WorkingDir']),
      entrypoint: strArr(config['Entrypoint']),
      cmd: strArr(config['Cmd']),
      hostname: str(config['Hostname']),
      stopSignal: optStr(config['StopSignal']),
      labels,
    },
    hostConfig: {
      binds: strArr(host['Binds']),
      privileged: bool(host['Privileged']),
      capAdd: strArr(host['CapAdd']),
      securityOpt: strArr(host['SecurityOpt']),
      networkMode: str(host['NetworkMode']),
      ipcMode: str(host['IpcMode']),
      pidMode: str(host['PidMode']),
      utsMode: str(host['UTSMode']),
      dns: strArr(host['Dns']),
      dnsSearch: strArr(host['DnsSearch']),
      extraHosts: strArr(host['ExtraHosts']),
      tmpfs: strRecord(host['Tmpfs']),
      restartPolicy: { name: str(restart['Name']), maximumRetryCount: num(restart['MaximumRetryCount']) },
      init: typeof host['Init'] === 'boolean' ? host['Init'] : undefined,
    },
  };
}

function parseEvent(raw: unknown): EngineEvent | undefined {
  const e = rec(raw);
  const actor = rec(e['Actor']);
  const action = str(e['Action']) || str(e['status']);
  if (action === '') return undefined;
  const attributes = strRecord(actor['Attributes']);
  const nanos = e['timeNano'];
  const seconds = e['time'];
  const ms = typeof nanos === 'number' ? Math.floor(nanos / 1e6) : typeof seconds === 'number' ? seconds * 1000 : Date.now();
  return {
    type: str(e['Type']) || 'container',
    action,
    id: str(actor['ID']) || str(e['id']),
    name: attributes['name'],
    attributes,
    time: new Date(ms),
  };
}

/** `since` in the engine's `seconds.nanoseconds` form. */
function engineTime(date: Date): string {
  const ms = date.getTime();
  const seconds = Math.floor(ms / 1000);
  return `${seconds}.${String((ms - seconds * 1000) * 1_000_000).padStart(9, '0')}`;
}

/** Image references keep their `/` and `:` in the path (the engine's router expects them raw). */
function imagePath(ref: string, suffix = ''): string {
  return `/images/${ref.replace(/[^A-Za-z0-9._:/@+-]/g, encodeURIComponent)}${suffix}`;
}

function cancelled(what: string, cause?: unknown): SkiffError {
  return new SkiffError('CANCELLED', `${what} was cancelled`, { cause });
}

function destroyStream(stream: NodeJS.ReadableStream): void {
  const maybe = stream as { destroy?: () => void };
  if (typeof maybe.destroy === 'function') maybe.destroy();
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Keeps the first `max` bytes of a stream of chunks. */
function createCappedBuffer(max: number): { push(data: Buffer): void; text(): string } {
  const chunks: Buffer[] = [];
  let size = 0;
  let truncated = false;
  return {
    push(data) {
      if (size >= max) {
        truncated = true;
        return;
      }
      const part = data.subarray(0, max - size);
      if (part.length < data.length) truncated = true;
      chunks.push(Buffer.from(part));
      size += part.length;
    },
    text() {
      return Buffer.concat(chunks).toString('utf8') + (truncated ? '\n[output truncated]' : '');
    },
  };
}

const EXEC_OUTPUT_LIMIT = 1024 * 1024;

/** Creates the Docker-backed Engine. Nothing connects until the first call. */
export function createDockerEngine(options: DockerEngineOptions = {}): Engine {
  const endpoint = resolveEndpoint(options);
  const where = describeEndpoint(endpoint);
  const log = options.log;
  function mapError(err: unknown, spec: Pick<RequestSpec, 'op' | 'signal'>): SkiffError {
    if (err instanceof SkiffError) return err;
    if (spec.signal?.aborted === true || (err instanceof Error && err.name === 'AbortError')) {
      return cancelled(`engine call ${spec.op}`, err);
    }
    const code = (err as NodeJS.ErrnoException | undefined)?.code;
    if (code !== undefined && code in UNREACHABLE_REASONS) {
      return new SkiffError('ENGINE_UNREACHABLE', `cannot reach Docker at ${where}: ${UNREACHABLE_REASONS[code]}`, {
        cause: err,
      });
    }
    return new SkiffError('ENGINE_ERROR', `${spec.op}: ${errorMessage(err)}`, { cause: err });
  }

  function dial(spec: RequestSpec): Promise<IncomingMessage> {
    return dialEngine(endpoint, {
      method: spec.method,
      path: spec.path,
      query: cleanQuery(spec.query),
      body: spec.body,
      ...(spec.file === undefined ? {} : { file: spec.file }),
      signal: spec.signal,
    });
  }

  /** Sends a request; resolves with the response once its status is a success. */
  async function send(spec: RequestSpec): Promise<IncomingMessage> {
    const started = Date.now();
    log?.debug({ op: spec.op, method: spec.method, path: spec.path, ...spec.ids }, 'Engine call');
    if (spec.signal?.aborted === true) throw cancelled(`engine call ${spec.op}`);
    let res: IncomingMessage;
    try {
      res = await dial(spec);
      if (spec.signal !== undefined) addAbortSignal(spec.signal, res);
    } catch (err) {
      const mapped = mapError(err, spec);
      log?.debug({ op: spec.op, ms: Date.now() - started, code: mapped.code, ...spec.ids }, 'Engine call failed');
      throw mapped;
    }
    const status = res.statusCode ?? 0;
    log?.debug({ op: spec.op, status, ms: Date.now() - started, ...spec.ids }, 'Engine call answered');
    if (status < 400) return res;
    let body: Buffer;
    try {
      body = await readAll(res);
    } catch (err) {
      throw mapError(err, spec);
    }
    const message = engineMessage(body, status);
    const code = status === 404 ? 'ENGINE_NOT_FOUND' : status === 409 ? 'ENGINE_CONFLICT' : 'ENGINE_ERROR';
    throw new SkiffError(code, message, { cause: { status, op: spec.op } });
  }

  async function sendJson(spec: RequestSpec): Promise<unknown> {
    const res = await send(spec);
    let body: Buffer;
    try {
      body = await readAll(res);
    } catch (err) {
      throw mapError(err, spec);
    }
    const text = body.toString('utf8').trim();
    if (text === '') return undefined;
    try {
      return JSON.parse(text) as unknown;
    } catch (cause) {
      throw new SkiffError('ENGINE_ERROR', `${spec.op}: the engine answered with invalid JSON`, { cause });
    }
  }

  async function sendNoContent(spec: RequestSpec): Promise<void> {
    const res = await send(spec);
    try {
      await readAll(res);
    } catch (err) {
      throw mapError(err, spec);
    }
  }

  /** Feeds a streamed JSON response to `onObject` until the engine ends it. */
  async function consumeJsonStream(res: IncomingMessage, spec: RequestSpec, onObject: (obj: unknown) => void): Promise<void> {
    const parser = createJsonLineParser(onObject);
    try {
      for await (const chunk of res as AsyncIterable<Buffer>) parser.push(chunk);
      parser.end();
    } catch (err) {
      throw mapError(err, spec);
    } finally {
      res.destroy();
    }
  }

  async function ping(opts: CallOptions = {}): Promise<EngineVersion> {
    const raw = rec(await sendJson({ op: 'ping', method: 'GET', path: '/version', signal: opts.signal }));
    const engine = (Array.isArray(raw['Components']) ? raw['Components'] : []).map(rec).find((component) => component['Name'] === 'Engine');
    return {
      version: str(raw['Version']),
      apiVersion: str(raw['ApiVersion']),
      experimental: raw['Experimental'] === true || rec(engine?.['Details'])['Experimental'] === 'true',
    };
  }

  async function inspectImage(ref: string, opts: CallOptions = {}): Promise<ImageInfo | undefined> {
    try {
      return parseImage(
        await sendJson({ op: 'inspectImage', method: 'GET', path: imagePath(ref, '/json'), signal: opts.signal, ids: { ref } }),
      );
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  }

  async function listImages(filter: ImageFilter = {}, opts: CallOptions = {}): Promise<ImageInfo[]> {
    const filters: Record<string, string[]> = {};
    if (filter.label !== undefined && filter.label.length > 0) filters['label'] = filter.label;
    if (filter.reference !== undefined) filters['reference'] = [filter.reference];
    const raw = await sendJson({
      op: 'listImages',
      method: 'GET',
      path: '/images/json',
      query: { filters: JSON.stringify(filters) },
      signal: opts.signal,
    });
    return (Array.isArray(raw) ? raw : []).map(parseImage);
  }

  async function pullImage(ref: string, opts: PullOptions = {}): Promise<ImageInfo> {
    const { repo, tag, digest } = splitRepoTag(ref);
    const spec: RequestSpec = {
      op: 'pullImage',
      method: 'POST',
      path: '/images/create',
      query: { fromImage: repo, tag: digest ?? tag },
      signal: opts.signal,
      ids: { ref },
    };
    let res: IncomingMessage;
    try {
      res = await send(spec);
    } catch (err) {
      if (isSkiffError(err, 'ENGINE_UNREACHABLE') || isSkiffError(err, 'CANCELLED')) throw err;
      throw new SkiffError('PULL_FAILED', `cannot pull ${ref}: ${errorMessage(err)}`, { cause: err });
    }
    const tracker = createPullProgressTracker();
    let failure: string | undefined;
    await consumeJsonStream(res, spec, (obj) => {
      const message = streamError(obj);
      if (message !== undefined) {
        failure ??= message;
        return;
      }
      const progress = tracker.push(obj);
      opts.onProgress?.(progress);
    });
    if (failure !== undefined) throw new SkiffError('PULL_FAILED', `cannot pull ${ref}: ${failure}`);
    const image = await inspectImage(ref, opts);
    if (image === undefined) {
      throw new SkiffError('PULL_FAILED', `cannot pull ${ref}: the engine reported success but has no such image`);
    }
    return image;
  }

  async function tagImage(sourceRef: string, targetRef: string, opts: CallOptions = {}): Promise<void> {
    const { repo, tag, digest } = splitRepoTag(targetRef);
    if (digest !== undefined) {
      throw new SkiffError('ENGINE_ERROR', `cannot tag ${sourceRef} as ${targetRef}: a tag cannot contain a digest`);
    }
    await sendNoContent({
      op: 'tagImage',
      method: 'POST',
      path: imagePath(sourceRef, '/tag'),
      query: { repo, tag },
      signal: opts.signal,
      ids: { sourceRef, targetRef },
    });
  }

  async function removeImage(ref: string, opts: CallOptions & { force?: boolean } = {}): Promise<void> {
    await sendNoContent({
      op: 'removeImage',
      method: 'DELETE',
      path: imagePath(ref),
      query: { force: opts.force === true },
      signal: opts.signal,
      ids: { ref },
    });
  }

  async function buildImage(opts: BuildOptions): Promise<ImageInfo> {
    const { context, tag } = opts;
    // A failing context (unreadable file…) must not be mistaken for a failing engine.
    let contextError: unknown;
    context.on('error', (err: unknown) => {
      contextError ??= err;
    });
    function contextFailure(): SkiffError | undefined {
      if (contextError === undefined) return undefined;
      if (contextError instanceof SkiffError) return contextError;
      return new SkiffError('SOURCE_INVALID', `cannot read the build context of ${tag}: ${errorMessage(contextError)}`, {
        cause: contextError,
      });
    }
    try {
      if (opts.squash === true) {
        const version = await ping({ ...(opts.signal === undefined ? {} : { signal: opts.signal }) });
        if (!version.experimental) {
          throw new SkiffError(
            'ENGINE_NOT_SUPPORTED',
            `cannot build ${tag} with squash: the Docker engine (${version.version}) does not run with experimental features enabled`,
          );
        }
      }
      const preserve = opts.preserveIntermediate === true;
      const spec: RequestSpec = {
        op: 'buildImage',
        method: 'POST',
        path: '/build',
        query: {
          t: tag,
          dockerfile: opts.dockerfile,
          // A null value is how the API passes an argument without a value.
          buildargs: opts.buildArgs === undefined ? undefined : JSON.stringify(opts.buildArgs),
          labels: opts.labels === undefined ? undefined : JSON.stringify(opts.labels),
          squash: opts.squash === true ? true : undefined,
          rm: !preserve,
          forcerm: !preserve,
        },
        file: context,
        signal: opts.signal,
        ids: { tag },
      };
      let res: IncomingMessage;
      try {
        res = await send(spec);
      } catch (err) {
        const failure = contextFailure();
        if (failure !== undefined) throw failure;
        if (isSkiffError(err, 'ENGINE_UNREACHABLE') || isSkiffError(err, 'CANCELLED')) throw err;
        if (opts.squash === true && /experimental/i.test(errorMessage(err))) {
          throw new SkiffError('ENGINE_NOT_SUPPORTED', `cannot build ${tag} with squash: ${errorMessage(err)}`, { cause: err });
        }
        if (isSkiffError(err) && err.code.startsWith('ENGINE_')) {
          throw new SkiffError('BUILD_FAILED', `build of ${tag} failed: ${errorMessage(err)}`, { cause: err });
        }
        throw err;
      }
      const parser = createBuildOutputParser((event) => opts.onProgress?.(event));
      try {
        await consumeJsonStream(res, spec, (obj) => parser.push(obj));
      } catch (err) {
        throw contextFailure() ?? err;
      }
      parser.end();
      if (parser.error !== undefined) {
        const tail = parser.tail;
        const output = tail.length === 0 ? '' : `\nlast output:\n${tail.map((line) => `  ${line}`).join('\n')}`;
        throw new SkiffError('BUILD_FAILED', `build of ${tag} failed: ${parser.error}${output}`);
      }
      const image = await inspectImage(tag, opts.signal === undefined ? {} : { signal: opts.signal });
      if (image === undefined) {
        throw new SkiffError('BUILD_FAILED', `build of ${tag} finished but the engine has no image ${tag}`);
      }
      return image;
    } finally {
      // Stop packing the context if the engine answered before reading all of it.
      destroyStream(context);
    }
  }

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

  function containerPath(id: string, suffix = ''): string {
    return `/containers/${encodeURIComponent(id)}${suffix}`;
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

  async function dataRoot(opts: CallOptions = {}): Promise<string | undefined> {
    const info = rec(await sendJson({ op: 'info', method: 'GET', path: '/info', signal: opts.signal }));
    return optStr(info['DockerRootDir']);
  }

  async function commitContainer(id: string, opts: CommitOptions): Promise<string> {
    const raw = rec(
      await sendJson({
        op: 'commitContainer',
        method: 'POST',
        path: '/commit',
        query: { container: id, repo: opts.repo, tag: opts.tag, comment: opts.comment, pause: opts.pause ?? true },
        // The engine merges this config with the container's; only labels are changed.
        body: opts.labels === undefined ? undefined : { Labels: opts.labels },
        signal: opts.signal,
        ids: { container: id, repo: opts.repo, tag: opts.tag },
      }),
    );
    const committed = str(raw['Id']);
    if (opts.configFrom === undefined) return committed;
    return replaceImageConfig(committed, { ...opts, configFrom: opts.configFrom });
  }

  /** Re-tags `repo:tag` as the committed layers with the config of `opts.configFrom` (see image-config.ts). */
  async function replaceImageConfig(committed: string, opts: CommitOptions & { configFrom: string }): Promise<string> {
    const call = opts.signal === undefined ? {} : { signal: opts.signal };
    const inspectRaw = async (ref: string) =>
      rec(await sendJson({ op: 'inspectImage', method: 'GET', path: imagePath(ref, '/json'), ...call, ids: { ref } })) as RawImageInspect;
    const { archive, id } = await configOnlyArchive({
      target: `${opts.repo}:${opts.tag}`,
      layersOf: await inspectRaw(committed),
      configOf: await inspectRaw(opts.configFrom),
      ...(opts.labels ? { labels: opts.labels } : {}),
      ...(opts.comment ? { comment: opts.comment } : {}),
    });
    const spec: RequestSpec = {
      op: 'loadImage',
      method: 'POST',
      path: '/images/load',
      query: { quiet: true },
      file: Readable.from([archive]),
      ...call,
      ids: { target: `${opts.repo}:${opts.tag}` },
    };
    let failure: string | undefined;
    await consumeJsonStream(await send(spec), spec, (obj) => {
      failure ??= streamError(obj);
    });
    if (failure !== undefined)
      throw new SkiffError('ENGINE_ERROR', `cannot give snapshot ${opts.repo}:${opts.tag} the config of ${opts.configFrom}: ${failure}`);
    // The commit itself is now untagged; its layers live on in the loaded image.
    await sendNoContent({ op: 'removeImage', method: 'DELETE', path: imagePath(committed), ...call, ids: { ref: committed } }).catch(
      () => undefined,
    );
    return id;
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
    const res = await send(spec);
    let body: Buffer;
    try {
      body = await readAll(res);
    } catch (err) {
      throw mapError(err, spec);
    }
    // With a TTY the engine sends the raw terminal bytes; without, multiplexed frames.
    return (info.config.tty ? body : demuxStdio(body).combined).toString('utf8');
  }

  async function execRun(id: string, cmd: string[], opts: ExecOptions = {}): Promise<ExecResult> {
    const what = `exec ${JSON.stringify(cmd)} in ${id}`;
    const timeout = opts.timeoutMs === undefined ? undefined : AbortSignal.timeout(opts.timeoutMs);
    const signals = [opts.signal, timeout].filter((s): s is AbortSignal => s !== undefined);
    const signal = signals.length === 0 ? undefined : signals.length === 1 ? signals[0] : AbortSignal.any(signals);
    function timedOut(): boolean {
      return timeout?.aborted === true && opts.signal?.aborted !== true;
    }
    function timeoutError(): SkiffError {
      return new SkiffError('TIMEOUT', `${what} did not finish within ${opts.timeoutMs} ms (it may still be running)`);
    }

    try {
      const created = rec(
        await sendJson({
          op: 'execCreate',
          method: 'POST',
          path: containerPath(id, '/exec'),
          body: {
            AttachStdin: false,
            AttachStdout: true,
            AttachStderr: true,
            Tty: false,
            Cmd: cmd,
            ...(opts.user === undefined ? {} : { User: opts.user }),
            ...(opts.env === undefined ? {} : { Env: opts.env }),
          },
          signal,
          ids: { container: id },
        }),
      );
      const execId = str(created['Id']);
      const spec: RequestSpec = {
        op: 'execStart',
        method: 'POST',
        path: `/exec/${execId}/start`,
        body: { Detach: false, Tty: false },
        signal,
        ids: { container: id, exec: execId },
      };
      const res = await send(spec);
      const stdout = createCappedBuffer(EXEC_OUTPUT_LIMIT);
      const stderr = createCappedBuffer(EXEC_OUTPUT_LIMIT);
      const demuxer = createStdioDemuxer((stream, data) => (stream === 'stderr' ? stderr : stdout).push(data));
      try {
        for await (const chunk of res as AsyncIterable<Buffer>) demuxer.push(chunk);
        demuxer.end();
      } catch (err) {
        throw mapError(err, spec);
      } finally {
        res.destroy();
      }

      // The output ends when the process exits; the exit code may lag behind by a moment.
      for (let attempt = 0; ; attempt++) {
        const inspected = rec(
          await sendJson({ op: 'execInspect', method: 'GET', path: `/exec/${execId}/json`, signal, ids: { exec: execId } }),
        );
        if (inspected['Running'] !== true || attempt >= 40) {
          return { exitCode: num(inspected['ExitCode']), stdout: stdout.text(), stderr: stderr.text() };
        }
        await sleep(50);
      }
    } catch (err) {
      if (timedOut()) throw timeoutError();
      if (isSkiffError(err, 'CANCELLED')) throw cancelled(what, err);
      throw err;
    }
  }

  async function* events(opts: EventsOptions = {}): AsyncGenerator<EngineEvent> {
    const spec: RequestSpec = {
      op: 'events',
      method: 'GET',
      path: '/events',
      query: {
        since: opts.since === undefined ? undefined : engineTime(opts.since),
        filters: opts.filters === undefined ? undefined : JSON.stringify(opts.filters),
      },
      signal: opts.signal,
    };
    let res: IncomingMessage | undefined;
    const queue: EngineEvent[] = [];
    const parser = createJsonLineParser((obj) => {
      const event = parseEvent(obj);
      if (event !== undefined) queue.push(event);
    });
    try {
      res = await send(spec);
      for await (const chunk of res as AsyncIterable<Buffer>) {
        parser.push(chunk);
        while (queue.length > 0) yield queue.shift() as EngineEvent;
      }
    } catch (err) {
      if (opts.signal?.aborted === true) return;
      throw mapError(err, spec);
    } finally {
      res?.destroy();
    }
  }

  return {
    ping,
    inspectImage,
    listImages,
    pullImage,
    tagImage,
    removeImage,
    buildImage,
    listContainers,
    inspectContainer,
    createContainer,
    startContainer,
    stopContainer,
    removeContainer,
    renameContainer,
    commitContainer,
    dataRoot,
    unpauseContainer,
    containerLogs,
    execRun,
    events,
    execSession,
    execControl,
  };

  function execControl(execId: string): ExecControl {
    return {
      execId,
      async resize(cols, rows) {
        await sendNoContent({
          op: 'execResize',
          method: 'POST',
          path: `/exec/${encodeURIComponent(execId)}/resize`,
          query: { h: rows, w: cols },
          ids: { exec: execId },
        });
      },
      async inspect() {
        const raw = rec(
          await sendJson({ op: 'execInspect', method: 'GET', path: `/exec/${encodeURIComponent(execId)}/json`, ids: { exec: execId } }),
        );
        const running = raw['Running'] === true;
        return { running, exitCode: running ? null : num(raw['ExitCode']), pid: num(raw['Pid']), containerId: str(raw['ContainerID']) };
      },
    };
  }

  async function execSession(id: string, cmd: string[], opts: ExecSessionOptions): Promise<ExecSession> {
    const created = rec(
      await sendJson({
        op: 'execCreate',
        method: 'POST',
        path: containerPath(id, '/exec'),
        body: {
          AttachStdin: true,
          AttachStdout: true,
          AttachStderr: true,
          Tty: opts.tty,
          Cmd: cmd,
          ...(opts.user === undefined ? {} : { User: opts.user }),
          ...(opts.env === undefined ? {} : { Env: opts.env }),
          ...(opts.workingDir === undefined ? {} : { WorkingDir: opts.workingDir }),
        },
        signal: opts.signal,
        ids: { container: id },
      }),
    );
    const execId = str(created['Id']);
    const stream = await upgrade(`/exec/${execId}/start`, { Detach: false, Tty: opts.tty }, { container: id, exec: execId }, opts.signal);
    const session: ExecSession = { ...execControl(execId), stream };
    if (opts.tty && opts.cols && opts.rows) await session.resize(opts.cols, opts.rows).catch(() => undefined);
    return session;
  }

  /**
   * POSTs with `Upgrade: tcp` on a connection of its own and hands back the raw socket once the
   * engine answers 101. A plain socket (not the modem's HTTP client) gives full control of
   * half-close and backpressure, which long interactive sessions and bulk transfers need.
   */
  function upgrade(path: string, body: object, ids: Record<string, string>, signal?: AbortSignal): Promise<Duplex> {
    const payload = Buffer.from(JSON.stringify(body));
    const spec = { op: 'execStart', signal };
    log?.debug({ op: 'execStart', path, ...ids }, 'Engine call');
    return new Promise((resolvePromise, reject) => {
      const socket = endpoint.kind === 'socket' ? netConnect(endpoint.socketPath) : netConnect(endpoint.port, endpoint.host);
      const onAbort = () => socket.destroy(cancelled('exec start'));
      signal?.addEventListener('abort', onAbort, { once: true });
      let head = Buffer.alloc(0);
      const fail = (err: unknown) => {
        signal?.removeEventListener('abort', onAbort);
        socket.destroy();
        reject(err instanceof SkiffError ? err : mapError(err, spec));
      };
      socket.once('error', fail);
      socket.once('connect', () => {
        socket.write(
          `POST ${path} HTTP/1.1\r\nHost: docker\r\nUser-Agent: skiff-core\r\nContent-Type: application/json\r\n` +
            `Connection: Upgrade\r\nUpgrade: tcp\r\nContent-Length: ${payload.length}\r\n\r\n`,
        );
        socket.write(payload);
      });
      const onData = (chunk: Buffer) => {
        head = Buffer.concat([head, chunk]);
        const end = head.indexOf('\r\n\r\n');
        if (end < 0) {
          if (head.length > 64 * 1024) fail(new SkiffError('ENGINE_ERROR', 'exec start: no response header from the engine'));
          return;
        }
        socket.off('data', onData);
        const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(head.subarray(0, end).toString('latin1'))?.[1] ?? 0);
        const rest = head.subarray(end + 4);
        if (status === 101 || status === 200) {
          signal?.removeEventListener('abort', onAbort);
          socket.off('error', fail);
          // Unread until its user reads it: a session may hand it to its client untouched.
          stopReading(socket);
          if (rest.length > 0) socket.unshift(rest);
          log?.debug({ op: 'execStart', status, ...ids }, 'Engine call answered');
          resolvePromise(socket);
          return;
        }
        // An error answer: collect the body (the engine closes the connection after it).
        const chunks: Buffer[] = [rest];
        socket.on('data', (c: Buffer) => chunks.push(c));
        socket.once('end', () => {
          const message = engineMessage(Buffer.concat(chunks), status);
          const code = status === 404 ? 'ENGINE_NOT_FOUND' : status === 409 ? 'ENGINE_CONFLICT' : 'ENGINE_ERROR';
          fail(new SkiffError(code, message, { cause: { status, op: 'execStart' } }));
        });
      };
      socket.on('data', onData);
    });
  }
}
