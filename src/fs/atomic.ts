// Writes that never leave a half-written file behind: a reader sees the old content or the new,
// and a crash at any point leaves at most a stray temp file that cleanStaleTemps() removes.
import { randomBytes } from 'node:crypto';
import { link, open, readdir, rename, rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';

const TEMP_MARK = '.skiff-tmp-';

export interface AtomicWriteOptions {
  mode?: number;
  /** Fail with EEXIST instead of replacing an existing file. */
  exclusive?: boolean;
  /**
   * false: atomic against a crash of the process, not of the machine (no fsync). For state that
   * a power cut ends anyway, such as records of running sessions in /run.
   */
  durable?: boolean;
}

export async function writeFileAtomic(path: string, data: string | Uint8Array, options: AtomicWriteOptions = {}): Promise<void> {
  const dir = dirname(path);
  const temp = join(dir, `${TEMP_MARK}${basename(path)}.${randomBytes(6).toString('hex')}`);
  const handle = await open(temp, 'wx', options.mode ?? 0o644);
  try {
    await handle.writeFile(data);
    if (options.durable !== false) await handle.sync();
  } catch (err) {
    await handle.close();
    await rm(temp, { force: true });
    throw err;
  }
  await handle.close();
  try {
    if (options.exclusive) {
      // link() fails if the target exists, so two writers cannot both win.
      await link(temp, path);
      await rm(temp, { force: true });
    } else {
      await rename(temp, path);
    }
  } catch (err) {
    await rm(temp, { force: true });
    throw err;
  }
  if (options.durable !== false) await syncDir(dir);
}

async function syncDir(dir: string): Promise<void> {
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** Remove temp files an interrupted writeFileAtomic left in `dir`. Returns what was removed. */
export async function cleanStaleTemps(dir: string): Promise<string[]> {
  const removed: string[] = [];
  for (const name of await readdir(dir).catch(() => [] as string[])) {
    if (!name.startsWith(TEMP_MARK)) continue;
    await rm(join(dir, name), { force: true });
    removed.push(name);
  }
  return removed;
}
