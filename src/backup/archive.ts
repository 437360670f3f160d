// A backup file is one tar: the manifest first, then the entries of the engine's `docker save`
// archive unchanged. Manifest first, so a restore reads it (and refuses) before loading gigabytes,
// and can stream from a pipe; the engine is given the save archive alone, as it made it.
import { Readable } from 'node:stream';
import * as tar from 'tar-stream';
import { SkiffError } from '../errors.js';
import { MANIFEST_MAX_BYTES, MANIFEST_NAME, parseManifest, type BackupManifest } from './manifest.js';
import { NAMING_ENTRIES, rewriteNaming, type Rename } from './retag.js';

/** The backup file's bytes: `manifest`, then each entry of `saved` as it streams. */
export function packBackup(manifest: BackupManifest, saved: NodeJS.ReadableStream): Readable {
  const pack = tar.pack();
  pack.entry({ name: MANIFEST_NAME, mode: 0o644, mtime: new Date(manifest.createdAt) }, `${JSON.stringify(manifest, null, 2)}\n`);
  copyEntries(saved, pack, undefined);
  return Readable.from(pack);
}

/**
 * Reads the manifest at the head of a backup and hands back the engine's archive that follows,
 * still streaming. Anything else (not a tar, another first entry, a bad manifest) is
 * BACKUP_INVALID, named after `source`. `rename` says which names the images get (retag.ts);
 * without it they keep the archive's.
 */
export function openBackup(
  input: NodeJS.ReadableStream,
  source: string,
  rename?: (manifest: BackupManifest) => Rename,
): Promise<{ manifest: BackupManifest; images: Readable }> {
  return new Promise((resolve, reject) => {
    const invalid = (why: string) => new SkiffError('BACKUP_INVALID', `${source} is not a skiff-core backup: ${why}`);
    const extract = tar.extract();
    const images = tar.pack();
    let manifest: BackupManifest | undefined;
    const fail = (err: Error) => {
      const wrapped = err instanceof SkiffError ? err : invalid(err.message);
      if (!manifest) reject(wrapped);
      else images.destroy(wrapped);
      extract.destroy();
    };
    extract.on('error', fail);
    input.on('error', (err: Error) => fail(err));
    extract.once('entry', (header, stream, next) => {
      if (header.name !== MANIFEST_NAME) return fail(invalid(`its first entry is "${header.name}", not ${MANIFEST_NAME}`));
      if ((header.size ?? 0) > MANIFEST_MAX_BYTES) return fail(invalid(`${MANIFEST_NAME} is ${header.size} bytes`));
      const chunks: Buffer[] = [];
      stream.on('data', (c: unknown) => chunks.push(c as Buffer));
      stream.on('end', () => {
        const parsed = parseManifest(Buffer.concat(chunks));
        if (typeof parsed === 'string') return fail(invalid(parsed));
        manifest = parsed;
        resolve({ manifest, images: Readable.from(images) });
        copyEntries(undefined, images, extract, rename?.(parsed));
        next();
      });
    });
    extract.on('finish', () => {
      if (!manifest) fail(invalid('it is empty'));
    });
    input.pipe(extract);
  });
}

/** A name list is a few kilobytes; anything near this is not one. */
const NAMING_MAX_BYTES = 4 * 1024 * 1024;

/**
 * Copies every entry of `source` (a tar stream, or an extract already reading one) into `pack`,
 * the archive's name lists rewritten by `rename` when given.
 */
function copyEntries(source: NodeJS.ReadableStream | undefined, pack: tar.Pack, reading: tar.Extract | undefined, rename?: Rename): void {
  const extract = reading ?? tar.extract();
  extract.on('entry', (header, stream, next) => {
    // The engine needs only names, kinds, sizes and modes; pax extras are left out.
    const { name, type, size, mode, mtime, linkname } = header;
    if (rename && NAMING_ENTRIES.has(name)) {
      if ((size ?? 0) > NAMING_MAX_BYTES) return pack.destroy(new Error(`${name} is ${size} bytes`));
      const chunks: Buffer[] = [];
      stream.on('data', (c: unknown) => chunks.push(c as Buffer));
      stream.on('end', () => {
        const content = rewriteNaming(name, Buffer.concat(chunks), rename);
        pack.entry({ name, type, size: content.length, mode, mtime }, content, (err) => (err ? pack.destroy(err) : next()));
      });
      return;
    }
    const entry = pack.entry({ name, type, size, mode, mtime, ...(linkname ? { linkname } : {}) }, (err) =>
      err ? pack.destroy(err) : next(),
    );
    stream.pipe(entry);
  });
  extract.on('finish', () => pack.finalize());
  extract.on('error', (err: Error) => pack.destroy(err));
  if (source) {
    source.on('error', (err: Error) => pack.destroy(err));
    source.pipe(extract);
  }
}
