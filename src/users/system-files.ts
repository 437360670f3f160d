// Reading the account files under a root directory ('/' on a device, a temp dir in tests) and
// replacing root-owned files without ever exposing a half-written file, a wrong mode or a wrong
// owner: the temp file gets its owner and mode before any content, then is renamed over the old
// file (rename replaces a symlink instead of following it).
import { randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import { lstat, open, readFile, rename, rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { SkiffError, errorMessage } from '../errors.js';
import { parseGroup, parsePasswd, parseShadow } from './passwd-files.js';
import type { GroupEntry, PasswdEntry, ShadowEntry } from './passwd-files.js';

export const PASSWD = 'etc/passwd';
export const GROUP = 'etc/group';
export const SHADOW = 'etc/shadow';
export const GSHADOW = 'etc/gshadow';
export const SHELLS = 'etc/shells';

/** Same marker as src/fs/atomic.ts, so cleanStaleTemps() removes what a crash left behind. */
const TEMP_MARK = '.skiff-tmp-';

export interface AccountFiles {
  passwd: PasswdEntry[];
  group: GroupEntry[];
  /** Undefined when the system has no /etc/shadow. */
  shadow: ShadowEntry[] | undefined;
}

function isErrno(err: unknown, code: string): boolean {
  return typeof err === 'object' && err !== null && (err as { code?: unknown }).code === code;
}

/** A file's text, or undefined when it does not exist. Other errors are IO errors. */
export async function readOptional(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8');
  } catch (err) {
    if (isErrno(err, 'ENOENT')) return undefined;
    throw new SkiffError('IO', `cannot read ${path}: ${errorMessage(err)}`, { cause: err });
  }
}

export async function readAccountFiles(root: string): Promise<AccountFiles> {
  const passwd = await readOptional(join(root, PASSWD));
  if (passwd === undefined) throw new SkiffError('IO', `${join(root, PASSWD)} does not exist`);
  const group = (await readOptional(join(root, GROUP))) ?? '';
  const shadow = await readOptional(join(root, SHADOW));
  return { passwd: parsePasswd(passwd), group: parseGroup(group), shadow: shadow === undefined ? undefined : parseShadow(shadow) };
}

export interface Owner {
  uid: number;
  gid: number;
}

export const ROOT_OWNER: Owner = { uid: 0, gid: 0 };

export interface FileOwnership {
  mode: number;
  uid: number;
  gid: number;
}

/**
 * Replaces `path` with `data`, atomically, with exactly the given mode and owner. Fails rather than
 * write when the directory is missing.
 */
export async function replaceFile(path: string, data: string, ownership: FileOwnership): Promise<void> {
  const dir = dirname(path);
  const temp = join(dir, `${TEMP_MARK}${basename(path)}.${randomBytes(6).toString('hex')}`);
  // O_EXCL|O_NOFOLLOW: never write through something planted under the temp name.
  const handle = await open(temp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600);
  try {
    await handle.chown(ownership.uid, ownership.gid);
    await handle.chmod(ownership.mode);
    await handle.writeFile(data);
    await handle.sync();
    await handle.close();
    await rename(temp, path);
  } catch (err) {
    await handle.close().catch(() => {});
    await rm(temp, { force: true });
    throw err;
  }
  const dirHandle = await open(dir, 'r');
  try {
    await dirHandle.sync();
  } finally {
    await dirHandle.close();
  }
}

/**
 * Replaces an existing system file keeping its mode and owner (e.g. /etc/shadow stays 0640
 * root:shadow). A symlink in its place is refused: system account files are never links here.
 */
export async function replaceSystemFile(path: string, data: string): Promise<void> {
  let info;
  try {
    info = await lstat(path);
  } catch (err) {
    throw new SkiffError('IO', `cannot update ${path}: ${errorMessage(err)}`, { cause: err });
  }
  if (!info.isFile()) throw new SkiffError('IO', `refusing to update ${path}: it is not a regular file`);
  try {
    await replaceFile(path, data, { mode: info.mode & 0o7777, uid: info.uid, gid: info.gid });
  } catch (err) {
    throw new SkiffError('IO', `cannot update ${path}: ${errorMessage(err)}`, { cause: err });
  }
}
