import ssh2, { type ParsedKey } from 'ssh2';
import { describe, expect, it } from 'vitest';
import { Config, User } from '../../../src/config/schema.js';
import {
  advertisedMethods,
  createFailureLimiter,
  credentialsFor,
  decide,
  findKey,
  passwordMatches,
  type AuthRequest,
  type Credentials,
} from '../../../src/ssh/auth.js';
import { ed25519KeyPair } from '../../../src/ssh/openssh-key.js';

function keyPair(type: 'ed25519' | 'rsa' = 'ed25519') {
  const pair = type === 'rsa' ? ssh2.utils.generateKeyPairSync('rsa', { bits: 2048 }) : ed25519KeyPair();
  const priv = ssh2.utils.parseKey(pair.private) as ParsedKey;
  return { line: pair.public, priv, blob: priv.getPublicSSH() };
}

const alice = keyPair();
const root = keyPair();
const stranger = keyPair();
const rsa = keyPair('rsa');

const user = (auth: Record<string, unknown> = {}) => User.parse({ container: 'core', auth });

/** A publickey request as the client sends it: a query (no signature) or signed session data. */
function pk(key: ReturnType<typeof keyPair>, signWith?: ParsedKey, hashAlgo?: string): AuthRequest {
  const blob = Buffer.from('session id and userauth request');
  return {
    method: 'publickey',
    key: { algo: key.priv.type, data: key.blob },
    ...(signWith ? { blob, signature: signWith.sign(blob, hashAlgo), hashAlgo } : {}),
  };
}

describe('ssh/auth', () => {
  describe('credentialsFor', () => {
    it("takes sshKeys, and root's keys only with copyRootKeys", () => {
      const rootText = `# root\n${root.line}\n`;
      expect(credentialsFor(user({ sshKeys: [alice.line] }), rootText).credentials.keys.map((k) => k.getPublicSSH())).toEqual([alice.blob]);
      const both = credentialsFor(user({ sshKeys: [alice.line], copyRootKeys: true }), rootText).credentials.keys;
      expect(both.map((k) => k.getPublicSSH())).toEqual([root.blob, alice.blob]);
    });

    it('skips root keys restricted by authorized_keys options (the gateway cannot honour them)', () => {
      const rootText = `from="10.0.0.1" ${root.line}\ncommand="backup" ${stranger.line}\n${alice.line}\n`;
      const result = credentialsFor(user({ copyRootKeys: true }), rootText);
      expect(result.credentials.keys.map((k) => k.getPublicSSH())).toEqual([alice.blob]);
      expect(result.skipped).toHaveLength(2);
    });

    it.each([
      [{}, undefined, false],
      [{ password: 'hunter2' }, 'hunter2', false],
      [{ password: 'hunter2', locked: true }, undefined, false],
      [{ password: '' }, undefined, false],
      [{ password: '', allowEmptyPassword: true }, undefined, true],
      [{ password: '', allowEmptyPassword: true, locked: true }, undefined, false],
      [{ allowEmptyPassword: true }, undefined, false],
    ])('auth %j: password %j, open %j', (auth, password, open) => {
      expect(credentialsFor(user(auth), undefined).credentials).toMatchObject({ password, open });
    });
  });

  describe('decide', () => {
    const creds: Credentials = { keys: [alice.priv, rsa.priv], password: undefined, open: false };
    const withPassword: Credentials = { ...creds, password: 'correct horse' };

    it.each<[string, AuthRequest, Credentials | undefined, string]>([
      ['a query for a configured key', pk(alice), creds, 'key-ok'],
      ['a signature by that key', pk(alice, alice.priv), creds, 'accept'],
      ['an RSA key signing with rsa-sha2-512', pk(rsa, rsa.priv, 'sha512'), creds, 'accept'],
      ['a signature by another key over a configured public key', pk(alice, stranger.priv), creds, 'reject'],
      ['a query for a key not configured', pk(stranger), creds, 'reject'],
      ['a signed key not configured', pk(stranger, stranger.priv), creds, 'reject'],
      ['a configured key of an unknown user', pk(alice, alice.priv), undefined, 'reject'],
      ['none for a user with keys', { method: 'none' }, creds, 'reject'],
      ['a password when none is configured', { method: 'password', password: '' }, creds, 'reject'],
      ['the right password', { method: 'password', password: 'correct horse' }, withPassword, 'accept'],
      ['a wrong password', { method: 'password', password: 'correct horse ' }, withPassword, 'reject'],
      ['keyboard-interactive', { method: 'keyboard-interactive' }, withPassword, 'reject'],
      ['none for an open account', { method: 'none' }, { ...creds, open: true }, 'accept'],
      ['an empty password for an open account', { method: 'password', password: '' }, { ...creds, open: true }, 'accept'],
      ['a password for an unknown user', { method: 'password', password: 'x' }, undefined, 'reject'],
    ])('%s → %s', (_what, request, credentials, expected) => {
      expect(decide(request, credentials)).toBe(expected);
    });

    it('finds a key by its public blob', () => {
      expect(findKey([alice.priv, rsa.priv], rsa.blob)).toBe(rsa.priv);
      expect(findKey([alice.priv], stranger.blob)).toBeUndefined();
    });
  });

  it('compares passwords by their hashes, so length and content do not change the work done', () => {
    expect(passwordMatches('s3cret', 's3cret')).toBe(true);
    expect(passwordMatches('s3cret', 's3cre')).toBe(false);
    expect(passwordMatches('s3cret', 's3cret\u0000')).toBe(false);
    expect(passwordMatches('', '')).toBe(true);
    expect(passwordMatches('pässwort', 'pässwort')).toBe(true);
  });

  it('advertises the same methods for every user name: password only if someone has one', () => {
    const cfg = (users: Record<string, unknown>) => Config.parse({ containers: { core: { image: 'debian:12' } }, users });
    expect(advertisedMethods(undefined)).toEqual(['publickey']);
    expect(advertisedMethods(cfg({ core: { container: 'core', auth: { sshKeys: [alice.line] } } }))).toEqual(['publickey']);
    expect(advertisedMethods(cfg({ core: { container: 'core', auth: { password: 'x', locked: true } } }))).toEqual(['publickey']);
    expect(advertisedMethods(cfg({ core: { container: 'core' }, dev: { container: 'core', auth: { password: 'x' } } }))).toEqual([
      'publickey',
      'password',
    ]);
  });

  describe('createFailureLimiter', () => {
    it('blocks a source at the limit within a minute, and forgets it as failures age out', () => {
      let t = 1_000_000;
      const limiter = createFailureLimiter({ max: () => 3, now: () => t });
      expect(limiter.fail('10.0.0.1')).toBe(1);
      t += 10_000;
      limiter.fail('10.0.0.1');
      expect(limiter.blocked('10.0.0.1')).toBe(false);
      t += 10_000;
      expect(limiter.fail('10.0.0.1')).toBe(3);
      expect(limiter.blocked('10.0.0.1')).toBe(true);
      expect(limiter.blocked('10.0.0.2')).toBe(false);
      // The first failure leaves the window: two remain.
      t += 40_001;
      expect(limiter.blocked('10.0.0.1')).toBe(false);
      t += 20_000;
      expect(limiter.fail('10.0.0.1')).toBe(1);
    });

    it('follows a changed limit', () => {
      let max = 5;
      const limiter = createFailureLimiter({ max: () => max, now: () => 0 });
      for (let i = 0; i < 3; i++) limiter.fail('a');
      expect(limiter.blocked('a')).toBe(false);
      max = 3;
      expect(limiter.blocked('a')).toBe(true);
    });
  });
});
