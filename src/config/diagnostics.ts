// Problems found in a config file, each pinned to a place a person can open in an editor.

export type Severity = 'error' | 'warning';
export type ConfigPath = readonly (string | number)[];

export interface Position {
  line: number;
  col: number;
}

export interface Diagnostic {
  severity: Severity;
  file: string;
  /** Where in the config tree, e.g. ["containers", "core", "mounts", 2]. */
  path: ConfigPath;
  message: string;
  /** 1-based; absent only when the problem has no place in the file (e.g. it is unreadable). */
  position?: Position;
  /** Other places involved, e.g. the first of two conflicting duplicate keys. */
  related?: Position[];
}

const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_-]*$/;

/** `containers.core.mounts[2]`, `images["skiffos/core:latest"].pull` */
export function formatPath(path: ConfigPath): string {
  let out = '';
  for (const part of path) {
    if (typeof part === 'number') out += `[${part}]`;
    else if (IDENTIFIER.test(part)) out += out === '' ? part : `.${part}`;
    else out += `[${JSON.stringify(part)}]`;
  }
  return out === '' ? '(top level)' : out;
}

/** `FILE:LINE:COL: path: message`, the form compilers use so editors and terminals link it. */
export function formatDiagnostic(d: Diagnostic): string {
  const where = d.position ? `${d.file}:${d.position.line}:${d.position.col}` : d.file;
  const level = d.severity === 'warning' ? 'warning: ' : '';
  const also = d.related?.length ? ` (see also ${d.related.map((p) => `line ${p.line}:${p.col}`).join(', ')})` : '';
  return `${where}: ${level}${formatPath(d.path)}: ${d.message}${also}`;
}

export function byPosition(a: Diagnostic, b: Diagnostic): number {
  const la = a.position?.line ?? 0;
  const lb = b.position?.line ?? 0;
  return la - lb || (a.position?.col ?? 0) - (b.position?.col ?? 0);
}
