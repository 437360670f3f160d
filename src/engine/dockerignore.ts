// `.dockerignore` semantics as the Docker CLI applies them when it sends a build context:
// - `#` at the start of a line is a comment; blank lines are skipped; patterns are trimmed and
//   cleaned like paths (`./a//b/` is `a/b`, a leading `/` is dropped);
// - `*` and `?` never cross `/`, `**` crosses any number of directories, `[...]` is a class,
//   `\` escapes the next character;
// - a pattern matches a path or any of its parent directories;
// - the last matching pattern wins, and `!pattern` re-includes what earlier patterns excluded.

import { posix } from 'node:path';
import { SkiffError } from '../errors.js';

export interface IgnorePattern {
  /** The cleaned pattern, without its `!`. */
  pattern: string;
  /** True for `!pattern` (re-include). */
  exception: boolean;
  regexp: RegExp;
}

export interface IgnoreMatcher {
  patterns: readonly IgnorePattern[];
  /** Whether the context-relative, `/`-separated path is excluded. */
  excludes(path: string): boolean;
  /**
   * Whether a walk must still descend into an excluded directory because an exception pattern
   * starts with it (the CLI's rule; `!**\/x` alone does not reopen a directory).
   */
  mayIncludeInside(dir: string): boolean;
}

/** Reads the patterns of a `.dockerignore` file, `!` kept as a prefix. */
export function parseDockerignore(text: string): string[] {
  const patterns: string[] = [];
  const lines = text.replace(/^\uFEFF/, '').split(/\r?\n/);
  for (const raw of lines) {
    if (raw.startsWith('#')) continue;
    let pattern = raw.trim();
    if (pattern.length === 0) continue;
    const exception = pattern.startsWith('!');
    if (exception) pattern = pattern.slice(1).trim();
    if (pattern.length > 0) pattern = cleanPattern(pattern);
    patterns.push(exception ? `!${pattern}` : pattern);
  }
  return patterns;
}

function cleanPattern(pattern: string): string {
  let cleaned = posix.normalize(pattern);
  if (cleaned.length > 1 && cleaned.endsWith('/')) cleaned = cleaned.slice(0, -1);
  if (cleaned.length > 1 && cleaned.startsWith('/')) cleaned = cleaned.slice(1);
  return cleaned;
}

const REGEXP_SPECIAL = new Set(['.', '+', '(', ')', '|', '{', '}', '$', '^']);

function compile(pattern: string): RegExp {
  let source = '^';
  let inClass = false;
  for (let i = 0; i < pattern.length; i++) {
    const ch = pattern[i] as string;
    if (inClass) {
      if (ch === ']') inClass = false;
      if (ch === '\\' && i + 1 < pattern.length) {
        source += `\\${pattern[++i]}`;
        continue;
      }
      source += ch;
      continue;
    }
    if (ch === '*') {
      if (pattern[i + 1] === '*') {
        i++;
        if (pattern[i + 1] === '/') i++;
        source += i + 1 >= pattern.length ? '.*' : '(?:.*/)?';
      } else {
        source += '[^/]*';
      }
    } else if (ch === '?') {
      source += '[^/]';
    } else if (ch === '\\') {
      source += i + 1 < pattern.length ? `\\${pattern[++i]}` : '\\\\';
    } else if (ch === '[') {
      inClass = true;
      // Passed through to the regexp as the CLI does: `[^…]` negates, `[!…]` does not.
      source += '[';
    } else if (REGEXP_SPECIAL.has(ch)) {
      source += `\\${ch}`;
    } else {
      source += ch;
    }
  }
  source += '$';
  try {
    return new RegExp(source);
  } catch (cause) {
    throw new SkiffError('SOURCE_INVALID', `invalid .dockerignore pattern "${pattern}"`, { cause });
  }
}

/** Compiles patterns (as returned by parseDockerignore). Throws SOURCE_INVALID on a bad one. */
export function createIgnoreMatcher(lines: readonly string[]): IgnoreMatcher {
  const patterns: IgnorePattern[] = [];
  for (const line of lines) {
    const exception = line.startsWith('!');
    const pattern = exception ? line.slice(1) : line;
    if (pattern.length === 0) {
      throw new SkiffError('SOURCE_INVALID', 'invalid .dockerignore pattern "!": nothing to re-include');
    }
    patterns.push({ pattern, exception, regexp: compile(pattern) });
  }

  function excludes(path: string): boolean {
    const parents = posix.dirname(path) === '.' ? [] : posix.dirname(path).split('/');
    let matched = false;
    for (const entry of patterns) {
      // An exclusion cannot change an excluded path, an exception cannot change an included one.
      if (entry.exception !== matched) continue;
      let match = entry.regexp.test(path);
      for (let i = 1; !match && i <= parents.length; i++) {
        match = entry.regexp.test(parents.slice(0, i).join('/'));
      }
      if (match) matched = !entry.exception;
    }
    return matched;
  }

  function mayIncludeInside(dir: string): boolean {
    const prefix = `${dir}/`;
    return patterns.some((entry) => entry.exception && `${entry.pattern}/`.startsWith(prefix));
  }

  return { patterns, excludes, mayIncludeInside };
}
