// The Docker engine adapter against a scripted HTTP server on a unix socket, for what the real
// engine cannot be made to do on demand: errors in the middle of a 200 stream, an experimental
// engine refusing squash, a connection cut mid-stream, objects split across TCP chunks. The
// behaviour against the real engine is covered by test/integration/engine-api.test.ts.
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { SkiffError } from '../../../src/errors.js';
import { createDockerEngine } from '../../../src/engine/docker-engine.js';
import type { EngineEvent, PullProgress } from '../../../src/engine/engine.js';
import { rejection } from '../../support/rejection.js';

type Handler = (req: IncomingMessage, res: ServerResponse, url: URL) => void | Promise<void>;

let dir: string;
let socketPath: string;
let server: Server;
let handler: Handler;
let requests: URL[];

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'skt-eng-fake-'));
  socketPath = join(dir, 'docker.sock');
  requests = [];
  handler = (_req, res) => {
    res.writeHead(500).end('{"message":"no handler"}');
  };
  server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://engine');
    requests.push(url);
    // Drain the body (a build context) before answering, as the engine does.
    req.resume();
    req.on('end', () => void handler(req, res, url));
  });
  await new Promise<void>((resolve) => server.listen(socketPath, resolve));
});

afterEach(async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
  await rm(dir, { recursive: true, force: true });
});

function json(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
}

/** Writes `text` in small pieces with pauses, so objects arrive split across reads. */
async function trickle(res: ServerResponse, text: string, piece = 7): Promise<void> {
  for (let i = 0; i < text.length; i += piece) {
    res.write(text.slice(i, i + piece));
    await new Promise((r) => setTimeout(r, 1));
  }
}

const IMAGE = { Id: 'sha256:abc', RepoTags: ['x:1'], RepoDigests: [], Config: { Labels: null }, Created: '2024-01-01T00:00:00Z' };

