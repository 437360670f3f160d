// Build sources (`images.REF.build.source`) turned into a local directory: a local directory as
// is, a git repository cloned shallowly, or a .tar.gz (path or URL) unpacked without trusting it.

import { spawn } from 'node:child_process';
import { createReadStream } from 'node:fs';
import { chmod, link, lstat, mkdir, mkdtemp, open, realpath, rm, stat, symlink, unlink, utimes } from 'node:fs/promises';
import { dirname, isAbsolute, join, posix, relative, sep } from 'node:path';
import { Readable } from 'node:stream';
import { createGunzip } from 'node:zlib';
import * as tar from 'tar-stream';
import { SkiffError, errorMessage } from '../errors.js';

export interface BuildSourceLog {
  warn(obj: object, msg: string): void;
}

export interface PrepareBuildSourceOptions {
  /** Directory under which clones and unpacked archives get a unique directory each. */
  workDir: string;
  signal?: AbortSignal;
  log?: BuildSourceLog;
  /** Injected for tests; defaults to the global fetch. */
  fetch?: typeof fetch;
}

export interface PreparedBuildSource {
  /** Local directory holding the source. */
  dir: string;
  /** Removes what was cloned or unpacked; a no-op for a local directory. Never throws. */
  cleanup(): Promise<void>;
}

export type BuildSourceKind = 'directory' | 'git' | 'archive-url' | 'archive-file';

/**
 * How a `build.source` string is interpreted: git URLs (`git://…`, `git@host:path`, `ssh://…`
 * and anything ending in `.git`), `.tar.gz`/`.tgz` files or http(s) URLs, and absolute local
 * directories. Throws SOURCE_INVALID for anything else.
 */
