// A snapshot of a directory tree (without following symlinks), to prove what a call changed.
import { lstat, readFile, readdir, readlink } from 'node:fs/promises';
import { join, relative } from 'node:path';

export type Tree = Record<string, string>;

export async function snapshot(dir: string, base: string = dir): Promise<Tree> {
  const out: Tree = {};
  for (const name of await readdir(dir)) {
    const path = join(dir, name);
    const rel = relative(base, path);
    const info = await lstat(path);
    const meta = `${(info.mode & 0o7777).toString(8)} ${info.uid}:${info.gid}`;
    if (info.isSymbolicLink()) out[rel] = `link -> ${await readlink(path)}`;
    else if (info.isDirectory()) {
      out[rel] = `dir ${meta}`;
      Object.assign(out, await snapshot(path, base));
    } else out[rel] = `file ${meta} ${await readFile(path, 'utf8')}`;
  }
  return out;
}

/** Paths whose snapshot entry differs (added, removed or changed), sorted. */
export function changedPaths(before: Tree, after: Tree): string[] {
  const keys = new Set([...Object.keys(before), ...Object.keys(after)]);
  return [...keys].filter((k) => before[k] !== after[k]).sort();
}
