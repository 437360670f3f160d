import { lstat, mkdir, mkdtemp, readFile, readdir, readlink, realpath, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { gzipSync } from 'node:zlib';
import * as tar from 'tar-stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { classifyBuildSource, extractTarGz, prepareBuildSource } from '../../../src/engine/build-source.js';
import type { BuildSourceKind } from '../../../src/engine/build-source.js';
import { rejection } from '../../support/rejection.js';

type EntryHeader = Parameters<tar.Pack['entry']>[0];
type Entry = EntryHeader & { content?: string };

/** Builds a .tar.gz in memory from entry headers (and file contents). */
async function archive(entries: Entry[]): Promise<Buffer> {
  const pack = tar.pack();
  const chunks: Buffer[] = [];
  const done = (async () => {
    for await (const chunk of pack as AsyncIterable<Buffer>) chunks.push(chunk);
  })();
  for (const { content, ...header } of entries) {
    await new Promise<void>((resolve, reject) => {
      pack.entry(header, content ?? '', (err) => (err ? reject(err) : resolve()));
    });
  }
  pack.finalize();
  await done;
  return gzipSync(Buffer.concat(chunks));
}

/** Rewrites the typeflag of the first header of an uncompressed tar, fixing the checksum. */
function withTypeflag(tarball: Buffer, flag: string): Buffer {
  const copy = Buffer.from(tarball);
  copy.write(flag, 156, 'latin1');
  copy.fill(0x20, 148, 156);
  let sum = 0;
  for (let i = 0; i < 512; i++) sum += copy[i] ?? 0;
  copy.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 'latin1');
  return copy;
}

let work: string;
let dest: string;
let outside: string;

beforeEach(async () => {
  work = await realpath(await mkdtemp(join(tmpdir(), 'skt-eng-src-')));
  dest = join(work, 'dest');
  outside = join(work, 'outside');
  await mkdir(dest);
  await mkdir(outside);
  await writeFile(join(outside, 'target'), 'host file');
});

afterEach(async () => {
  await rm(work, { recursive: true, force: true });
});

function unpack(gz: Buffer, log?: { warn(obj: object, msg: string): void }): Promise<void> {
  return extractTarGz(Readable.from([gz]), dest, { label: 'test.tar.gz', log });
}

