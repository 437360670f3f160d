import { createHash, randomBytes } from 'node:crypto';
import { chmod, mkdir, mkdtemp, realpath, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import * as tar from 'tar-stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { isSkiffError } from '../../../src/errors.js';
import { packBuildContext, resolveInside } from '../../../src/engine/build-context.js';
import { rejection } from '../../support/rejection.js';

interface Listed {
  name: string;
  type: string;
  mode: number;
  uid: number;
  gid: number;
  linkname: string | null;
  sha256: string;
  size: number;
}

async function list(stream: Readable): Promise<Map<string, Listed>> {
  const extract = tar.extract();
  stream.pipe(extract as unknown as NodeJS.WritableStream);
  const entries = new Map<string, Listed>();
  for await (const entry of extract) {
    const hash = createHash('sha256');
    let size = 0;
    for await (const chunk of entry as AsyncIterable<Buffer>) {
      hash.update(chunk);
      size += chunk.length;
    }
    const h = entry.header;
    entries.set(h.name, {
      name: h.name,
      type: h.type,
      mode: h.mode,
      uid: h.uid,
      gid: h.gid,
      linkname: h.linkname ?? null,
      sha256: hash.digest('hex'),
      size,
    });
  }
  return entries;
}

let dir: string;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'skt-eng-ctx-'));
});

afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('engine/build-context', () => {
  describe('packBuildContext', () => {
    it('applies .dockerignore, always sends the Dockerfile and .dockerignore, keeps modes and symlinks', async () => {
      const big = randomBytes(3 * 1024 * 1024 + 17);
      await writeFile(join(dir, 'Dockerfile'), 'FROM scratch\n');
      await writeFile(join(dir, '.dockerignore'), '*.log\nsecret\n!keep.log\nDockerfile\n.dockerignore\n');
      await writeFile(join(dir, 'run.sh'), '#!/bin/sh\n');
      await chmod(join(dir, 'run.sh'), 0o755);
      await writeFile(join(dir, 'big.bin'), big);
      await writeFile(join(dir, 'x.log'), 'no');
      await writeFile(join(dir, 'keep.log'), 'yes');
      await mkdir(join(dir, 'secret'));
      await writeFile(join(dir, 'secret', 'key'), 'no');
      await mkdir(join(dir, 'sub'));
      await writeFile(join(dir, 'sub', 'b.txt'), 'b');
      await writeFile(join(dir, 'sub', 'c.log'), 'no');
      await symlink('../../../etc/passwd', join(dir, 'outside-link'));
      await symlink('run.sh', join(dir, 'inside-link'));

      const entries = await list(await packBuildContext(dir));

      expect([...entries.keys()].sort()).toEqual(
        [
          '.dockerignore',
          'Dockerfile',
          'big.bin',
          'inside-link',
          'keep.log',
          'outside-link',
          'run.sh',
          'sub/',
          'sub/b.txt',
          // `*.log` does not cross directories, as in Docker.
          'sub/c.log',
        ].sort(),
      );
      expect(entries.get('run.sh')).toMatchObject({ type: 'file', mode: 0o755, uid: 0, gid: 0 });
      expect(entries.get('sub/')).toMatchObject({ type: 'directory' });
      // Symlinks travel as symlinks; the target outside the context is never read.
      expect(entries.get('outside-link')).toMatchObject({ type: 'symlink', linkname: '../../../etc/passwd', size: 0 });
      expect(entries.get('inside-link')).toMatchObject({ type: 'symlink', linkname: 'run.sh' });
      expect(entries.get('big.bin')).toMatchObject({
        size: big.length,
        sha256: createHash('sha256').update(big).digest('hex'),
      });
    });

    it('sends everything when there is no .dockerignore', async () => {
      await writeFile(join(dir, 'Dockerfile'), 'FROM scratch\n');
      await mkdir(join(dir, 'a', 'b'), { recursive: true });
      await writeFile(join(dir, 'a', 'b', 'c'), 'c');
      const entries = await list(await packBuildContext(dir));
      expect([...entries.keys()]).toEqual(['Dockerfile', 'a/', 'a/b/', 'a/b/c']);
    });

    it('walks into an excluded directory for an exception inside it, and for a Dockerfile there', async () => {
      await mkdir(join(dir, 'docker'));
      await writeFile(join(dir, 'docker', 'Dockerfile'), 'FROM scratch\n');
      await writeFile(join(dir, 'docker', 'other'), 'no');
      await mkdir(join(dir, 'docs'));
      await writeFile(join(dir, 'docs', 'keep.txt'), 'yes');
      await writeFile(join(dir, 'docs', 'drop.txt'), 'no');
      await writeFile(join(dir, '.dockerignore'), 'docker\ndocs\n!docs/keep.txt\n');
      const entries = await list(await packBuildContext(dir, { dockerfile: 'docker/Dockerfile' }));
      expect([...entries.keys()].sort()).toEqual(['.dockerignore', 'docker/Dockerfile', 'docs/keep.txt']);
    });

    it.each([
      ['Dockerfile.missing', 'not found'],
      ['../Dockerfile', 'leads outside'],
      ['/etc/hostname', 'is absolute'],
    ])('refuses dockerfile %s before packing', async (dockerfile, message) => {
      await writeFile(join(dir, 'Dockerfile'), 'FROM scratch\n');
      const err = await rejection(packBuildContext(dir, { dockerfile }));
      expect(err.code).toBe('SOURCE_INVALID');
      expect(err.message).toContain(message);
    });

    it('refuses a context that is not a directory', async () => {
      await writeFile(join(dir, 'file'), '');
      const err = await rejection(packBuildContext(join(dir, 'file')));
      expect(err.code).toBe('SOURCE_INVALID');
    });

    it('stops cleanly when the consumer goes away early', async () => {
      await writeFile(join(dir, 'Dockerfile'), 'FROM scratch\n');
      await writeFile(join(dir, 'big.bin'), randomBytes(8 * 1024 * 1024));
      const stream = await packBuildContext(dir);
      await new Promise<void>((resolve) => stream.once('data', () => resolve()));
      stream.destroy();
      await new Promise((resolve) => setTimeout(resolve, 50));
      expect(stream.destroyed).toBe(true);
    });

    it('is destroyed with CANCELLED when the signal aborts', async () => {
      await writeFile(join(dir, 'Dockerfile'), 'FROM scratch\n');
      await writeFile(join(dir, 'big.bin'), randomBytes(8 * 1024 * 1024));
      const controller = new AbortController();
      const stream = await packBuildContext(dir, { signal: controller.signal });
      const failed = new Promise<unknown>((resolve) => stream.once('error', resolve));
      stream.once('data', () => controller.abort());
      stream.resume();
      expect(isSkiffError(await failed, 'CANCELLED')).toBe(true);
    });
  });

  describe('resolveInside', () => {
    let root: string;

    beforeEach(async () => {
      root = await realpath(dir);
      await mkdir(join(root, 'sub'));
      await writeFile(join(root, 'sub', 'Dockerfile'), '');
      await symlink('sub', join(root, 'link-in'));
      await symlink('/etc', join(root, 'link-out'));
      await symlink('/nonexistent-skt/x', join(root, 'dangling'));
      await symlink('sub/../link-out', join(root, 'chained'));
    });

    it.each([
      ['Dockerfile', 'Dockerfile'],
      ['./sub/Dockerfile', 'sub/Dockerfile'],
      ['sub/missing/file', 'sub/missing/file'],
      ['sub/../x', 'x'],
      ['link-in/Dockerfile', 'sub/Dockerfile'],
      ['link-in/new', 'sub/new'],
      ['.', ''],
    ])('accepts %s', async (relative, expected) => {
      expect(await resolveInside(root, relative)).toBe(join(root, expected));
    });

    it.each([
      ['../x', 'leads outside'],
      ['sub/../../x', 'leads outside'],
      ['/etc/passwd', 'is absolute'],
      ['link-out', 'symlink outside'],
      ['link-out/passwd', 'symlink outside'],
      ['chained/passwd', 'symlink outside'],
      ['dangling/x', 'dangling symlink'],
    ])('refuses %s', async (relative, message) => {
      const err = await rejection(resolveInside(root, relative));
      expect(err.code).toBe('SOURCE_INVALID');
      expect(err.message).toContain(`"${relative}"`);
      expect(err.message).toContain(message);
    });

    it('works when the root itself is reached through a symlink', async () => {
      await symlink(root, join(root, 'sub', 'root-link'));
      expect(await resolveInside(join(root, 'sub', 'root-link'), 'sub/Dockerfile')).toBe(join(root, 'sub', 'Dockerfile'));
    });
  });
});
