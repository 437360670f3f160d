import { describe, expect, it } from 'vitest';
import { isSkiffError } from '../../../src/errors.js';
import { createIgnoreMatcher, parseDockerignore } from '../../../src/engine/dockerignore.js';

describe('engine/dockerignore', () => {
  describe('parseDockerignore', () => {
    it('skips comments and blank lines, trims and cleans patterns', () => {
      const text = '\uFEFF# comment\r\n\r\n  tmp  \n./a//b/\n/abs\n! keep\n!./x/../y\n  # not a comment\n';
      expect(parseDockerignore(text)).toEqual(['tmp', 'a/b', 'abs', '!keep', '!y', '# not a comment']);
    });
  });

  describe('createIgnoreMatcher', () => {
    it.each<[string[], string, boolean]>([
      [['*.md'], 'README.md', true],
      [['*.md'], 'docs/README.md', false],
      [['**/*.md'], 'README.md', true],
      [['**/*.md'], 'docs/a/README.md', true],
      [['docs'], 'docs/a/b.txt', true],
      [['docs'], 'docsx/a', false],
      [['docs', '!docs/keep.txt'], 'docs/keep.txt', false],
      [['docs', '!docs/keep.txt'], 'docs/other.txt', true],
      [['*', '!src'], 'src/a.ts', false],
      [['*', '!src'], 'other/a.ts', true],
      [['a?c'], 'abc', true],
      [['a?c'], 'a/c', false],
      [['[ab].txt'], 'a.txt', true],
      [['[ab].txt'], 'c.txt', false],
      [['[^a].txt'], 'c.txt', true],
      [['\\*.txt'], '*.txt', true],
      [['\\*.txt'], 'a.txt', false],
      [['x.txt'], 'xatxt', false],
      [['**'], 'any/thing', true],
      [['foo/**'], 'foo/bar', true],
      [['foo/**'], 'foo', false],
      [['**/node_modules'], 'a/b/node_modules/x.js', true],
      [['**/node_modules'], 'node_modules/x.js', true],
      [['a/**/b'], 'a/b', true],
      [['a/**/b'], 'a/x/y/b', true],
      [['a/**/b'], 'a/x/y/c', false],
      [['.git'], '.git/HEAD', true],
      [['!a', 'a'], 'a', true],
      [['a', '!a'], 'a', false],
      [['a', '!a', 'a'], 'a', true],
      [['a*', '!ab', 'abc'], 'ab', false],
      [['(x)+{y}$'], '(x)+{y}$', true],
      [[], 'anything', false],
    ])('%j excludes %s: %s', (patterns, path, expected) => {
      expect(createIgnoreMatcher(patterns).excludes(path)).toBe(expected);
    });

    it('reopens an excluded directory only for exceptions that start with it, as the CLI does', () => {
      expect(createIgnoreMatcher(['docs', '!docs/keep.txt']).mayIncludeInside('docs')).toBe(true);
      expect(createIgnoreMatcher(['docs', '!docs/sub/keep.txt']).mayIncludeInside('docs/sub')).toBe(true);
      expect(createIgnoreMatcher(['docs', '!**/keep.txt']).mayIncludeInside('docs')).toBe(false);
      expect(createIgnoreMatcher(['docs']).mayIncludeInside('docs')).toBe(false);
    });

    it('refuses a bare "!"', () => {
      let caught: unknown;
      try {
        createIgnoreMatcher(['!']);
      } catch (err) {
        caught = err;
      }
      expect(isSkiffError(caught, 'SOURCE_INVALID')).toBe(true);
    });

    it('refuses a pattern that cannot be compiled, naming it', () => {
      expect(() => createIgnoreMatcher(['[unclosed'])).toThrow('[unclosed');
    });
  });
});
