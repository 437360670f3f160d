import { describe, expect, it } from 'vitest';
import { isSkiffError } from '../../../src/errors.js';
import { DISABLED_HASH, RANDOM_SALT_MARK, isRandomHash, passwordPolicy, planPassword, sha512Hasher } from '../../../src/users/password.js';
import type { PasswordHasher } from '../../../src/users/password.js';
import { sha512Crypt } from '../../../src/users/sha512-crypt.js';

const hasher: PasswordHasher = { hash: (p) => `HASH(${p})`, randomHash: () => 'RANDOM' };
const OUR_RANDOM = sha512Crypt('whatever', `${RANDOM_SALT_MARK}AbCdEfGhIjK`, 1000);
const SOMEONES = sha512Crypt('hunter2', 'AbCdEfGhIjKlMnOp', 1000);

describe('users/password', () => {
  describe('passwordPolicy', () => {
    it.each([
      [undefined, { kind: 'random' }],
      [{}, { kind: 'random' }],
      [{ password: '' }, { kind: 'random' }],
      [{ password: 's3cret' }, { kind: 'password', password: 's3cret' }],
      [{ allowEmptyPassword: true }, { kind: 'empty' }],
      [
        { password: 's3cret', allowEmptyPassword: true },
        { kind: 'password', password: 's3cret' },
      ],
      [{ locked: true }, { kind: 'disabled' }],
      [{ locked: true, allowEmptyPassword: true }, { kind: 'disabled' }],
    ] as const)('%j -> %j', (auth, policy) => {
      expect(passwordPolicy(auth).policy).toEqual(policy);
    });

    it('warns that a password is ignored when locked', () => {
      expect(passwordPolicy({ locked: true, password: 'x' }).warnings).toEqual(['auth.password is ignored because auth.locked is set']);
    });

    it('rejects a password with a newline', () => {
      let err: unknown;
      try {
        passwordPolicy({ password: 'a\nb' });
      } catch (e) {
        err = e;
      }
      expect(isSkiffError(err, 'CONFIG_INVALID')).toBe(true);
    });
  });

  describe('planPassword', () => {
    it.each([
      ['locked: a usable hash becomes "*", never "!"', { kind: 'disabled' }, SOMEONES, { kind: 'set-hash', hash: '*' }],
      ['locked: a "!" lock from passwd -l becomes "*"', { kind: 'disabled' }, '!$6$x$y', { kind: 'set-hash', hash: '*' }],
      ['locked: "*" stays', { kind: 'disabled' }, '*', { kind: 'keep' }],
      ['password: a matching hash stays', { kind: 'password', password: 'hunter2' }, SOMEONES, { kind: 'keep' }],
      [
        'password: another password is replaced',
        { kind: 'password', password: 'other' },
        SOMEONES,
        { kind: 'set-hash', hash: 'HASH(other)' },
      ],
      [
        'password: an unverifiable scheme is replaced',
        { kind: 'password', password: 'x' },
        '$y$j9T$a$b',
        { kind: 'set-hash', hash: 'HASH(x)' },
      ],
      ['password: no hash at all', { kind: 'password', password: 'x' }, undefined, { kind: 'set-hash', hash: 'HASH(x)' }],
      ['empty: "" stays', { kind: 'empty' }, '', { kind: 'keep' }],
      ['empty: a hash is cleared', { kind: 'empty' }, SOMEONES, { kind: 'clear' }],
      ['random: our random hash stays (set once)', { kind: 'random' }, OUR_RANDOM, { kind: 'keep' }],
      ['random: a new account ("!") gets one', { kind: 'random' }, '!', { kind: 'set-hash', hash: 'RANDOM' }],
      ['random: "*" gets one', { kind: 'random' }, '*', { kind: 'set-hash', hash: 'RANDOM' }],
      ['random: an empty password gets one', { kind: 'random' }, '', { kind: 'set-hash', hash: 'RANDOM' }],
      ['random: a password removed from the config is revoked', { kind: 'random' }, SOMEONES, { kind: 'set-hash', hash: 'RANDOM' }],
      ['random: no shadow entry', { kind: 'random' }, undefined, { kind: 'set-hash', hash: 'RANDOM' }],
    ] as const)('%s', (_, policy, current, action) => {
      expect(planPassword(policy, current, hasher)).toEqual(action);
    });

    it('uses "*" as the disabled hash', () => {
      expect(DISABLED_HASH).toBe('*');
    });
  });

  describe('sha512Hasher', () => {
    it('hashes a password so that the plan keeps it next time', () => {
      const hash = sha512Hasher.hash('correct horse');
      expect(hash).toMatch(/^\$6\$rounds=20000\$[./0-9A-Za-z]{16}\$/);
      expect(planPassword({ kind: 'password', password: 'correct horse' }, hash, hasher)).toEqual({ kind: 'keep' });
      expect(isRandomHash(hash)).toBe(false);
    });

    it('makes random hashes that are recognisable and kept', () => {
      const a = sha512Hasher.randomHash();
      const b = sha512Hasher.randomHash();
      expect(a).not.toBe(b);
      expect(isRandomHash(a)).toBe(true);
      expect(planPassword({ kind: 'random' }, a, hasher)).toEqual({ kind: 'keep' });
    });
  });
});