describe('engine/build-source', () => {
  describe('classifyBuildSource', () => {
    it.each<[string, BuildSourceKind]>([
      ['/opt/skiff/coreenv/base', 'directory'],
      ['git://example.com/repo', 'git'],
      ['git@github.com:skiffos/skiff-core.git', 'git'],
      ['ssh://git@example.com/repo', 'git'],
      ['https://github.com/skiffos/skiff-core.git', 'git'],
      ['https://github.com/skiffos/skiff-core.git#main', 'git'],
      ['/srv/repos/x.git', 'git'],
      ['https://example.com/src.tar.gz', 'archive-url'],
      ['http://example.com/src.tgz?token=1', 'archive-url'],
      ['/var/cache/src.tar.gz', 'archive-file'],
    ])('%s is %s', (source, kind) => {
      expect(classifyBuildSource(source)).toBe(kind);
    });

    it.each(['relative/dir', 'https://example.com/page', 'src.tar.gz', ''])('refuses %j', (source) => {
      expect(() => classifyBuildSource(source)).toThrow('is not an absolute directory, a git URL');
    });
  });

  describe('extractTarGz', () => {
    it('unpacks files, directories, links and long names, dropping setuid bits', async () => {
      const longName = `${'d'.repeat(120)}/${'f'.repeat(120)}`;
      const gz = await archive([
        { name: './', type: 'directory', mode: 0o755 },
        { name: 'src/', type: 'directory', mode: 0o555 },
        { name: 'src/run.sh', type: 'file', mode: 0o4755, content: '#!/bin/sh\n' },
        { name: 'Dockerfile', type: 'file', mode: 0o644, content: 'FROM x\n' },
        { name: 'link', type: 'symlink', linkname: 'src/run.sh' },
        { name: 'src/up', type: 'symlink', linkname: '../Dockerfile' },
        { name: 'hard', type: 'link', linkname: 'Dockerfile' },
        { name: longName, type: 'file', content: 'long' },
      ]);
      await unpack(gz);
      expect(await readFile(join(dest, 'Dockerfile'), 'utf8')).toBe('FROM x\n');
      expect((await stat(join(dest, 'src', 'run.sh'))).mode & 0o7777).toBe(0o755);
      expect((await stat(join(dest, 'src'))).mode & 0o777).toBe(0o555);
      expect(await readlink(join(dest, 'link'))).toBe('src/run.sh');
      expect(await readFile(join(dest, 'src', 'up'), 'utf8')).toBe('FROM x\n');
      expect((await stat(join(dest, 'hard'))).ino).toBe((await stat(join(dest, 'Dockerfile'))).ino);
      expect(await readFile(join(dest, longName), 'utf8')).toBe('long');
    });

    it.each<[string, Entry[], string]>([
      ['an absolute path', [{ name: '/etc/evil', type: 'file', content: 'x' }], 'absolute path'],
      ['a .. component', [{ name: '../evil', type: 'file', content: 'x' }], 'contains ".."'],
      ['a .. in the middle', [{ name: 'a/../../evil', type: 'file', content: 'x' }], 'contains ".."'],
      ['a symlink climbing out', [{ name: 'l', type: 'symlink', linkname: '../outside/target' }], 'outside the archive'],
      ['a symlink to an absolute path', [{ name: 'l', type: 'symlink', linkname: '/etc/passwd' }], 'absolute path'],
      [
        'a chain of symlinks leading out',
        [
          { name: 'sub/', type: 'directory' },
          { name: 'sub/l', type: 'symlink', linkname: '..' },
          { name: 'x', type: 'symlink', linkname: 'sub/l/../outside' },
        ],
        'outside the archive',
      ],
      [
        'a file written through a symlink',
        [
          { name: 'sub/', type: 'directory' },
          { name: 'l', type: 'symlink', linkname: 'sub' },
          { name: 'l/file', type: 'file', content: 'x' },
        ],
        'through the symlink l',
      ],
      ['a hard link climbing out', [{ name: 'h', type: 'link', linkname: '../outside/target' }], 'hard link'],
      ['a hard link to an absolute path', [{ name: 'h', type: 'link', linkname: '/etc/passwd' }], 'hard link'],
      ['a character device', [{ name: 'null', type: 'character-device', devmajor: 1, devminor: 3 }], 'character-device'],
      ['a block device', [{ name: 'sda', type: 'block-device', devmajor: 8, devminor: 0 }], 'block-device'],
      ['a FIFO', [{ name: 'pipe', type: 'fifo' }], 'fifo'],
    ])('refuses %s', async (_what, entries, message) => {
      const err = await rejection(unpack(await archive(entries)));
      expect(err.code).toBe('SOURCE_INVALID');
      expect(err.message).toContain('test.tar.gz');
      expect(err.message).toContain(message);
      // Nothing was written outside.
      expect(await readdir(outside)).toEqual(['target']);
      expect(await readFile(join(outside, 'target'), 'utf8')).toBe('host file');
      await expect(lstat(join(work, 'evil'))).rejects.toThrow();
    });

    it('skips an entry of unknown type with a warning', async () => {
      const gz = await archive([
        { name: 'weird', type: 'file', content: 'abc' },
        { name: 'ok', type: 'file', content: 'ok' },
      ]);
      const patched = gzipSync(withTypeflag((await import('node:zlib')).gunzipSync(gz), 'V'));
      const warnings: object[] = [];
      await unpack(patched, { warn: (obj) => warnings.push(obj) });
      expect(await readdir(dest)).toEqual(['ok']);
      expect(warnings).toEqual([expect.objectContaining({ entry: 'weird' })]);
    });

    it('refuses data that is not gzip', async () => {
      const err = await rejection(unpack(Buffer.from('not a tarball at all')));
      expect(err.code).toBe('SOURCE_INVALID');
      expect(err.message).toContain('not a readable .tar.gz');
    });
  });

  describe('prepareBuildSource', () => {
    it('uses a local directory as is', async () => {
      const prepared = await prepareBuildSource(outside, { workDir: join(work, 'tmp') });
      expect(prepared.dir).toBe(outside);
      await prepared.cleanup();
      expect(await readdir(outside)).toEqual(['target']);
    });

    it('refuses a local path that is not a directory', async () => {
      const err = await rejection(prepareBuildSource(join(outside, 'target'), { workDir: join(work, 'tmp') }));
      expect(err.code).toBe('SOURCE_INVALID');
    });

    it('unpacks a local .tar.gz into a unique directory and cleans it up', async () => {
      const tarball = join(work, 'src.tar.gz');
      await writeFile(tarball, await archive([{ name: 'Dockerfile', type: 'file', content: 'FROM x\n' }]));
      const workDir = join(work, 'tmp');
      const a = await prepareBuildSource(tarball, { workDir });
      const b = await prepareBuildSource(tarball, { workDir });
      expect(a.dir).not.toBe(b.dir);
      expect(a.dir.startsWith(`${workDir}/`)).toBe(true);
      expect(await readFile(join(a.dir, 'Dockerfile'), 'utf8')).toBe('FROM x\n');
      await a.cleanup();
      await b.cleanup();
      expect(await readdir(workDir)).toEqual([]);
    });

    it('removes a partly unpacked hostile archive', async () => {
      const tarball = join(work, 'evil.tar.gz');
      await writeFile(
        tarball,
        await archive([
          { name: 'ok', type: 'file', content: 'x' },
          { name: '../evil', type: 'file', content: 'x' },
        ]),
      );
      const workDir = join(work, 'tmp');
      const err = await rejection(prepareBuildSource(tarball, { workDir }));
      expect(err.code).toBe('SOURCE_INVALID');
      expect(err.message).toContain('"../evil"');
      expect(await readdir(workDir)).toEqual([]);
    });

    it('downloads an archive URL with the given fetch', async () => {
      const gz = await archive([{ name: 'Dockerfile', type: 'file', content: 'FROM y\n' }]);
      const seen: string[] = [];
      const fakeFetch = (async (url: string | URL | Request) => {
        seen.push(String(url));
        return new Response(gz, { status: 200 });
      }) as typeof fetch;
      const prepared = await prepareBuildSource('https://example.invalid/src.tar.gz', {
        workDir: join(work, 'tmp'),
        fetch: fakeFetch,
      });
      expect(seen).toEqual(['https://example.invalid/src.tar.gz']);
      expect(await readFile(join(prepared.dir, 'Dockerfile'), 'utf8')).toBe('FROM y\n');
      await prepared.cleanup();
    });

    it('reports an HTTP failure as BUILD_FAILED and leaves nothing behind', async () => {
      const fakeFetch = (async () => new Response('gone', { status: 404, statusText: 'Not Found' })) as typeof fetch;
      const workDir = join(work, 'tmp');
      const err = await rejection(prepareBuildSource('https://example.invalid/src.tar.gz', { workDir, fetch: fakeFetch }));
      expect(err.code).toBe('BUILD_FAILED');
      expect(err.message).toContain('HTTP 404');
      expect(await readdir(workDir)).toEqual([]);
    });
  });
});
