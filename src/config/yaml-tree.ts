// Turns YAML text into plain data plus a map from each value's path to where it was written.
// We walk the AST ourselves (rather than doc.toJS()) to keep positions, to see duplicate keys,
// and to bound the work an alias bomb or a deeply nested document can cause.
import { isAlias, isMap, isNode, isScalar, isSeq, LineCounter, parseDocument, visit, type Document, type Node as YamlNode } from 'yaml';
import type { ConfigPath, Diagnostic, Position } from './diagnostics.js';

export const LIMITS = {
  /** Bytes; real configs are a few KiB. */
  maxBytes: 1024 * 1024,
  /** Values visited, counting every alias expansion: stops "billion laughs" documents. */
  maxNodes: 100_000,
  maxDepth: 64,
} as const;

export interface Located {
  value?: Position;
  key?: Position;
  /** The scalar as written, so `password: 0123` can be read as the string "0123". */
  source?: string;
}

export interface YamlTree {
  /** Plain data (objects, arrays, strings, numbers, booleans, null). */
  data: unknown;
  located(path: ConfigPath): Located | undefined;
  /** Make `to` resolve to where `from` was written (after the loader renames a key). */
  link(to: ConfigPath, from: ConfigPath): void;
  diagnostics: Diagnostic[];
}

class LimitExceeded extends Error {}

const pathKey = (path: ConfigPath) => path.join('\u0000');

