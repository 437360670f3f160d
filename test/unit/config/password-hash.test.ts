// auth.passwordHash: a password without plain text in the config, for the host account and the
// gateway alike; and the config file's mode when it does hold plain text.
import { mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../../src/config/load.js';
import { protectPlainPasswords } from '../../../src/config/secrets.js';
import { credentialsFor, decide } from '../../../src/ssh/auth.js';
import { passwordPolicy, planPassword, sha512Hasher } from '../../../src/users/password.js';

// openssl passwd -6 -salt abcdefgh s3cret
const HASH = '$6$abcdefgh$Z7KfoKnKTSZrzo5VZ0YubGLQOj9ov6sHo9TmE3zIU/LHKhpE30zCnZ0mcIXYf9r9rQ4DYaXoxAFSPFlcWdxjB.';
const config = (auth: string) => `containers:\n  core:\n    image: a:1\nusers:\n  u:\n    container: core\n    auth:\n${auth}`;

describe('auth.passwordHash', () => {
  it('is accepted as a SHA-512 crypt hash and checked by the gateway', () => {
    const r = parseConfig(config(`      passwordHash: "${HASH}"\n`), '/c.yaml');
    if (!r.ok) throw new Error(JSON.stringify(r.diagnostics));
    const { credentials } = credentialsFor(r.config.users['u']!, undefined);
    expect(decide({ method: 'password', user: 'u', password: 's3cret' } as never, credentials)).toBe('accept');
    expect(decide({ method: 'password', user: 'u', password: 'wrong' } as never, credentials)).toBe('reject');
  });

  it('sets exactly that hash on the host account, once', () => {
    const { policy } = passwordPolicy({ passwordHash: HASH });
    expect(planPassword(policy, undefined, sha512Hasher)).toEqual({ kind: 'set-hash', hash: HASH });
    expect(planPassword(policy, HASH, sha512Hasher)).toEqual({ kind: 'keep' });
  });

  it('refuses what is not a SHA-512 crypt hash, too many rounds, and a plain password beside it', () => {
    const bad = parseConfig(config('      passwordHash: "$1$abc$def"\n'), '/c.yaml');
    expect(bad.ok).toBe(false);
    expect(bad.diagnostics[0]).toMatchObject({ position: { line: 8, col: 21 }, message: expect.stringContaining('openssl passwd -6') });
    const slow = parseConfig(config(`      passwordHash: "${HASH.replace('$6$', '$6$rounds=999999999$')}"\n`), '/c.yaml');
    expect(slow.ok).toBe(false);
    expect(slow.diagnostics[0]?.message).toContain('999999999 rounds');
    const both = parseConfig(config(`      password: x\n      passwordHash: "${HASH}"\n`), '/c.yaml');
    expect(both.ok).toBe(false);
    expect(both.diagnostics.map((d) => d.message).join()).toContain('and password are both set');
  });
});

describe('protectPlainPasswords', () => {
  it('makes a world-readable config holding a plain password readable by its owner only, and leaves others alone', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'skt-secrets-'));
    try {
      const plain = join(dir, 'plain.yaml');
      await writeFile(plain, config('      password: hunter2\n'), { mode: 0o644 });
      const r = parseConfig(config('      password: hunter2\n'), plain);
      if (!r.ok) throw new Error('invalid');
      expect(await protectPlainPasswords(plain, r.config)).toEqual(['u']);
      expect((await stat(plain)).mode & 0o777).toBe(0o600);
      expect(await protectPlainPasswords(plain, r.config)).toBeUndefined();

      const hashed = join(dir, 'hashed.yaml');
      await writeFile(hashed, config(`      passwordHash: "${HASH}"\n`), { mode: 0o644 });
      const h = parseConfig(config(`      passwordHash: "${HASH}"\n`), hashed);
      if (!h.ok) throw new Error('invalid');
      expect(await protectPlainPasswords(hashed, h.config)).toBeUndefined();
      expect((await stat(hashed)).mode & 0o777).toBe(0o644);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
