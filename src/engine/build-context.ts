// Build contexts: a local directory packed into the tar stream the engine's /build expects,
// filtered by `.dockerignore` like the Docker CLI does, and a guard for paths inside a source.

import { constants } from 'node:fs';
import { lstat, open, readdir, readlink, realpath, stat, type FileHandle } from 'node:fs/promises';
import { isAbsolute, join, posix, relative, resolve, sep } from 'node:path';
import { Readable } from 'node:stream';
import * as tar from 'tar-stream';
import { SkiffError, errorMessage } from '../errors.js';
import { createIgnoreMatcher, parseDockerignore } from './dockerignore.js';
import type { IgnoreMatcher } from './dockerignore.js';

export interface PackBuildContextOptions {
  /** Dockerfile path relative to the context directory; default `Dockerfile`. */
  dockerfile?: string;
  /** Stops packing; the stream is destroyed with a SkiffError CANCELLED. */
  signal?: AbortSignal;
}

function isInside(root: string, candidate: string): boolean {
  const rel = relative(root, candidate);
  return rel === '' || (!rel.startsWith(`..${sep}`) && rel !== '..' && !isAbsolute(rel));
}

function escapes(root: string, relativePath: string, why: string): SkiffError {
  return new SkiffError('SOURCE_INVALID', `path "${relativePath}" ${why} ${root}`);
}

/**
 * Resolves `relativePath` under `root` and refuses anything that leaves it: absolute paths,
 * `..` that climbs above root, and symlinks (anywhere along the path) whose target is outside.
 * The path need not exist; the existing part of it is resolved through symlinks. Returns the
 * resolved absolute path. Throws SkiffError SOURCE_INVALID naming the offending path.
 */
export async function resolveInside(root: string, relativePath: string): Promise<string> {
  if (isAbsolute(relativePath)) throw escapes(root, relativePath, 'is absolute; it must be relative to');
  const realRoot = await realpath(root).catch((cause: unknown) => {
    throw new SkiffError('SOURCE_INVALID', `source directory ${root} is not accessible: ${errorMessage(cause)}`, {
      cause,
    });
  });
  const lexical = resolve(realRoot, relativePath);
  if (!isInside(realRoot, lexical)) throw escapes(root, relativePath, 'leads outside');

  // Resolve the longest existing prefix through symlinks; the rest cannot contain any.
  let existing = lexical;
  const missing: string[] = [];
  for (;;) {
    try {
      const real = await realpath(existing);
      const full = join(real, ...missing);
      if (!isInside(realRoot, full)) throw escapes(root, relativePath, 'resolves through a symlink outside');
      return full;
    } catch (err) {
      if (err instanceof SkiffError) throw err;
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== 'ENOENT' && code !== 'ENOTDIR') throw err;
      // A dangling symlink must not be walked past: it could be created later, pointing anywhere.
      const link = await lstat(existing).catch(() => undefined);
      if (link?.isSymbolicLink() === true) throw escapes(root, relativePath, 'goes through a dangling symlink in');
      if (existing === realRoot) return lexical;
      missing.unshift(posix.basename(existing));
      existing = resolve(existing, '..');
    }
  }
}

/** A .dockerignore larger than this is refused (real ones are a few hundred bytes). */
export const MAX_IGNORE_FILE = 1024 * 1024;

/**
 * Opens a file of a build source for reading: never through a symlink, never blocking (a FIFO
 * would hang the converge loop), and only when it is a regular file. The source is untrusted.
 */
