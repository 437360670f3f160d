// Build sources end to end: a git repository cloned with the real git, a .tar.gz served over
// HTTP and fetched with Node's fetch, each packed and built by the real engine.
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createServer } from 'node:http';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdir, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { gzipSync } from 'node:zlib';
import * as tar from 'tar-stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { packBuildContext } from '../../src/engine/build-context.js';
import { prepareBuildSource } from '../../src/engine/build-source.js';
import { createDockerEngine } from '../../src/engine/docker-engine.js';
import { BUSYBOX_IMAGE, cleanupByPrefix, integrationSkipReason } from './helpers/engine.js';
import { rejection } from '../support/rejection.js';

const run = promisify(execFile);

async function tarGz(files: Record<string, string>): Promise<Buffer> {
  const pack = tar.pack();
  const chunks: Buffer[] = [];
  const done = (async () => {
    for await (const chunk of pack as AsyncIterable<Buffer>) chunks.push(chunk);
  })();
  for (const [name, content] of Object.entries(files)) {
    await new Promise<void>((resolve, reject) => {
      pack.entry({ name, mode: 0o644 }, content, (err) => (err ? reject(err) : resolve()));
    });
  }
  pack.finalize();
  await done;
  return gzipSync(Buffer.concat(chunks));
}

describe.skipIf(integrationSkipReason())('engine/build-source with git, HTTP and the real engine', () => {
  const prefix = `skt-eng-${randomBytes(3).toString('hex')}`;
  const engine = createDockerEngine();
  let work: string;
  let workDir: string;
  let server: Server;
  let baseUrl: string;
  const served = new Map<string, Buffer>();

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), `${prefix}-`));
    workDir = join(work, 'work');
    server = createServer((req, res) => {
      const body = served.get(req.url ?? '');
      if (body === undefined) {
        res.writeHead(404).end('not here');
        return;
      }
      res.writeHead(200, { 'content-type': 'application/gzip' }).end(body);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });

  afterAll(async () => {
    await new Promise((resolve) => server?.close(resolve));
    await cleanupByPrefix(prefix);
    if (work !== undefined) await rm(work, { recursive: true, force: true });
  });

  it('clones a git repository shallowly and builds from a sub-directory', async () => {
    const src = join(work, 'src');
    await mkdir(join(src, 'image'), { recursive: true });
    await writeFile(join(src, 'image', 'Dockerfile'), `FROM ${BUSYBOX_IMAGE}\nCOPY hello /hello\n`);
    await writeFile(join(src, 'image', 'hello'), `hello from git ${prefix}\n`);
    const git = (...args: string[]) =>
      run('git', ['-c', 'user.name=t', '-c', 'user.email=t@example.invalid', '-c', 'init.defaultBranch=main', ...args], {
        cwd: src,
      });
    await git('init', '-q');
    await git('add', '.');
    await git('commit', '-q', '-m', 'one');
    await git('tag', 'v1');
    await writeFile(join(src, 'image', 'hello'), `hello again ${prefix}\n`);
    await git('commit', '-q', '-am', 'two');
    const bare = join(work, 'repo.git');
    await run('git', ['clone', '-q', '--bare', src, bare]);

    const prepared = await prepareBuildSource(`file://${bare}`, { workDir });
    try {
      const { stdout } = await run('git', ['-C', prepared.dir, 'rev-list', '--count', 'HEAD']);
      expect(stdout.trim()).toBe('1');
      const image = await engine.buildImage({
        context: await packBuildContext(join(prepared.dir, 'image')),
        tag: `${prefix}/from-git:1`,
      });
      expect(image.repoTags).toEqual([`${prefix}/from-git:1`]);
    } finally {
      await prepared.cleanup();
    }
    expect(await readdir(workDir)).toEqual([]);

    const tagged = await prepareBuildSource(`file://${bare}#v1`, { workDir });
    try {
      expect(await readFile(join(tagged.dir, 'image', 'hello'), 'utf8')).toBe(`hello from git ${prefix}\n`);
    } finally {
      await tagged.cleanup();
    }
  });

  it('reports a failing clone as BUILD_FAILED with git’s message and leaves nothing behind', async () => {
    const err = await rejection(prepareBuildSource(join(work, 'missing.git'), { workDir }));
    expect(err.code).toBe('BUILD_FAILED');
    expect(err.message).toContain('git clone');
    expect(err.message).toMatch(/does not exist|not a git repository|not found/);
    expect(await readdir(workDir)).toEqual([]);
  });

  it('downloads a .tar.gz over HTTP, unpacks it and builds it', async () => {
    served.set('/ctx.tar.gz', await tarGz({ Dockerfile: `FROM ${BUSYBOX_IMAGE}\nCOPY f /f\n`, f: 'from http\n' }));
    const prepared = await prepareBuildSource(`${baseUrl}/ctx.tar.gz`, { workDir });
    try {
      const image = await engine.buildImage({ context: await packBuildContext(prepared.dir), tag: `${prefix}/from-http:1` });
      expect(image.repoTags).toEqual([`${prefix}/from-http:1`]);
    } finally {
      await prepared.cleanup();
    }
  });

  it('reports a missing URL as BUILD_FAILED', async () => {
    const err = await rejection(prepareBuildSource(`${baseUrl}/nope.tar.gz`, { workDir }));
    expect(err.code).toBe('BUILD_FAILED');
    expect(err.message).toContain('HTTP 404');
  });

  it('cancels a download', async () => {
    const err = await rejection(prepareBuildSource(`${baseUrl}/ctx.tar.gz`, { workDir, signal: AbortSignal.abort() }));
    expect(err.code).toBe('CANCELLED');
    expect(await readdir(workDir)).toEqual([]);
  });
});
