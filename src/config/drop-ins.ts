// Drop-ins: config.d/*.yaml beside the config, merged after it in name order. The merge keeps,
// for every path, the file it came from, so that errors name the fragment, line and column.
import { readdir } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { ConfigPath, Diagnostic } from './diagnostics.js';
import type { YamlTree } from './yaml-tree.js';

/** Fragments beside the config, merged after it in name order (see README, "Drop-ins"). */
export const DROP_IN_DIR = 'config.d';
/** More fragments than this is a mistake (a wrong directory), not a config. */
const MAX_DROP_INS = 64;

/** The drop-in files for `file`, in the order they apply; [] when there is no config.d. */
export async function listDropIns(file: string): Promise<string[] | Diagnostic> {
  const dir = join(dirname(file), DROP_IN_DIR);
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return [];
    return { severity: 'error', file: dir, path: [], message: `cannot read the drop-in directory: ${(err as Error).message}` };
  }
  // Code-point order, as ls in the C locale shows them: 10-x.yaml before 20-y.yaml.
  const fragments = names.filter((n) => /\.ya?ml$/.test(n) && !n.startsWith('.')).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  if (fragments.length > MAX_DROP_INS) {
    return { severity: 'error', file: dir, path: [], message: `${fragments.length} drop-in files; at most ${MAX_DROP_INS} are read` };
  }
  return fragments.map((n) => join(dir, n));
}

export interface ConfigPart {
  file: string;
  tree: YamlTree;
  data: Record<string, unknown>;
}

/** Sections whose entries a later file adds or replaces one by one; any other key is replaced whole. */
const KEYED_SECTIONS = new Set(['images', 'containers', 'users']);

/**
 * Merges in order: a later file's entry of images, containers or users replaces the entry of that
 * name (whole, never field by field), and any other top-level key replaces the section. Every
 * path remembers the file it came from, for the positions of errors.
 */
export function mergeParts(parts: ConfigPart[]): {
  data: Record<string, unknown>;
  tree: YamlTree;
  fileOf: (path: ConfigPath) => string;
} {
  const [first, ...rest] = parts;
  if (!first) throw new Error('mergeParts needs the main file');
  const data: Record<string, unknown> = { ...first.data };
  const owner = new Map<string, number>();
  for (const [index, part] of rest.entries()) {
    for (const [key, value] of Object.entries(part.data)) {
      if (KEYED_SECTIONS.has(key) && isRecord(value) && (isRecord(data[key]) || data[key] === undefined)) {
        data[key] = { ...(data[key] as Record<string, unknown> | undefined), ...value };
        if (!owner.has(key)) owner.set(key, index + 1);
        for (const name of Object.keys(value)) owner.set(`${key}\u0000${name}`, index + 1);
      } else {
        data[key] = value;
        owner.set(key, index + 1);
        for (const k of [...owner.keys()]) if (k.startsWith(`${key}\u0000`)) owner.delete(k);
      }
    }
  }
  const partOf = (path: ConfigPath) => {
    const entry = path.length >= 2 ? owner.get(`${String(path[0])}\u0000${String(path[1])}`) : undefined;
    const section = path.length >= 1 ? owner.get(String(path[0])) : undefined;
    return parts[entry ?? section ?? 0]!;
  };
  const tree: YamlTree = {
    data,
    located: (path) => partOf(path).tree.located(path),
    link: (to, from) => partOf(from).tree.link(to, from),
    diagnostics: [],
  };
  return { data, tree, fileOf: (path) => partOf(path).file };
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