export function parseYamlTree(text: string, file: string): YamlTree {
  const diagnostics: Diagnostic[] = [];
  const positions = new Map<string, Located>();
  const lineCounter = new LineCounter();
  const located = (path: ConfigPath) => positions.get(pathKey(path));
  const link = (to: ConfigPath, from: ConfigPath) => {
    const where = positions.get(pathKey(from));
    if (where) positions.set(pathKey(to), where);
  };
  const empty = (data: unknown): YamlTree => ({ data, located, link, diagnostics });

  const doc = parseDocument(text, {
    lineCounter,
    uniqueKeys: false,
    merge: true,
    prettyErrors: true,
  });
  for (const err of doc.errors) {
    const pos = err.linePos?.[0];
    diagnostics.push({
      severity: 'error',
      file,
      path: [],
      message:
        err.code === 'MULTIPLE_DOCS'
          ? 'the file holds more than one YAML document (a "---" line); keep one'
          : `YAML syntax: ${firstLine(err.message)}`,
      ...(pos ? { position: { line: pos.line, col: pos.col } } : {}),
    });
  }
  if (diagnostics.length > 0) return empty(undefined);

  const at = (node: { range?: [number, number, number] | null } | null | undefined): Position | undefined => {
    const offset = node?.range?.[0];
    if (offset === undefined) return undefined;
    const { line, col } = lineCounter.linePos(offset);
    return { line, col };
  };
  const problem = (path: ConfigPath, message: string, position?: Position, severity: 'error' | 'warning' = 'error') =>
    diagnostics.push({ severity, file, path, message, ...(position ? { position } : {}) });

  const anchors = anchorIndex(doc as Document);
  let nodes = 0;
  function walk(node: unknown, path: (string | number)[], depth: number, keyPos?: Position): unknown {
    if (++nodes > LIMITS.maxNodes) throw new LimitExceeded(`expands to more than ${LIMITS.maxNodes} values (aliases copying aliases?)`);
    if (depth > LIMITS.maxDepth) throw new LimitExceeded(`nests deeper than ${LIMITS.maxDepth} levels`);
    const yamlNode = node as YamlNode | null;
    const here: Located = { ...(keyPos ? { key: keyPos } : {}) };
    const pos = at(yamlNode as { range?: [number, number, number] });
    if (pos) here.value = pos;
    positions.set(pathKey(path), here);

    if (yamlNode === null || yamlNode === undefined) return null;
    if (isAlias(yamlNode)) {
      const target = anchors(yamlNode.source, yamlNode.range?.[0] ?? Number.MAX_SAFE_INTEGER);
      if (!target) {
        problem(path, `alias *${yamlNode.source} names no anchor`, pos);
        return null;
      }
      const value = walk(target, path, depth + 1, keyPos);
      // Point at the alias, not the anchor it copies.
      positions.set(pathKey(path), here);
      return value;
    }
    if (isScalar(yamlNode)) {
      const v = yamlNode.value;
      if (typeof yamlNode.source === 'string') here.source = yamlNode.source;
      if (v === null || typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean') return v;
      problem(path, `unsupported YAML value (${yamlNode.tag ?? typeof v}); write a plain string, number or boolean`, pos);
      return null;
    }
    if (isSeq(yamlNode)) {
      return yamlNode.items.map((item, i) => walk(item, [...path, i], depth + 1));
    }
    if (isMap(yamlNode)) {
      const out: Record<string, unknown> = {};
      const firstSeen = new Map<string, Position | undefined>();
      const merges: unknown[] = [];
      for (const pair of yamlNode.items) {
        const keyNode = pair.key as YamlNode | null;
        const kPos = at(keyNode as { range?: [number, number, number] });
        if (isScalar(keyNode) && (typeof keyNode.value === 'symbol' || keyNode.value === '<<')) {
          merges.push(walk(pair.value, path, depth + 1));
          continue;
        }
        if (!isScalar(keyNode) || keyNode.value === null || typeof keyNode.value === 'object') {
          problem(path, 'keys must be plain strings', kPos);
          continue;
        }
        const key = String(keyNode.value);
        const value = walk(pair.value, [...path, key], depth + 1, kPos);
        if (Object.prototype.hasOwnProperty.call(out, key)) {
          const first = firstSeen.get(key);
          if (sameData(out[key], value)) {
            diagnostics.push({
              severity: 'warning',
              file,
              path: [...path, key],
              message: `"${key}" is written twice with the same value; delete one`,
              ...(kPos ? { position: kPos } : {}),
              ...(first ? { related: [first] } : {}),
            });
          } else {
            diagnostics.push({
              severity: 'error',
              file,
              path: [...path, key],
              message: `"${key}" is written twice with different values; keep one`,
              ...(kPos ? { position: kPos } : {}),
              ...(first ? { related: [first] } : {}),
            });
          }
          continue;
        }
        firstSeen.set(key, kPos);
        // defineProperty: a key named __proto__ must stay data, never reach the prototype.
        Object.defineProperty(out, key, { value, enumerable: true, writable: true, configurable: true });
      }
      // YAML merge keys (`<<: *base`): explicit keys win over merged ones.
      for (const merged of merges.flat()) {
        if (merged && typeof merged === 'object' && !Array.isArray(merged)) {
          for (const [k, v] of Object.entries(merged)) {
            if (!Object.prototype.hasOwnProperty.call(out, k)) {
              Object.defineProperty(out, k, { value: v, enumerable: true, writable: true, configurable: true });
            }
          }
        }
      }
      return out;
    }
    problem(path, 'unsupported YAML node', pos);
    return null;
  }

  try {
    return empty(walk(doc.contents, [], 0));
  } catch (err) {
    if (!(err instanceof LimitExceeded)) throw err;
    diagnostics.push({
      severity: 'error',
      file,
      path: [],
      message: `refused: the document ${err.message}; a config never needs that`,
      position: { line: 1, col: 1 },
    });
    return empty(undefined);
  }
}

function firstLine(message: string): string {
  const line = message.split('\n')[0] ?? message;
  return line.replace(/ at line \d+, column \d+:?$/, '');
}

export function sameData(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  const ka = Object.keys(a);
  const kb = Object.keys(b);
  if (ka.length !== kb.length) return false;
  return ka.every((k) => sameData((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k]));
}

/**
 * Finds an alias's anchor in O(log n): the last node before the alias that carries the name
 * (YAML lets a name be anchored again). yaml's own Alias.resolve walks the whole document for
 * each alias, which made 20,000 aliases take minutes.
 */
function anchorIndex(doc: Document): (name: string, before: number) => YamlNode | undefined {
  const byName = new Map<string, { offset: number; node: YamlNode }[]>();
  visit(doc, (_key, node) => {
    if (!isNode(node) || isAlias(node) || !node.anchor) return;
    const list = byName.get(node.anchor) ?? [];
    list.push({ offset: node.range?.[0] ?? 0, node });
    byName.set(node.anchor, list);
  });
  for (const list of byName.values()) list.sort((a, b) => a.offset - b.offset);
  return (name, before) => {
    const list = byName.get(name);
    if (!list) return undefined;
    let lo = 0;
    let hi = list.length - 1;
    let found: YamlNode | undefined;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      if (list[mid]!.offset < before) {
        found = list[mid]!.node;
        lo = mid + 1;
      } else hi = mid - 1;
    }
    return found;
  };
}
