// Reads a config file into a typed Config, or into a complete list of what is wrong with it.
// Order: bytes → YAML tree (positions, duplicates, limits) → old spellings → schema → cross-checks.
import { readFile, stat } from 'node:fs/promises';
import type { z } from 'zod';
import { closest } from './checks.js';
import { byPosition, type ConfigPath, type Diagnostic, type Position } from './diagnostics.js';
import { Config } from './schema.js';
import { LIMITS, parseYamlTree, sameData, type YamlTree } from './yaml-tree.js';
import { crossCheck } from './cross-check.js';
import { DROP_IN_DIR, listDropIns, mergeParts, type ConfigPart } from './drop-ins.js';

export { DROP_IN_DIR, listDropIns };

export type LoadResult =
  | { ok: true; config: Config; diagnostics: Diagnostic[]; /** The main file, then the drop-ins merged after it. */ files?: string[] }
  | { ok: false; diagnostics: Diagnostic[] };

export const DEFAULT_CONFIG_PATH = '/mnt/persist/skiff/core/config.yaml';

type FileOf = (path: ConfigPath) => string;
export interface ConfigInput {
  file: string;
  input: Uint8Array | string;
}

/**
 * The config file and its drop-ins (`config.d/*.yaml` beside it), merged and validated.
 * `candidate`, a drop-in not yet written (a restore's), is read as if it were on disk.
 */
export async function loadConfigFile(file: string, candidate?: ConfigInput): Promise<LoadResult> {
  const main = await readConfigInput(file);
  if (!('input' in main)) return { ok: false, diagnostics: [main] };
  const listed = await listDropIns(file);
  if (!Array.isArray(listed)) return { ok: false, diagnostics: [listed] };
  const fragments = candidate && !listed.includes(candidate.file) ? [...listed, candidate.file].sort(byName) : listed;
  const inputs: ConfigInput[] = [main];
  const problems: Diagnostic[] = [];
  for (const fragment of fragments) {
    const read = fragment === candidate?.file ? candidate : await readConfigInput(fragment);
    if ('input' in read) inputs.push(read);
    else problems.push(read);
  }
  if (problems.length) return { ok: false, diagnostics: problems };
  return parseConfigFiles(inputs);
}