export async function openRegularFile(path: string): Promise<FileHandle> {
  let handle: FileHandle;
  try {
    handle = await open(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ELOOP')
      throw new SkiffError('SOURCE_INVALID', `${path} is a symlink; build sources must hold it as a regular file`);
    throw err;
  }
  const info = await handle.stat();
  if (!info.isFile()) {
    await handle.close();
    throw new SkiffError('SOURCE_INVALID', `${path} is not a regular file (a FIFO, device or socket cannot be part of a build)`);
  }
  return handle;
}

async function readIgnoreFile(root: string): Promise<string[]> {
  const path = join(root, '.dockerignore');
  let handle: FileHandle;
  try {
    handle = await openRegularFile(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    if (err instanceof SkiffError) throw err;
    throw new SkiffError('SOURCE_INVALID', `cannot read ${path}: ${errorMessage(err)}`, { cause: err });
  }
  try {
    const { size } = await handle.stat();
    if (size > MAX_IGNORE_FILE)
      throw new SkiffError('SOURCE_INVALID', `${path} is ${size} bytes, over the ${MAX_IGNORE_FILE}-byte limit for a .dockerignore`);
    const buffer = Buffer.alloc(size);
    const { bytesRead } = await handle.read(buffer, 0, size, 0);
    return parseDockerignore(buffer.subarray(0, bytesRead).toString('utf8'));
  } finally {
    await handle.close();
  }
}

/**
 * Packs `dir` as a build context. Follows the Docker CLI: `.dockerignore` applies (and the
 * Dockerfile and `.dockerignore` are always sent), owners are 0:0, modes and mtimes are kept,
 * symlinks are stored as symlinks (never followed), hard links become regular files, and
 * sockets, FIFOs and devices are left out. File contents are streamed, not buffered.
 *
 * Validates the directory and the Dockerfile before returning (SkiffError SOURCE_INVALID);
 * errors while packing destroy the returned stream.
 */
export async function packBuildContext(dir: string, options: PackBuildContextOptions = {}): Promise<Readable> {
  const dockerfile = options.dockerfile ?? 'Dockerfile';
  const rootStat = await stat(dir).catch(() => undefined);
  if (rootStat?.isDirectory() !== true) throw new SkiffError('SOURCE_INVALID', `build context ${dir} is not a directory`);
  const root = await realpath(dir);
  const dockerfilePath = await resolveInside(root, dockerfile);
  const dockerfileStat = await stat(dockerfilePath).catch(() => undefined);
  if (dockerfileStat?.isFile() !== true) {
    throw new SkiffError('SOURCE_INVALID', `Dockerfile "${dockerfile}" not found in build context ${dir}`);
  }
  const dockerfileRel = relative(root, dockerfilePath).split(sep).join('/');

  const lines = await readIgnoreFile(root);
  // As the CLI does, so the engine can always read these two files.
  const matcher = createIgnoreMatcher(lines.length === 0 ? [] : [...lines, `!${dockerfileRel}`, '!.dockerignore']);

  const pack = tar.pack();
  // Errors reach the consumer through the wrapping stream; the pack's own are duplicates.
  pack.on('error', () => undefined);
  const stream = Readable.from(pack, { objectMode: false });
  const signal = options.signal;
  let stopped = false;

  function stop(err?: Error): void {
    if (stopped) return;
    stopped = true;
    if (err === undefined) pack.destroy();
    else stream.destroy(err);
  }

  function onAbort(): void {
    stop(new SkiffError('CANCELLED', 'packing the build context was cancelled'));
  }
  signal?.addEventListener('abort', onAbort, { once: true });
  // The consumer went away early (e.g. the engine refused the build): stop reading files.
  stream.on('close', () => stop());

  walk(root, pack, matcher, () => stopped)
    .then(() => {
      if (!stopped) pack.finalize();
    })
    .catch((err: unknown) =>
      // Wrapped so that a file system error (EACCES…) is never mistaken for an engine one.
      stop(
        err instanceof SkiffError
          ? err
          : new SkiffError('SOURCE_INVALID', `cannot pack build context ${dir}: ${errorMessage(err)}`, { cause: err }),
      ),
    )
    .finally(() => signal?.removeEventListener('abort', onAbort));

  if (signal?.aborted === true) onAbort();
  return stream;
}

async function walk(root: string, pack: tar.Pack, matcher: IgnoreMatcher, isStopped: () => boolean): Promise<void> {
  const queue: string[] = [''];
  while (queue.length > 0) {
    const dirRel = queue.shift() as string;
    const names = (await readdir(join(root, dirRel))).sort();
    const subdirs: string[] = [];
    for (const name of names) {
      if (isStopped()) return;
      const rel = dirRel === '' ? name : `${dirRel}/${name}`;
      const full = join(root, rel);
      const info = await lstat(full);
      const excluded = matcher.excludes(rel);
      if (info.isDirectory()) {
        if (excluded) {
          if (matcher.mayIncludeInside(rel)) subdirs.push(rel);
          continue;
        }
        await addEntry(pack, { name: `${rel}/`, type: 'directory', mode: info.mode & 0o7777, mtime: info.mtime });
        subdirs.push(rel);
        continue;
      }
      if (excluded) continue;
      if (info.isSymbolicLink()) {
        const linkname = await readlink(full);
        await addEntry(pack, { name: rel, type: 'symlink', linkname, mode: info.mode & 0o7777, mtime: info.mtime });
      } else if (info.isFile()) {
        await addFile(pack, full, rel, info.size, info.mode & 0o7777, info.mtime, isStopped);
      }
    }
    // Depth-first in name order keeps the archive deterministic and parents before children.
    queue.unshift(...subdirs);
  }
}

type EntryHeader = Partial<tar.Header> & Pick<tar.Header, 'name'>;
type Sink = ReturnType<tar.Pack['entry']>;

/** Resolves when the sink wants more data, or when it is gone (the caller then sees isStopped). */
function drained(sink: Sink): Promise<void> {
  return new Promise((resolveDrain) => {
    function done(): void {
      sink.off('drain', done);
      sink.off('close', done);
      sink.off('error', done);
      resolveDrain();
    }
    sink.on('drain', done);
    sink.on('close', done);
    sink.on('error', done);
  });
}

function entryHeader(header: EntryHeader): EntryHeader {
  return { uid: 0, gid: 0, uname: '', gname: '', ...header };
}

function addEntry(pack: tar.Pack, header: EntryHeader): Promise<void> {
  return new Promise((resolvePromise, reject) => {
    const sink = pack.entry(entryHeader(header), (err) => (err ? reject(err) : resolvePromise()));
    sink.on('error', () => undefined);
  });
}

async function addFile(
  pack: tar.Pack,
  full: string,
  name: string,
  size: number,
  mode: number,
  mtime: Date,
  isStopped: () => boolean,
): Promise<void> {
  let resolveEntry!: () => void;
  let rejectEntry!: (err: Error) => void;
  const entryDone = new Promise<void>((res, rej) => {
    resolveEntry = res;
    rejectEntry = rej;
  });
  entryDone.catch(() => undefined);
  const sink = pack.entry(entryHeader({ name, type: 'file', size, mode, mtime }), (err) => (err ? rejectEntry(err) : resolveEntry()));
  // A destroyed pack destroys the entry too; that error reaches us through the callback.
  sink.on('error', () => undefined);

  let written = 0;
  if (size > 0) {
    // Read at most the size announced in the header; a file that shrinks is an error below. It
    // was a regular file when listed; opened without following links it must still be one.
    const input = (await openRegularFile(full)).createReadStream({ start: 0, end: size - 1 });
    try {
      for await (const chunk of input as AsyncIterable<Buffer>) {
        if (isStopped()) return;
        written += chunk.length;
        if (!sink.write(chunk)) await drained(sink);
      }
    } finally {
      input.destroy();
    }
  }
  if (isStopped()) return;
  if (written !== size) {
    throw new SkiffError('SOURCE_INVALID', `file ${full} changed size while the build context was packed`);
  }
  sink.end(undefined);
  await entryDone;
}
