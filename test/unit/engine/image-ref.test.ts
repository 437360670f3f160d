import { describe, expect, it } from 'vitest';
import { isSkiffError } from '../../../src/errors.js';
import { normalizeImageRef, parseImageRef, sameImageRef, splitRepoTag, withRegistry } from '../../../src/engine/image-ref.js';

const DIGEST = 'sha256:4c10dad67b09e520cad03d29ebdef26f8d5c941c0a67e48712ecc08ecfca123e';

describe('engine/image-ref', () => {
  describe('normalizeImageRef', () => {
    it.each([
      ['ubuntu', 'docker.io/library/ubuntu:latest'],
      ['ubuntu:latest', 'docker.io/library/ubuntu:latest'],
      ['ubuntu:22.04', 'docker.io/library/ubuntu:22.04'],
      ['library/ubuntu', 'docker.io/library/ubuntu:latest'],
      ['docker.io/library/ubuntu:latest', 'docker.io/library/ubuntu:latest'],
      ['docker.io/ubuntu', 'docker.io/library/ubuntu:latest'],
      ['index.docker.io/library/ubuntu', 'docker.io/library/ubuntu:latest'],
      ['foo/bar', 'docker.io/foo/bar:latest'],
      ['skiffos/skiff-core-gentoo:latest', 'docker.io/skiffos/skiff-core-gentoo:latest'],
      ['quay.io/skiffos/x', 'quay.io/skiffos/x:latest'],
      ['127.0.0.1:5000/x', '127.0.0.1:5000/x:latest'],
      ['127.0.0.1:5000/a/b:1.2', '127.0.0.1:5000/a/b:1.2'],
      ['localhost/x', 'localhost/x:latest'],
      ['localhost:5000/x:y', 'localhost:5000/x:y'],
      [`ubuntu@${DIGEST}`, `docker.io/library/ubuntu@${DIGEST}`],
      [`ubuntu:22.04@${DIGEST}`, `docker.io/library/ubuntu:22.04@${DIGEST}`],
      [`127.0.0.1:5000/x@${DIGEST}`, `127.0.0.1:5000/x@${DIGEST}`],
      ['a_b-c__d/e.f', 'docker.io/a_b-c__d/e.f:latest'],
    ])('%s -> %s', (ref, expected) => {
      expect(normalizeImageRef(ref)).toBe(expected);
    });

    it.each([
      ['', 'empty'],
      ['Ubuntu', 'lowercase'],
      ['ubuntu:', 'bad tag'],
      ['ubuntu:-x', 'bad tag'],
      ['ubuntu@sha256:abc', 'bad digest'],
      ['foo//bar', 'bad path component'],
      ['foo bar', 'whitespace'],
      [':latest', 'no repository'],
      ['bad_host.example:port/x', 'bad registry host'],
      ['a_b.c/f', 'bad registry host'],
    ])('rejects %j (%s)', (ref, reason) => {
      let caught: unknown;
      try {
        normalizeImageRef(ref);
      } catch (err) {
        caught = err;
      }
      expect(isSkiffError(caught, 'CONFIG_INVALID')).toBe(true);
      expect((caught as Error).message).toContain(reason);
      expect((caught as Error).message).toContain(`"${ref}"`);
    });
  });

  describe('parseImageRef', () => {
    it('keeps an uppercase first component as a registry host, as the engine does', () => {
      expect(parseImageRef('Registry.Example/x')).toEqual({
        domain: 'Registry.Example',
        path: 'x',
        tag: undefined,
        digest: undefined,
      });
    });
  });

  describe('sameImageRef', () => {
    it.each([
      ['ubuntu', 'ubuntu:latest', true],
      ['ubuntu', 'docker.io/library/ubuntu:latest', true],
      ['foo/bar', 'docker.io/foo/bar:latest', true],
      ['ubuntu', 'ubuntu:22.04', false],
      ['127.0.0.1:5000/x', 'x', false],
      ['127.0.0.1:5000/x', '127.0.0.1:5000/x:latest', true],
      [`ubuntu@${DIGEST}`, 'ubuntu', false],
      ['foo/bar', 'library/foo/bar', false],
    ])('%s vs %s -> %s', (a, b, expected) => {
      expect(sameImageRef(a, b)).toBe(expected);
    });
  });

  describe('splitRepoTag', () => {
    it.each([
      ['ubuntu', { repo: 'ubuntu', tag: 'latest', digest: undefined }],
      ['ubuntu:22.04', { repo: 'ubuntu', tag: '22.04', digest: undefined }],
      ['127.0.0.1:5000/x', { repo: '127.0.0.1:5000/x', tag: 'latest', digest: undefined }],
      ['127.0.0.1:5000/a/b:1', { repo: '127.0.0.1:5000/a/b', tag: '1', digest: undefined }],
      ['docker.io/library/ubuntu:jammy', { repo: 'docker.io/library/ubuntu', tag: 'jammy', digest: undefined }],
      [`ubuntu@${DIGEST}`, { repo: 'ubuntu', tag: undefined, digest: DIGEST }],
      [`ubuntu:22.04@${DIGEST}`, { repo: 'ubuntu', tag: undefined, digest: DIGEST }],
      [`localhost:5000/x@${DIGEST}`, { repo: 'localhost:5000/x', tag: undefined, digest: DIGEST }],
    ])('%s', (ref, expected) => {
      expect(splitRepoTag(ref)).toEqual(expected);
    });
  });

  describe('withRegistry', () => {
    it.each([
      ['quay.io', 'skiffos/x:latest', 'quay.io/skiffos/x:latest'],
      ['quay.io', 'skiffos/x', 'quay.io/skiffos/x:latest'],
      ['quay.io/', 'skiffos/x:1', 'quay.io/skiffos/x:1'],
      ['quay.io', 'docker.io/library/ubuntu', 'quay.io/library/ubuntu:latest'],
      ['quay.io', 'index.docker.io/library/ubuntu:22.04', 'quay.io/library/ubuntu:22.04'],
      ['127.0.0.1:5000', 'ubuntu', '127.0.0.1:5000/ubuntu:latest'],
      ['127.0.0.1:5000', `skiffos/x@${DIGEST}`, `127.0.0.1:5000/skiffos/x@${DIGEST}`],
    ])('%s + %s -> %s', (registry, ref, expected) => {
      expect(withRegistry(registry, ref)).toBe(expected);
    });

    it.each([
      ['quay.io', 'ghcr.io/x/y', 'already names registry ghcr.io'],
      ['https://quay.io', 'x', 'invalid registry'],
      ['', 'x', 'invalid registry'],
    ])('refuses %j + %j', (registry, ref, message) => {
      expect(() => withRegistry(registry, ref)).toThrow(message);
    });
  });
});