function byName(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

async function readConfigInput(file: string): Promise<ConfigInput | Diagnostic> {
  const fail = (message: string): Diagnostic => ({ severity: 'error', file, path: [], message });
  try {
    const info = await stat(file);
    if (!info.isFile()) return fail('not a regular file');
    if (info.size > LIMITS.maxBytes) return fail(tooLarge(info.size));
    return { file, input: await readFile(file) };
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return fail('no such file (create one with `skiff-core defconfig FILE`)');
    if (code === 'EACCES') return fail('permission denied (run as root, or pass --config FILE)');
    return fail(`cannot read: ${(err as Error).message}`);
  }
}

function tooLarge(size: number): string {
  return `file is ${size} bytes, over the ${LIMITS.maxBytes}-byte limit for a config`;
}

export function parseConfig(input: Uint8Array | string, file: string): LoadResult {
  return parseConfigFiles([{ file, input }]);
}

/** The main file first, then its fragments: each read like a config, then merged and validated. */
export function parseConfigFiles(inputs: readonly ConfigInput[]): LoadResult {
  const diagnostics: Diagnostic[] = [];
  const hasErrors = () => diagnostics.some((d) => d.severity === 'error');
  const parts: ConfigPart[] = [];
  for (const [index, { file, input }] of inputs.entries()) {
    const text = decode(input, file);
    if (typeof text !== 'string') {
      diagnostics.push(text);
      continue;
    }
    const tree = parseYamlTree(text, file);
    diagnostics.push(...tree.diagnostics);
    if (tree.data === undefined) continue;
    let data = tree.data;
    if (data === null) {
      if (index === 0)
        diagnostics.push(warning(file, [], 'the file is empty: no images, containers or users are managed', { line: 1, col: 1 }));
      data = {};
    }
    if (!isRecord(data)) {
      diagnostics.push({
        severity: 'error',
        file,
        path: [],
        message: `${index === 0 ? 'the config' : 'a drop-in'} must be a mapping with the keys containers, users and images`,
        position: tree.located([])?.value ?? { line: 1, col: 1 },
      });
      continue;
    }
    parts.push({ file, tree, data });
  }
  if (hasErrors() || parts.length !== inputs.length) return finish(diagnostics, inputs);

  const { data, tree, fileOf } = mergeParts(parts);
  diagnostics.push(...upgradeSpellings(data, tree, fileOf));
  const parsed = parseWithFixups(data, tree, fileOf, diagnostics);
  diagnostics.push(...crossCheck(data, fileOf, (path, onKey) => positionOf(tree, path, onKey)));

  if (!parsed || hasErrors()) return finish(diagnostics, inputs);
  return { ok: true, config: parsed, diagnostics: sorted(diagnostics, inputs), files: inputs.map((i) => i.file) };
}

function finish(diagnostics: Diagnostic[], files: readonly ConfigInput[] = []): LoadResult {
  return { ok: false, diagnostics: sorted(diagnostics, files) };
}

/** By file (the main file, then the drop-ins in order), then by position. */
function sorted(diagnostics: Diagnostic[], files: readonly ConfigInput[]): Diagnostic[] {
  const order = (d: Diagnostic) => files.findIndex((f) => f.file === d.file);
  return diagnostics.sort((a, b) => order(a) - order(b) || byPosition(a, b));
}

function decode(input: Uint8Array | string, file: string): string | Diagnostic {
  if (typeof input === 'string') return input.replace(/^\uFEFF/, '');
  if (input.byteLength > LIMITS.maxBytes) {
    return { severity: 'error', file, path: [], message: tooLarge(input.byteLength) };
  }
  try {
    return new TextDecoder('utf-8', { fatal: true, ignoreBOM: false }).decode(input);
  } catch {
    const offset = firstInvalidUtf8(input);
    const before = Buffer.from(input.subarray(0, offset)).toString('utf8');
    const lines = before.split('\n');
    return {
      severity: 'error',
      file,
      path: [],
      message: `not UTF-8 text (invalid byte 0x${(input[offset] ?? 0).toString(16)}); save the file as UTF-8`,
      position: { line: lines.length, col: (lines[lines.length - 1]?.length ?? 0) + 1 },
    };
  }
}

/** Offset of the first byte that does not start or continue a valid UTF-8 sequence. */
function firstInvalidUtf8(bytes: Uint8Array): number {
  let i = 0;
  while (i < bytes.length) {
    const b = bytes[i]!;
    const need = b < 0x80 ? 0 : b >= 0xc2 && b < 0xe0 ? 1 : b >= 0xe0 && b < 0xf0 ? 2 : b >= 0xf0 && b < 0xf5 ? 3 : -1;
    if (need < 0) return i;
    for (let k = 1; k <= need; k++) {
      if (((bytes[i + k] ?? 0) & 0xc0) !== 0x80) return i;
    }
    i += need + 1;
  }
  return i;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function warning(file: string, path: ConfigPath, message: string, position?: Position): Diagnostic {
  return { severity: 'warning', file, path, message, ...(position ? { position } : {}) };
}

function positionOf(tree: YamlTree, path: ConfigPath, onKey = false): Position | undefined {
  // Missing keys have no place of their own: point at the nearest thing that was written.
  for (let n = path.length; n >= 0; n--) {
    const where = tree.located(path.slice(0, n));
    if (!where) continue;
    const pos = onKey || n < path.length ? (where.key ?? where.value) : (where.value ?? where.key);
    if (pos) return pos;
  }
  return undefined;
}

/**
 * Spellings that SkiffOS's own defaults and docs use but the original silently ignored or
 * rejected. We honour them and say what to write instead.
 */
function upgradeSpellings(data: Record<string, unknown>, tree: YamlTree, fileOf: FileOf): Diagnostic[] {
  const out: Diagnostic[] = [];
  const images = isRecord(data.images) ? data.images : {};
  for (const [ref, image] of Object.entries(images)) {
    if (!isRecord(image)) continue;
    const pull = image.pull;
    if (isRecord(pull) && Object.prototype.hasOwnProperty.call(pull, 'policy')) {
      const path = ['images', ref, 'pull'];
      const keyPos = positionOf(tree, [...path, 'policy'], true);
      if (!Object.prototype.hasOwnProperty.call(pull, 'pullPolicy')) {
        out.push(warning(fileOf(path), [...path, 'policy'], '"policy" is read as "pullPolicy"; write pullPolicy', keyPos));
        pull.pullPolicy = pull.policy;
        tree.link([...path, 'pullPolicy'], [...path, 'policy']);
      } else if (sameData(pull.policy, pull.pullPolicy)) {
        out.push(warning(fileOf(path), [...path, 'policy'], '"policy" repeats "pullPolicy"; delete it', keyPos));
      } else {
        out.push({
          severity: 'error',
          file: fileOf(path),
          path: [...path, 'policy'],
          message: '"policy" and "pullPolicy" disagree; keep only pullPolicy',
          ...(keyPos ? { position: keyPos } : {}),
        });
      }
      delete pull.policy;
    }
    if (isRecord(pull) && typeof pull.pullPolicy === 'string') {
      const given = pull.pullPolicy;
      const wanted = given.toLowerCase() === 'ifnotexists' ? 'ifnotpresent' : given.toLowerCase();
      if (wanted !== given && ['always', 'ifnotpresent', 'ifbuildfails'].includes(wanted)) {
        const path = ['images', ref, 'pull', 'pullPolicy'];
        out.push(warning(fileOf(path), path, `"${given}" is read as "${wanted}"; write ${wanted}`, positionOf(tree, path)));
        pull.pullPolicy = wanted;
      }
    }
    const build = image.build;
    if (isRecord(build) && build.scratchBuild === true) {
      const path = ['images', ref, 'build', 'scratchBuild'];
      out.push(
        warning(fileOf(path), path, 'scratchBuild is deprecated and ignored; the image is built normally', positionOf(tree, path, true)),
      );
    }
  }
  const containers = isRecord(data.containers) ? data.containers : {};
  for (const [name, container] of Object.entries(containers)) {
    if (isRecord(container) && container.restartPolicy === 'never') {
      const path = ['containers', name, 'restartPolicy'];
      out.push(warning(fileOf(path), path, '"never" is read as "no"; write no', positionOf(tree, path)));
      container.restartPolicy = 'no';
    }
  }
  return out;
}

const YAML11_BOOLEANS: Record<string, boolean> = {
  yes: true,
  no: false,
  on: true,
  off: false,
  y: true,
  n: false,
  true: true,
  false: false,
};

/**
 * Validate against the schema. Scalars that YAML 1.2 types differently from the YAML 1.1 parser
 * of the original (`tty: yes`, `containerUser: 1000`) are read the old way and validated again.
 */
function parseWithFixups(data: Record<string, unknown>, tree: YamlTree, fileOf: FileOf, diagnostics: Diagnostic[]): Config | undefined {
  for (let attempt = 0; attempt < 3; attempt++) {
    const result = Config.safeParse(data);
    if (result.success) return result.data;
    let fixed = false;
    for (const issue of result.error.issues) {
      if (issue.code !== 'invalid_type' && issue.code !== 'invalid_union') continue;
      const path = issue.path.filter((p): p is string | number => typeof p !== 'symbol');
      const raw = getAt(data, path);
      if (
        issue.code === 'invalid_type' &&
        issue.expected === 'boolean' &&
        typeof raw === 'string' &&
        raw.toLowerCase() in YAML11_BOOLEANS
      ) {
        const value = YAML11_BOOLEANS[raw.toLowerCase()]!;
        diagnostics.push(warning(fileOf(path), path, `"${raw}" is read as ${value}; write ${value}`, positionOf(tree, path)));
        fixed = setAt(data, path, value) || fixed;
      } else if (expectsString(issue) && (typeof raw === 'number' || typeof raw === 'boolean')) {
        fixed = setAt(data, path, tree.located(path)?.source ?? String(raw)) || fixed;
      }
    }
    if (!fixed) {
      diagnostics.push(...result.error.issues.flatMap((issue) => describeIssue(issue, data, tree, fileOf)));
      return undefined;
    }
  }
  return undefined;
}

/** The YAML 1.1 reading of an unquoted number or boolean, where the schema wants a string. */
function expectsString(issue: z.core.$ZodIssue): boolean {
  if (issue.code === 'invalid_type') return issue.expected === 'string';
  if (issue.code === 'invalid_union') {
    return issue.errors.some((branch) => branch.length === 1 && branch[0]?.code === 'invalid_type' && branch[0].expected === 'string');
  }
  return false;
}

function getAt(data: unknown, path: ConfigPath): unknown {
  let cur = data;
  for (const part of path) {
    if (typeof cur !== 'object' || cur === null) return undefined;
    cur = (cur as Record<string | number, unknown>)[part];
  }
  return cur;
}

function setAt(data: unknown, path: ConfigPath, value: unknown): boolean {
  const parent = getAt(data, path.slice(0, -1));
  const last = path[path.length - 1];
  if (typeof parent !== 'object' || parent === null || last === undefined) return false;
  (parent as Record<string | number, unknown>)[last] = value;
  return true;
}

function describeIssue(issue: z.core.$ZodIssue, data: unknown, tree: YamlTree, fileOf: FileOf): Diagnostic[] {
  const path = issue.path.filter((p): p is string | number => typeof p !== 'symbol');
  const error = (p: ConfigPath, message: string, position: Position | undefined): Diagnostic => ({
    severity: 'error',
    file: fileOf(p),
    path: p,
    message,
    ...(position ? { position } : {}),
  });
  switch (issue.code) {
    case 'unrecognized_keys': {
      const known = knownKeys(path);
      return issue.keys.map((key) => {
        const hint = closest(key, known);
        const message = hint ? `unknown key "${key}"; did you mean "${hint}"?` : `unknown key "${key}" (known here: ${known.join(', ')})`;
        return error([...path, key], message, positionOf(tree, [...path, key], true));
      });
    }
    case 'invalid_key': {
      const inner = issue.issues[0]?.message ?? 'invalid key';
      return [error(path, inner, positionOf(tree, path, true))];
    }
    case 'invalid_type': {
      const raw = getAt(data, path);
      if (raw === undefined) {
        const key = path[path.length - 1];
        return [error(path, `missing required key "${String(key)}"`, positionOf(tree, path.slice(0, -1), true))];
      }
      return [error(path, `expected ${article(issue.expected)}, found ${describeValue(raw)}`, positionOf(tree, path))];
    }
    case 'invalid_value':
      return [
        error(
          path,
          `${JSON.stringify(getAt(data, path))} is not one of: ${issue.values.map((v) => String(v)).join(', ')}`,
          positionOf(tree, path),
        ),
      ];
    case 'too_small':
    case 'too_big': {
      const bound = issue.code === 'too_small' ? 'at least' : 'at most';
      const what =
        issue.origin === 'array'
          ? `${bound} ${String(issue.code === 'too_small' ? issue.minimum : issue.maximum)} item(s)`
          : issue.origin === 'string'
            ? `${bound} ${String(issue.code === 'too_small' ? issue.minimum : issue.maximum)} character(s)`
            : `${bound} ${String(issue.code === 'too_small' ? issue.minimum : issue.maximum)}`;
      return [error(path, `must be ${what}`, positionOf(tree, path))];
    }
    case 'invalid_union': {
      // A branch that got as far as a format check says best what is wrong (`nproc: "20:10"`).
      const checked = issue.errors.find((branch) => branch.length === 1 && branch[0]?.code === 'custom')?.[0];
      const message = checked?.message ?? `unexpected value: ${describeValue(getAt(data, path))}`;
      return [error(path, message, positionOf(tree, path))];
    }
    default:
      return [error(path, issue.message, positionOf(tree, path, Boolean((issue as { params?: { onKey?: boolean } }).params?.onKey)))];
  }
}

function article(type: string): string {
  const words: Record<string, string> = {
    string: 'a string',
    boolean: 'true or false',
    number: 'a number',
    int: 'a whole number',
    array: 'a list',
    object: 'a mapping',
    record: 'a mapping',
  };
  return words[type] ?? type;
}

function describeValue(value: unknown): string {
  if (value === null || value === undefined) return 'an empty value';
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'object') return 'a mapping';
  return `${typeof value} ${JSON.stringify(value)}`;
}

interface SchemaDef {
  type: string;
  shape?: Record<string, { def: SchemaDef }>;
  innerType?: { def: SchemaDef };
  valueType?: { def: SchemaDef };
  element?: { def: SchemaDef };
  in?: { def: SchemaDef };
}

/** Keys the schema allows at `path`, for "did you mean" hints. */
function knownKeys(path: ConfigPath): string[] {
  let def = (Config as unknown as { def: SchemaDef }).def;
  const unwrap = () => {
    while (def.innerType || (def.type === 'pipe' && def.in)) def = (def.innerType ?? def.in)!.def;
  };
  unwrap();
  for (const part of path) {
    if (def.type === 'object' && def.shape && typeof part === 'string' && def.shape[part]) def = def.shape[part].def;
    else if (def.type === 'record' && def.valueType) def = def.valueType.def;
    else if (def.type === 'array' && def.element) def = def.element.def;
    else return [];
    unwrap();
  }
  return def.type === 'object' && def.shape ? Object.keys(def.shape) : [];
}
