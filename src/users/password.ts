// Which password an account should have (pure), and setting it.
//
// Policies, from the config's `auth`:
// - `locked`: password logins disabled, key logins kept. The hash becomes `*`, NOT a `!`-prefixed
//   one. OpenSSH built for Linux treats a hash starting with "!" (LOCKED_PASSWD_PREFIX in its
//   configure.ac) as a locked account and, when `UsePAM no` (as on SkiffOS), refuses it for every
//   authentication method, keys included (auth.c allowed_user() -> platform_locked_account()).
//   On Linux that check is only the "!" prefix; "*LK*" and "*" are the locked markers of Solaris
//   and HP-UX builds only. No crypt output is ever "*", so no password matches it, and PAM's
//   pam_unix account check does not reject it either: the account is password-less, not locked.
// - `password`: that password, SHA-512-crypt hashed here (see sha512-crypt.ts) and left alone
//   while it still matches.
// - `allowEmptyPassword` (and no password): an empty hash (`passwd -d`); sshd still refuses empty
//   passwords unless PermitEmptyPasswords is on, and keys keep working.
// - otherwise: a random password nobody knows, so the account is usable by key but not locked.
//   It is set once: its salt carries RANDOM_SALT_MARK, and a hash with that mark is kept on later
//   runs. Any other hash (a password removed from the config, one set by hand, the Go original's
//   per-boot random one, the `!` of a new account) is replaced, so the config stays the truth.
import { SkiffError } from '../errors.js';
import type { UserAuth } from '../config/schema.js';
import { randomBytes } from 'node:crypto';
import type { AccountTools } from './account-tools.js';
import { hashState } from './passwd-files.js';
import { SHA512_CRYPT_ROUNDS, parseSha512Hash, randomSalt, sha512Crypt, verifySha512Crypt } from './sha512-crypt.js';

/** The hash that disables password logins without locking the account (see above). */
export const DISABLED_HASH = '*';

/** Salt prefix of the random passwords skiff-core sets, so it can recognise them later. */
export const RANDOM_SALT_MARK = 'skiff';

export type PasswordPolicy =
  { kind: 'password'; password: string } | { kind: 'hash'; hash: string } | { kind: 'random' } | { kind: 'empty' } | { kind: 'disabled' };

export type PasswordMode = PasswordPolicy['kind'];

/** The auth fields the password depends on (the config's UserAuth fits). */
export type PasswordAuth = Partial<Pick<UserAuth, 'password' | 'passwordHash' | 'allowEmptyPassword' | 'locked'>>;

export function passwordPolicy(auth: PasswordAuth | undefined): { policy: PasswordPolicy; warnings: string[] } {
  const warnings: string[] = [];
  const password = auth?.password ?? '';
  if (auth?.locked) {
    if (password !== '') warnings.push('auth.password is ignored because auth.locked is set');
    return { policy: { kind: 'disabled' }, warnings };
  }
  if (auth?.passwordHash) return { policy: { kind: 'hash', hash: auth.passwordHash }, warnings };
  if (password !== '') {
    if (/[\n\r\0]/.test(password)) {
      throw new SkiffError('CONFIG_INVALID', 'auth.password must not contain a newline or NUL character');
    }
    return { policy: { kind: 'password', password }, warnings };
  }
  if (auth?.allowEmptyPassword) return { policy: { kind: 'empty' }, warnings };
  return { policy: { kind: 'random' }, warnings };
}

export type PasswordAction = { kind: 'keep' } | { kind: 'set-hash'; hash: string } | { kind: 'clear' };

export interface PasswordHasher {
  /** A new hash of `password`. */
  hash(password: string): string;
  /** A new hash of a random password, with RANDOM_SALT_MARK in its salt. */
  randomHash(): string;
}

export const sha512Hasher: PasswordHasher = {
  hash: (password) => sha512Crypt(password, randomSalt(16), SHA512_CRYPT_ROUNDS),
  randomHash: () =>
    sha512Crypt(randomBytes(32).toString('base64'), RANDOM_SALT_MARK + randomSalt(16 - RANDOM_SALT_MARK.length), SHA512_CRYPT_ROUNDS),
};

/** Whether `hash` is a random password skiff-core set. */
export function isRandomHash(hash: string): boolean {
  return parseSha512Hash(hash)?.salt.startsWith(RANDOM_SALT_MARK) === true;
}

/** What to do to get from the current hash (undefined: none) to the policy. Pure. */
export function planPassword(policy: PasswordPolicy, current: string | undefined, hasher: PasswordHasher): PasswordAction {
  switch (policy.kind) {
    case 'disabled':
      return current === DISABLED_HASH ? { kind: 'keep' } : { kind: 'set-hash', hash: DISABLED_HASH };
    case 'password':
      // A hash we cannot verify (another scheme) is replaced once; ours verify from then on.
      return current !== undefined && verifySha512Crypt(policy.password, current) === true
        ? { kind: 'keep' }
        : { kind: 'set-hash', hash: hasher.hash(policy.password) };
    case 'hash':
      return current === policy.hash ? { kind: 'keep' } : { kind: 'set-hash', hash: policy.hash };
    case 'empty':
      return current === '' ? { kind: 'keep' } : { kind: 'clear' };
    case 'random':
      return current !== undefined && hashState(current) === 'usable' && isRandomHash(current)
        ? { kind: 'keep' }
        : { kind: 'set-hash', hash: hasher.randomHash() };
  }
}

/** Carries out a planned action; returns whether anything changed. */
export async function applyPasswordAction(tools: AccountTools, name: string, action: PasswordAction): Promise<boolean> {
  switch (action.kind) {
    case 'keep':
      return false;
    case 'set-hash':
      await tools.setPasswordHash(name, action.hash);
      return true;
    case 'clear':
      await tools.clearPassword(name);
      return true;
  }
}
