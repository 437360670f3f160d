// SSH keys of mapped users live in a root-owned directory, one file per login name, never in the
// user's home: the user owns their home and could point any path in it (`.ssh`, `.ssh/
// authorized_keys`) at a file of root's choosing, and a root process writing there would write
// through the link (the Go original did exactly that). sshd reads these files through
// SSHD_AUTHORIZED_KEYS_LINE, which the device's sshd_config must contain.
import { constants } from 'node:fs';
import { chmod, lchown, lstat, mkdir, readFile, readdir, unlink } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { checkLoginName } from '../config/checks.js';
import { SkiffError, errorMessage } from '../errors.js';
import { ROOT_OWNER, readOptional, replaceFile } from './system-files.js';
import type { Owner } from './system-files.js';

/** Where the keys files live on the device. */
export const AUTHORIZED_KEYS_DIR = '/etc/skiff-core/authorized_keys';

/**
 * The sshd_config line that makes sshd read the keys skiff-core writes, as well as the user's own
 * `~/.ssh/authorized_keys`. `doctor` checks for it; the README tells device owners to add it.
 */
export const SSHD_AUTHORIZED_KEYS_LINE = `AuthorizedKeysFile .ssh/authorized_keys ${AUTHORIZED_KEYS_DIR}/%u`;

/** Root's keys on SkiffOS (assembled at boot from /etc/skiff/authorized_keys and the persist partition). */
export const ROOT_AUTHORIZED_KEYS = '/root/.ssh/authorized_keys';

const DIR_MODE = 0o755;
const FILE_MODE = 0o644;

export interface KeysOptions {
  /** Filesystem root; default '/'. */
  root?: string;
  /** Root's authorized_keys; default ROOT/root/.ssh/authorized_keys. */
  rootKeysPath?: string;
  /** Owner of the directory and files; default root (tests running unprivileged pass their own). */
  owner?: Owner;
}

export interface KeysSource {
  copyRootKeys?: boolean;
  sshKeys?: readonly string[];
}

export type KeysChange =
  | { kind: 'keys-written'; path: string; count: number }
  | { kind: 'keys-removed'; path: string }
  | { kind: 'keys-dir-fixed'; path: string; what: string };

export interface KeysOutcome {
  /** The user's keys file (under the root given). */
  path: string;
  /** How many keys sshd will accept from that file. */
  count: number;
  changes: KeysChange[];
  warnings: string[];
}

function checkName(name: string): void {
  const problem = checkLoginName(name);
  if (problem) throw new SkiffError('USAGE', problem);
}

export function keysDir(root = '/'): string {
  return join(root, AUTHORIZED_KEYS_DIR);
}

export function authorizedKeysPath(name: string, root = '/'): string {
  checkName(name);
  return join(keysDir(root), name);
}

/** The key lines of an authorized_keys text: no blanks, no comments, no duplicates. Pure. */
export function keyLines(text: string): string[] {
  return text
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'));
}

/** Root's keys (when copied) followed by the configured ones, each once, in order. Pure. */
export function combineKeys(rootKeys: string | undefined, sshKeys: readonly string[]): string[] {
  for (const key of sshKeys) {
    if (/[\n\r]/.test(key)) throw new SkiffError('CONFIG_INVALID', 'an entry of auth.sshKeys contains a line break');
  }
  const all = [...(rootKeys === undefined ? [] : keyLines(rootKeys)), ...sshKeys.map((k) => k.trim()).filter((k) => k !== '')];
  return [...new Set(all)];
}

export function renderKeysFile(name: string, keys: readonly string[]): string {
  const header = `# SSH keys for ${name}, written by skiff-core from its config (auth.copyRootKeys, auth.sshKeys).\n# Rewritten on every setup: change the config, not this file.\n`;
  return header + keys.map((k) => `${k}\n`).join('');
}

function isErrno(err: unknown, code: string): boolean {
  return typeof err === 'object' && err !== null && (err as { code?: unknown }).code === code;
}

/**
 * Makes `path` a real directory owned by `owner` with mode 0755, creating it when missing. A
 * symlink or a file in its place is an error (nothing but root can put one in /etc).
 */
async function ensureOwnedDir(path: string, owner: Owner): Promise<KeysChange[]> {
  let info;
  try {
    info = await lstat(path);
  } catch (err) {
    if (!isErrno(err, 'ENOENT')) throw new SkiffError('IO', `cannot inspect ${path}: ${errorMessage(err)}`, { cause: err });
    try {
      await mkdir(path, { mode: DIR_MODE });
      await lchown(path, owner.uid, owner.gid);
      await chmod(path, DIR_MODE);
    } catch (mkErr) {
      throw new SkiffError('IO', `cannot create ${path}: ${errorMessage(mkErr)}`, { cause: mkErr });
    }
    return [];
  }
  if (!info.isDirectory()) {
    throw new SkiffError('IO', `${path} is not a directory (a symlink or a file?); remove it so skiff-core can create it`);
  }
  const changes: KeysChange[] = [];
  if (info.uid !== owner.uid || info.gid !== owner.gid) {
    await lchown(path, owner.uid, owner.gid);
    changes.push({ kind: 'keys-dir-fixed', path, what: `owner ${info.uid}:${info.gid} -> ${owner.uid}:${owner.gid}` });
  }
  if ((info.mode & 0o7777) !== DIR_MODE) {
    await chmod(path, DIR_MODE);
    changes.push({ kind: 'keys-dir-fixed', path, what: `mode ${(info.mode & 0o7777).toString(8)} -> ${DIR_MODE.toString(8)}` });
  }
  return changes;
}