export function classifyBuildSource(source: string): BuildSourceKind {
  const bare = source.replace(/[?#].*$/, '');
  const isUrl = /^https?:\/\//i.test(source);
  if (/^git:\/\//i.test(source) || /^ssh:\/\//i.test(source) || /^[\w.-]+@[\w.-]+:/.test(source)) return 'git';
  if (/\.git\/?$/i.test(bare)) return 'git';
  if (/\.(tar\.gz|tgz)$/i.test(bare)) {
    if (isUrl) return 'archive-url';
    if (isAbsolute(source)) return 'archive-file';
  }
  if (!isUrl && isAbsolute(source)) return 'directory';
  throw new SkiffError(
    'SOURCE_INVALID',
    `build source "${source}" is not an absolute directory, a git URL (git://… or ….git) or a .tar.gz path or URL`,
  );
}

/**
 * Makes `source` available as a local directory. Failures to fetch (clone, download) are
 * SkiffError BUILD_FAILED; unusable sources and hostile archives are SOURCE_INVALID; abort is
 * CANCELLED. Anything created under workDir is removed when preparation fails.
 */
export async function prepareBuildSource(source: string, options: PrepareBuildSourceOptions): Promise<PreparedBuildSource> {
  const kind = classifyBuildSource(source);
  if (kind === 'directory') {
    const info = await stat(source).catch(() => undefined);
    if (info?.isDirectory() !== true) {
      throw new SkiffError('SOURCE_INVALID', `build source ${source} is not a directory`);
    }
    return { dir: source, cleanup: async () => undefined };
  }

  await mkdir(options.workDir, { recursive: true });
  const dir = await mkdtemp(join(options.workDir, 'build-source-'));
  async function cleanup(): Promise<void> {
    await rm(dir, { recursive: true, force: true }).catch(() => undefined);
  }
  try {
    if (kind === 'git') {
      await gitClone(source, dir, options.signal);
    } else {
      const input = kind === 'archive-file' ? createReadStream(source) : await download(source, options);
      await extractTarGz(input, dir, { signal: options.signal, log: options.log, label: source });
    }
  } catch (err) {
    await cleanup();
    if (options.signal?.aborted === true) {
      throw new SkiffError('CANCELLED', `preparing build source ${source} was cancelled`, { cause: err });
    }
    throw err;
  }
  return { dir, cleanup };
}

/**
 * `URL#ref` selects a branch or tag, as in Docker's git contexts. Docker's `#ref:dir` form is
 * refused: `build.root` names the sub-directory.
 */
function splitGitRef(source: string): { url: string; ref: string | undefined } {
  const hash = source.indexOf('#');
  if (hash === -1) return { url: source, ref: undefined };
  const ref = source.slice(hash + 1);
  if (ref.includes(':')) {
    throw new SkiffError('SOURCE_INVALID', `build source "${source}": use build.root instead of "#ref:directory"`);
  }
  return { url: source.slice(0, hash), ref: ref === '' ? undefined : ref };
}

function gitClone(source: string, dest: string, signal: AbortSignal | undefined): Promise<void> {
  const { url, ref } = splitGitRef(source);
  const args = ['clone', '--depth', '1', '--quiet', ...(ref === undefined ? [] : ['--branch', ref]), '--', url, dest];
  return new Promise((resolvePromise, reject) => {
    const child = spawn('git', args, {
      stdio: ['ignore', 'ignore', 'pipe'],
      // Never prompt for credentials on a device; a prompt would hang forever.
      env: {
        ...process.env,
        GIT_TERMINAL_PROMPT: '0',
        GIT_ASKPASS: 'true',
        GIT_SSH_COMMAND: process.env['GIT_SSH_COMMAND'] ?? 'ssh -o BatchMode=yes',
      },
      ...(signal === undefined ? {} : { signal }),
    });
    let stderr = '';
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (chunk: string) => {
      if (stderr.length < 8192) stderr += chunk;
    });
    child.on('error', (err) => {
      if (signal?.aborted === true) return reject(new SkiffError('CANCELLED', `git clone ${url} was cancelled`));
      reject(new SkiffError('BUILD_FAILED', `cannot run git to clone ${url}: ${errorMessage(err)}`, { cause: err }));
    });
    child.on('close', (code) => {
      if (code === 0) return resolvePromise();
      if (signal?.aborted === true) return reject(new SkiffError('CANCELLED', `git clone ${url} was cancelled`));
      const detail = stderr.trim().split('\n').slice(-5).join('\n');
      reject(new SkiffError('BUILD_FAILED', `git clone ${url} failed (exit code ${code}): ${detail}`));
    });
  });
}

async function download(url: string, options: PrepareBuildSourceOptions): Promise<Readable> {
  const doFetch = options.fetch ?? fetch;
  let response: Response;
  try {
    response = await doFetch(url, { redirect: 'follow', ...(options.signal === undefined ? {} : { signal: options.signal }) });
  } catch (err) {
    throw new SkiffError('BUILD_FAILED', `cannot download build source ${url}: ${errorMessage(err)}`, { cause: err });
  }
  if (!response.ok || response.body === null) {
    await response.body?.cancel().catch(() => undefined);
    throw new SkiffError('BUILD_FAILED', `cannot download build source ${url}: HTTP ${response.status} ${response.statusText}`);
  }
  return Readable.fromWeb(response.body as import('node:stream/web').ReadableStream<Uint8Array>);
}

export interface ExtractOptions {
  signal?: AbortSignal | undefined;
  log?: BuildSourceLog | undefined;
  /** Names the archive in messages; default "archive". */
  label?: string | undefined;
  /** Limits on what an archive may take; defaults ARCHIVE_LIMITS. */
  limits?: Partial<ArchiveLimits> | undefined;
}

export interface ArchiveLimits {
  /** Compressed bytes read (downloaded). */
  compressedBytes: number;
  /** File bytes written once unpacked: a gzip bomb stops here, not when the disk is full. */
  unpackedBytes: number;
  entries: number;
}

/** Far above any build context, far below a persist partition. */
export const ARCHIVE_LIMITS: ArchiveLimits = { compressedBytes: 1024 ** 3, unpackedBytes: 4 * 1024 ** 3, entries: 200_000 };

function overLimit(label: string, what: string, limit: number): SkiffError {
  return new SkiffError('SOURCE_INVALID', `archive ${label} is refused: ${what} over the limit of ${limit.toLocaleString('en-US')}`);
}

function hostile(label: string, name: string, why: string): SkiffError {
  return new SkiffError('SOURCE_INVALID', `archive ${label} is refused: entry "${name}" ${why}`);
}

/** Normalizes an entry name to a relative path inside the archive, or explains why it cannot be. */
function entryPath(name: string): { path: string } | { refused: string } {
  if (name.startsWith('/')) return { refused: 'has an absolute path' };
  const parts = name.split('/').filter((part) => part !== '' && part !== '.');
  if (parts.includes('..')) return { refused: 'contains ".."' };
  return { path: parts.join('/') };
}

function isInside(root: string, candidate: string): boolean {
  const rel = relative(root, candidate);
  return rel === '' || (rel !== '..' && !rel.startsWith(`..${sep}`) && !isAbsolute(rel));
}

// Permission bits only: setuid/setgid/sticky bits from a downloaded archive are not kept on the
// host (the unpacking process is usually root).
const MODE_MASK = 0o777;

/**
 * Unpacks a gzip-compressed tar into `dest` (an existing, empty directory) without trusting it:
 * entries with absolute paths or `..`, symlinks and hard links whose targets leave `dest`,
 * entries below a symlink, and device files and FIFOs are refused with SkiffError
 * SOURCE_INVALID (and extraction stops). Unknown entry types are skipped with a warning.
 * Owners are not applied; setuid/setgid bits are dropped.
 */
export async function extractTarGz(input: NodeJS.ReadableStream, dest: string, options: ExtractOptions = {}): Promise<void> {
  const label = options.label ?? 'archive';
  const root = await realpath(dest);
  const limits = { ...ARCHIVE_LIMITS, ...options.limits };
  const gunzip = createGunzip();
  const extract = tar.extract();
  const budget = { bytes: limits.unpackedBytes, label, limit: limits.unpackedBytes };
  let compressed = 0;
  let entries = 0;
  const symlinks: string[] = [];
  const directories = new Map<string, { mode: number; mtime: Date }>();

  function onAbort(): void {
    extract.destroy(new SkiffError('CANCELLED', `unpacking ${label} was cancelled`));
  }
  options.signal?.addEventListener('abort', onAbort, { once: true });
  if (options.signal?.aborted === true) onAbort();

  input.on('error', (err: Error) => gunzip.destroy(err));
  input.on('data', (chunk: Buffer) => {
    compressed += chunk.length;
    if (compressed > limits.compressedBytes) extract.destroy(overLimit(label, 'its compressed size is', limits.compressedBytes));
  });
  gunzip.on('error', (err) => extract.destroy(wrapStreamError(label, err)));
  input.pipe(gunzip).pipe(extract as unknown as NodeJS.WritableStream);

  try {
    for await (const entry of extract) {
      if (++entries > limits.entries) throw overLimit(label, 'its number of entries is', limits.entries);
      await writeEntry(entry, root, label, symlinks, directories, options.log, budget);
    }
  } catch (err) {
    throw wrapStreamError(label, err);
  } finally {
    options.signal?.removeEventListener('abort', onAbort);
    gunzip.destroy();
    if ('destroy' in input && typeof input.destroy === 'function') (input as Readable).destroy();
  }

  // Targets are checked again once everything exists: a chain of symlinks, each harmless alone,
  // can still lead outside.
  for (const path of symlinks) {
    const resolved = await realpath(path).catch(() => undefined);
    if (resolved !== undefined && !isInside(root, resolved)) {
      throw hostile(label, relative(root, path), `is a symlink resolving to ${resolved}, outside the archive`);
    }
  }
  // Directory modes last, deepest first, so a read-only directory does not block its contents.
  const dirs = [...directories.entries()].sort((a, b) => b[0].length - a[0].length);
  for (const [path, { mode, mtime }] of dirs) {
    await chmod(path, mode);
    await utimes(path, mtime, mtime).catch(() => undefined);
  }
}

function wrapStreamError(label: string, err: unknown): SkiffError {
  if (err instanceof SkiffError) return err;
  return new SkiffError('SOURCE_INVALID', `archive ${label} is not a readable .tar.gz: ${errorMessage(err)}`, {
    cause: err,
  });
}

/** Refuses to write below an existing symlink (which could point anywhere). */
async function assertNoSymlinkParents(root: string, rel: string, label: string, name: string): Promise<void> {
  const parts = rel.split('/');
  let current = root;
  for (const part of parts.slice(0, -1)) {
    current = join(current, part);
    const info = await lstat(current).catch(() => undefined);
    if (info === undefined) return;
    if (info.isSymbolicLink()) throw hostile(label, name, `would be written through the symlink ${relative(root, current)}`);
    if (!info.isDirectory()) throw hostile(label, name, `is below ${relative(root, current)}, which is not a directory`);
  }
}

async function removeExisting(path: string): Promise<void> {
  const info = await lstat(path).catch(() => undefined);
  if (info !== undefined && !info.isDirectory()) await unlink(path);
}

async function writeEntry(
  entry: tar.Extract extends AsyncIterable<infer E> ? E : never,
  root: string,
  label: string,
  symlinks: string[],
  directories: Map<string, { mode: number; mtime: Date }>,
  log: BuildSourceLog | undefined,
  budget: { bytes: number; label: string; limit: number },
): Promise<void> {
  const header = entry.header;
  const name = header.name;
  const normalized = entryPath(name);
  if ('refused' in normalized) throw hostile(label, name, normalized.refused);
  const rel = normalized.path;
  const target = join(root, rel);
  const mode = (header.mode ?? 0o644) & MODE_MASK;
  const mtime = header.mtime instanceof Date ? header.mtime : new Date();

  // Entries are consumed to the end whatever happens, so the next header can be read.
  const type = header.type as string | null | undefined;
  if (rel === '') {
    if (type !== 'directory') throw hostile(label, name, 'has an empty path');
    entry.resume();
    return;
  }

  switch (type) {
    case 'directory': {
      entry.resume();
      await assertNoSymlinkParents(root, rel, label, name);
      const existing = await lstat(target).catch(() => undefined);
      if (existing !== undefined && !existing.isDirectory()) throw hostile(label, name, 'replaces a non-directory');
      await mkdir(target, { recursive: true, mode: 0o700 });
      directories.set(target, { mode, mtime });
      return;
    }
    case 'file':
    case 'contiguous-file': {
      await assertNoSymlinkParents(root, rel, label, name);
      await mkdir(dirname(target), { recursive: true });
      await removeExisting(target);
      // O_EXCL: never open through something that appeared at this path meanwhile.
      const handle = await open(target, 'wx', 0o600);
      try {
        for await (const chunk of entry as AsyncIterable<Uint8Array>) {
          budget.bytes -= chunk.length;
          if (budget.bytes < 0) throw overLimit(budget.label, 'its unpacked size is', budget.limit);
          await handle.write(chunk);
        }
        await handle.chmod(mode);
        await handle.utimes(mtime, mtime);
      } finally {
        await handle.close();
      }
      return;
    }
    case 'symlink': {
      entry.resume();
      const linkname = header.linkname ?? '';
      if (linkname === '') throw hostile(label, name, 'is a symlink without a target');
      if (posix.isAbsolute(linkname)) throw hostile(label, name, `is a symlink to the absolute path ${linkname}`);
      const resolved = posix.normalize(posix.join(posix.dirname(rel), linkname));
      if (resolved === '..' || resolved.startsWith('../')) {
        throw hostile(label, name, `is a symlink to ${linkname}, outside the archive`);
      }
      await assertNoSymlinkParents(root, rel, label, name);
      await mkdir(dirname(target), { recursive: true });
      await removeExisting(target);
      await symlink(linkname, target);
      symlinks.push(target);
      return;
    }
    case 'link': {
      entry.resume();
      const linkname = header.linkname ?? '';
      const source = entryPath(linkname);
      if ('refused' in source || source.path === '') {
        throw hostile(label, name, `is a hard link to ${linkname}, outside the archive`);
      }
      await assertNoSymlinkParents(root, source.path, label, name);
      const sourcePath = join(root, source.path);
      const info = await lstat(sourcePath).catch(() => undefined);
      if (info?.isFile() !== true) throw hostile(label, name, `is a hard link to ${linkname}, which is not a file in the archive`);
      await assertNoSymlinkParents(root, rel, label, name);
      await mkdir(dirname(target), { recursive: true });
      await removeExisting(target);
      await link(sourcePath, target);
      return;
    }
    case 'character-device':
    case 'block-device':
    case 'fifo':
      entry.resume();
      throw hostile(label, name, `is a ${type}; special files are not allowed in a build source`);
    default:
      entry.resume();
      log?.warn({ archive: label, entry: name, type: type ?? 'unknown' }, 'Skipping archive entry of unknown type');
  }
}