describe('engine/docker-engine (scripted engine)', () => {
  it.each([
    [404, 'ENGINE_NOT_FOUND', 'No such container: x'],
    [409, 'ENGINE_CONFLICT', 'Conflict. The container name "/x" is already in use'],
    [500, 'ENGINE_ERROR', 'OCI runtime create failed: runc create failed: unable to apply caps: operation not permitted'],
    [400, 'ENGINE_ERROR', 'invalid reference format'],
  ])('maps HTTP %i to %s keeping the engine message', async (status, code, message) => {
    handler = (_req, res) => json(res, status, { message });
    const err = await rejection(createDockerEngine({ socketPath }).startContainer('x'));
    expect(err.code).toBe(code);
    expect(err.message).toBe(message);
  });

  it('treats 304 (already started / already stopped) as success', async () => {
    handler = (_req, res) => {
      res.writeHead(304).end();
    };
    const engine = createDockerEngine({ socketPath });
    await engine.startContainer('x');
    await engine.stopContainer('x', { timeoutSec: 1 });
    expect(requests.map((u) => `${u.pathname}${u.search}`)).toEqual(['/containers/x/start', '/containers/x/stop?t=1']);
  });

  it('brackets calls with debug lines', async () => {
    handler = (_req, res) => json(res, 200, { Version: '1', ApiVersion: '1.41' });
    const lines: [object, string][] = [];
    await createDockerEngine({ socketPath, log: { debug: (obj, msg) => lines.push([obj, msg]) } }).ping();
    expect(lines).toEqual([
      [expect.objectContaining({ op: 'ping', path: '/version' }), 'Engine call'],
      [expect.objectContaining({ op: 'ping', status: 200 }), 'Engine call answered'],
    ]);
  });

  it('reads experimental and the platform from the version answer', async () => {
    handler = (_req, res) =>
      json(res, 200, {
        Version: '24.0.0',
        ApiVersion: '1.43',
        Os: 'linux',
        Arch: 'arm64',
        Components: [{ Name: 'Engine', Details: { Experimental: 'true' } }],
      });
    expect(await createDockerEngine({ socketPath }).ping()).toEqual({
      version: '24.0.0',
      apiVersion: '1.43',
      experimental: true,
      os: 'linux',
      arch: 'arm64',
    });
  });

  describe('pullImage', () => {
    it.each([
      ['127.0.0.1:5000/a/b:1', '127.0.0.1:5000/a/b', '1'],
      ['ubuntu', 'ubuntu', 'latest'],
      [
        'skiffos/x@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef',
        'skiffos/x',
        'sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef',
      ],
    ])('pulls %s as fromImage=%s tag=%s', async (ref, fromImage, tag) => {
      handler = (_req, res, url) => {
        if (url.pathname === '/images/create') res.writeHead(200).end('{"status":"Status: done"}\r\n');
        else json(res, 200, IMAGE);
      };
      await createDockerEngine({ socketPath }).pullImage(ref);
      const create = requests.find((u) => u.pathname === '/images/create');
      expect(create?.searchParams.get('fromImage')).toBe(fromImage);
      expect(create?.searchParams.get('tag')).toBe(tag);
      expect(requests.at(-1)?.pathname).toBe(`/images/${ref}/json`);
    });

    it('turns an error inside the 200 stream into PULL_FAILED, after reporting progress', async () => {
      handler = async (_req, res) => {
        res.writeHead(200, { 'content-type': 'application/json' });
        await trickle(
          res,
          [
            '{"status":"Pulling fs layer","progressDetail":{},"id":"l1"}',
            '{"status":"Downloading","progressDetail":{"current":10,"total":100},"id":"l1"}',
            '{"errorDetail":{"message":"unexpected EOF"},"error":"unexpected EOF"}',
            '',
          ].join('\r\n'),
        );
        res.end();
      };
      const seen: PullProgress[] = [];
      const err = await rejection(createDockerEngine({ socketPath }).pullImage('x:1', { onProgress: (p) => seen.push(p) }));
      expect(err.code).toBe('PULL_FAILED');
      expect(err.message).toBe('cannot pull x:1: unexpected EOF');
      expect(seen.at(-1)).toMatchObject({ current: 10, total: 100 });
    });

    it('reports a pull the engine refused before streaming as PULL_FAILED with its message', async () => {
      handler = (_req, res) => json(res, 404, { message: 'manifest for x:1 not found: manifest unknown' });
      const err = await rejection(createDockerEngine({ socketPath }).pullImage('x:1'));
      expect(err.code).toBe('PULL_FAILED');
      expect(err.message).toBe('cannot pull x:1: manifest for x:1 not found: manifest unknown');
    });

    it('confirms the image after the stream, PULL_FAILED when it is missing', async () => {
      handler = (_req, res, url) => {
        if (url.pathname === '/images/create') res.writeHead(200).end('{"status":"Status: done"}\r\n');
        else json(res, 404, { message: 'No such image: x:1' });
      };
      const err = await rejection(createDockerEngine({ socketPath }).pullImage('x:1'));
      expect(err.code).toBe('PULL_FAILED');
      expect(err.message).toContain('has no such image');
    });

    it('reports a connection cut mid-stream as ENGINE_UNREACHABLE', async () => {
      handler = (req, res) => {
        res.writeHead(200);
        res.write('{"status":"Pulling fs layer","progressDetail":{},"id":"l1"}\r\n');
        setTimeout(() => req.socket.destroy(), 20);
      };
      const err = await rejection(createDockerEngine({ socketPath }).pullImage('x:1'));
      expect(err.code).toBe('ENGINE_UNREACHABLE');
      expect(err.message).toContain(`cannot reach Docker at ${socketPath}`);
    });

    it('is CANCELLED when the signal aborts mid-stream', async () => {
      handler = (_req, res) => {
        res.writeHead(200);
        res.write('{"status":"Pulling fs layer","progressDetail":{},"id":"l1"}\r\n');
      };
      const controller = new AbortController();
      const err = await rejection(
        createDockerEngine({ socketPath }).pullImage('x:1', {
          signal: controller.signal,
          onProgress: () => controller.abort(),
        }),
      );
      expect(err.code).toBe('CANCELLED');
    });
  });

  describe('buildImage', () => {
    it('sends build args as JSON with null for "no value", labels, and rm/forcerm', async () => {
      handler = (_req, res, url) => {
        if (url.pathname === '/build') res.writeHead(200).end('{"stream":"Successfully built abc\\n"}\r\n');
        else json(res, 200, IMAGE);
      };
      const engine = createDockerEngine({ socketPath });
      await engine.buildImage({
        context: Readable.from([Buffer.alloc(1024)]),
        tag: 'x:1',
        dockerfile: 'sub/Dockerfile',
        buildArgs: { A: 'a', B: null },
        labels: { l: 'v' },
      });
      await engine.buildImage({ context: Readable.from([Buffer.alloc(1024)]), tag: 'x:1', preserveIntermediate: true });
      const [first, second] = requests.filter((u) => u.pathname === '/build');
      expect(Object.fromEntries(first?.searchParams ?? [])).toEqual({
        t: 'x:1',
        dockerfile: 'sub/Dockerfile',
        buildargs: '{"A":"a","B":null}',
        labels: '{"l":"v"}',
        rm: '1',
        forcerm: '1',
      });
      expect(Object.fromEntries(second?.searchParams ?? [])).toEqual({ t: 'x:1', rm: '0', forcerm: '0' });
    });

    it('maps the engine refusing squash to ENGINE_NOT_SUPPORTED even when ping says experimental', async () => {
      handler = (_req, res, url) => {
        if (url.pathname === '/version') json(res, 200, { Version: '1', ApiVersion: '1.41', Experimental: true });
        else json(res, 400, { message: 'squash is only supported with experimental mode' });
      };
      const err = await rejection(
        createDockerEngine({ socketPath }).buildImage({ context: Readable.from([Buffer.alloc(10)]), tag: 'x:1', squash: true }),
      );
      expect(err.code).toBe('ENGINE_NOT_SUPPORTED');
      expect(err.message).toContain('squash is only supported with experimental mode');
    });

    it('reports a context that fails to read as SOURCE_INVALID, not as an engine problem', async () => {
      handler = (_req, res) => json(res, 200, IMAGE);
      const context = new Readable({
        read() {
          this.destroy(Object.assign(new Error('EACCES: permission denied, open secret'), { code: 'EACCES' }));
        },
      });
      const err = await rejection(createDockerEngine({ socketPath }).buildImage({ context, tag: 'x:1' }));
      expect(err.code).toBe('SOURCE_INVALID');
      expect(err.message).toContain('permission denied');
    });
  });

  describe('events', () => {
    it('parses events split across chunks and ends with the stream', async () => {
      handler = async (_req, res) => {
        res.writeHead(200);
        await trickle(
          res,
          [
            '{"status":"create","id":"c1","from":"img","Type":"container","Action":"create","Actor":{"ID":"c1","Attributes":{"image":"img","name":"one"}},"scope":"local","time":1700000000,"timeNano":1700000000123456789}',
            '{"Type":"image","Action":"tag","Actor":{"ID":"sha256:abc","Attributes":{"name":"x:1"}},"time":1700000001}',
            '',
          ].join('\n'),
          11,
        );
        res.end();
      };
      const events: EngineEvent[] = [];
      for await (const event of createDockerEngine({ socketPath }).events({
        since: new Date(1_700_000_000_500),
        filters: { type: ['container', 'image'] },
      })) {
        events.push(event);
      }
      expect(events).toEqual([
        {
          type: 'container',
          action: 'create',
          id: 'c1',
          name: 'one',
          attributes: { image: 'img', name: 'one' },
          time: new Date(1_700_000_000_123),
        },
        { type: 'image', action: 'tag', id: 'sha256:abc', name: 'x:1', attributes: { name: 'x:1' }, time: new Date(1_700_000_001_000) },
      ]);
      expect(requests[0]?.searchParams.get('since')).toBe('1700000000.500000000');
      expect(requests[0]?.searchParams.get('filters')).toBe('{"type":["container","image"]}');
    });

    it('throws ENGINE_UNREACHABLE when the engine cuts the stream', async () => {
      handler = (req, res) => {
        res.writeHead(200);
        res.write('{"Type":"container","Action":"start","Actor":{"ID":"c1","Attributes":{}},"time":1}\n');
        setTimeout(() => req.socket.destroy(), 20);
      };
      const events: EngineEvent[] = [];
      let caught: unknown;
      try {
        for await (const event of createDockerEngine({ socketPath }).events()) events.push(event);
      } catch (err) {
        caught = err;
      }
      expect(events.map((e) => e.action)).toEqual(['start']);
      expect(caught).toBeInstanceOf(SkiffError);
      expect((caught as SkiffError).code).toBe('ENGINE_UNREACHABLE');
    });
  });

  it('honours DOCKER_HOST when no option is given', async () => {
    handler = (_req, res) => json(res, 200, { Version: 'via-env', ApiVersion: '1.41' });
    const engine = createDockerEngine({ env: { DOCKER_HOST: `unix://${socketPath}` } });
    expect((await engine.ping()).version).toBe('via-env');
  });
});