/** Whether `path` is already a regular file with exactly this content, mode and owner. */
async function sameFile(path: string, content: string, owner: Owner): Promise<boolean> {
  try {
    const info = await lstat(path);
    if (!info.isFile() || (info.mode & 0o7777) !== FILE_MODE || info.uid !== owner.uid || info.gid !== owner.gid) return false;
    return (await readFile(path, { encoding: 'utf8', flag: constants.O_RDONLY | constants.O_NOFOLLOW })) === content;
  } catch {
    return false;
  }
}

/**
 * Writes (or, with no keys, removes) the user's keys file in AUTHORIZED_KEYS_DIR: root's keys when
 * `copyRootKeys`, plus `sshKeys`. A missing or unreadable root key file is a warning; the
 * configured keys are still installed. Nothing outside the keys directory is written.
 */
export async function writeAuthorizedKeys(name: string, source: KeysSource, options: KeysOptions = {}): Promise<KeysOutcome> {
  const root = options.root ?? '/';
  const owner = options.owner ?? ROOT_OWNER;
  const path = authorizedKeysPath(name, root);
  const warnings: string[] = [];

  let rootKeys: string | undefined;
  if (source.copyRootKeys) {
    const rootKeysPath = options.rootKeysPath ?? join(root, ROOT_AUTHORIZED_KEYS);
    try {
      rootKeys = await readOptional(rootKeysPath);
      if (rootKeys === undefined)
        warnings.push(`auth.copyRootKeys: ${rootKeysPath} does not exist, so no root keys were copied for ${name}`);
    } catch (err) {
      warnings.push(`auth.copyRootKeys: ${errorMessage(err)}; no root keys were copied for ${name}`);
    }
  }
  const keys = combineKeys(rootKeys, source.sshKeys ?? []);

  if (keys.length === 0) {
    try {
      await unlink(path);
      return { path, count: 0, changes: [{ kind: 'keys-removed', path }], warnings };
    } catch (err) {
      if (isErrno(err, 'ENOENT')) return { path, count: 0, changes: [], warnings };
      throw new SkiffError('IO', `cannot remove ${path}: ${errorMessage(err)}`, { cause: err });
    }
  }

  const changes = [...(await ensureOwnedDir(dirname(keysDir(root)), owner)), ...(await ensureOwnedDir(keysDir(root), owner))];
  const content = renderKeysFile(name, keys);
  if (!(await sameFile(path, content, owner))) {
    try {
      await replaceFile(path, content, { mode: FILE_MODE, ...owner });
    } catch (err) {
      throw new SkiffError('IO', `cannot write ${path}: ${errorMessage(err)}`, { cause: err });
    }
    changes.push({ kind: 'keys-written', path, count: keys.length });
  }
  return { path, count: keys.length, changes, warnings };
}

/**
 * Entries of the keys directory that belong to no configured user (and temp files a crash left),
 * by name. Subdirectories are not listed. A missing directory has none.
 */
export async function listStaleKeyFiles(configured: Iterable<string>, options: { root?: string } = {}): Promise<string[]> {
  const dir = keysDir(options.root ?? '/');
  const keep = new Set(configured);
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (err) {
    if (isErrno(err, 'ENOENT')) return [];
    throw new SkiffError('IO', `cannot list ${dir}: ${errorMessage(err)}`, { cause: err });
  }
  const stale: string[] = [];
  for (const name of names.sort()) {
    if (keep.has(name)) continue;
    const info = await lstat(join(dir, name)).catch(() => undefined);
    if (info && !info.isDirectory()) stale.push(name);
  }
  return stale;
}

/** Removes what listStaleKeyFiles() lists (unlink: a symlink is removed, never followed). */
export async function removeStaleKeyFiles(configured: Iterable<string>, options: { root?: string } = {}): Promise<string[]> {
  const dir = keysDir(options.root ?? '/');
  const stale = await listStaleKeyFiles(configured, options);
  for (const name of stale) {
    await unlink(join(dir, name)).catch((err: unknown) => {
      if (!isErrno(err, 'ENOENT')) throw new SkiffError('IO', `cannot remove ${join(dir, name)}: ${errorMessage(err)}`, { cause: err });
    });
  }
  return stale;
}
