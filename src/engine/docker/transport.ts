// The Docker API's transport: where the engine is, one request with one error mapping (the HTTP
// status decides the code and the engine's own `message` is kept), JSON and streamed answers, and
// the upgrade that hands an exec's raw socket to a session.
import type { IncomingMessage } from 'node:http';
import { connect as netConnect } from 'node:net';
import { addAbortSignal, type Duplex } from 'node:stream';
import { SkiffError, errorMessage } from '../../errors.js';
import { dialEngine, type EngineEndpoint } from '../http-dial.js';
import { createJsonLineParser } from '../progress.js';
import { stopReading } from '../socket-reading.js';
import { isRecord } from './read.js';

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

export type Query = Record<string, string | number | boolean | undefined>;

export interface RequestSpec {
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

export async function readAll(stream: NodeJS.ReadableStream): Promise<Buffer> {
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

export function cancelled(what: string, cause?: unknown): SkiffError {
  return new SkiffError('CANCELLED', `${what} was cancelled`, { cause });
}

export interface Transport {
  /** The engine's address, for messages. */
  where: string;
  log: EngineLog | undefined;
  mapError(err: unknown, spec: Pick<RequestSpec, 'op' | 'signal'>): SkiffError;
  send(spec: RequestSpec): Promise<IncomingMessage>;
  sendJson(spec: RequestSpec): Promise<unknown>;
  sendNoContent(spec: RequestSpec): Promise<void>;
  /** The whole body of an answer `send` returned. */
  readBody(res: IncomingMessage, spec: RequestSpec): Promise<Buffer>;
  consumeJsonStream(res: IncomingMessage, spec: RequestSpec, onObject: (obj: unknown) => void): Promise<void>;
  upgrade(path: string, body: object, ids: Record<string, string>, signal?: AbortSignal): Promise<Duplex>;
}

/** The transport to the engine the options name. Nothing connects until the first call. */
export function createTransport(options: DockerEngineOptions = {}): Transport {
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

  async function readBody(res: IncomingMessage, spec: RequestSpec): Promise<Buffer> {
    try {
      return await readAll(res);
    } catch (err) {
      throw mapError(err, spec);
    }
  }

  return { where, log, mapError, send, sendJson, sendNoContent, readBody, consumeJsonStream, upgrade };

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
