// Build sources are untrusted: a hostile .dockerignore, Dockerfile or archive ends that build
// with a clear error, quickly, and takes no more memory or disk than a limit.
import { execFileSync } from 'node:child_process';
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { createGzip } from 'node:zlib';
import * as tar from 'tar-stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { packBuildContext } from '../../../src/engine/build-context.js';
import { extractTarGz } from '../../../src/engine/build-source.js';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'skt-hostile-'));
  await writeFile(join(dir, 'Dockerfile'), 'FROM scratch\n');
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function drain(stream: Readable): Promise<number> {
  let n = 0;
  for await (const c of stream) n += (c as Buffer).length;
  return n;
}

describe('a hostile build context', () => {
  it('refuses a .dockerignore that is a symlink to a FIFO, without blocking', async () => {
    execFileSync('mkfifo', [join(dir, 'fifo')]);
    await symlink(join(dir, 'fifo'), join(dir, '.dockerignore'));
    await expect(packBuildContext(dir)).rejects.toThrow(/\.dockerignore is a symlink/);
  });

  it('refuses a .dockerignore that is a symlink to /dev/zero or to a file outside', async () => {
    await symlink('/dev/zero', join(dir, '.dockerignore'));
    await expect(packBuildContext(dir)).rejects.toThrow(/\.dockerignore is a symlink/);
    await rm(join(dir, '.dockerignore'));
    await symlink('/etc/passwd', join(dir, '.dockerignore'));
    await expect(packBuildContext(dir)).rejects.toThrow(/\.dockerignore is a symlink/);
  });

  it('refuses a .dockerignore that is itself a FIFO, or too large', async () => {
    execFileSync('mkfifo', [join(dir, '.dockerignore')]);
    await expect(packBuildContext(dir)).rejects.toThrow(/\.dockerignore is not a regular file/);
    await rm(join(dir, '.dockerignore'));
    await writeFile(join(dir, '.dockerignore'), Buffer.alloc(1024 * 1024 + 1, 'a'));
    await expect(packBuildContext(dir)).rejects.toThrow(/over the 1048576-byte limit/);
  });

  it('refuses a Dockerfile that is a symlink to a FIFO or to /dev/zero', async () => {
    execFileSync('mkfifo', [join(dir, 'fifo')]);
    await rm(join(dir, 'Dockerfile'));
    await symlink('fifo', join(dir, 'Dockerfile'));
    await expect(packBuildContext(dir)).rejects.toThrow(/Dockerfile/);
    await rm(join(dir, 'Dockerfile'));
    await symlink('/dev/zero', join(dir, 'Dockerfile'));
    await expect(packBuildContext(dir)).rejects.toThrow(/Dockerfile/);
  });

  it('packs a FIFO in the context as nothing, and never reads it', async () => {
    execFileSync('mkfifo', [join(dir, 'pipe')]);
    await writeFile(join(dir, 'file'), 'x');
    expect(await drain(await packBuildContext(dir))).toBeGreaterThan(0);
  });
});

describe('a hostile archive', () => {
  /** A .tar.gz with one file of `size` zero bytes, streamed (never held in memory). */
  function zeroBomb(size: number): Readable {
    const pack = tar.pack();
    pack.on('error', () => undefined); // the reader stops early: that is the point
    const entry = pack.entry({ name: 'zeros', size, type: 'file' }, () => pack.finalize());
    entry.on('error', () => undefined);
    const block = Buffer.alloc(1024 * 1024);
    (async () => {
      for (let left = size; left > 0; left -= block.length) {
        if (!entry.write(block.subarray(0, Math.min(block.length, left)))) await new Promise<void>((r) => entry.once('drain', () => r()));
      }
      entry.end(undefined);
    })().catch(() => undefined);
    return pack.pipe(createGzip()) as unknown as Readable;
  }

  it('stops a gzip bomb at the unpacked-size limit', async () => {
    const dest = join(dir, 'out');
    await mkdir(dest);
    await expect(
      extractTarGz(zeroBomb(64 * 1024 * 1024), dest, { label: 'bomb.tar.gz', limits: { unpackedBytes: 8 * 1024 * 1024 } }),
    ).rejects.toThrow('archive bomb.tar.gz is refused: its unpacked size is over the limit of 8,388,608');
  });

  it('stops an archive over the compressed-size and entry limits', async () => {
    const dest = join(dir, 'out2');
    await mkdir(dest);
    await expect(extractTarGz(zeroBomb(4 * 1024 * 1024), dest, { label: 'a.tar.gz', limits: { compressedBytes: 1024 } })).rejects.toThrow(
      'its compressed size is over the limit',
    );
    const many = tar.pack();
    for (let i = 0; i < 20; i++) many.entry({ name: `f${i}` }, 'x');
    many.finalize();
    const dest3 = join(dir, 'out3');
    await mkdir(dest3);
    await expect(
      extractTarGz(many.pipe(createGzip()) as unknown as Readable, dest3, { label: 'b.tar.gz', limits: { entries: 10 } }),
    ).rejects.toThrow('its number of entries is over the limit of 10');
  });
});
