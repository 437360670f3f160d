// The gateway's authentication layer: who may log in, decided from the config alone. Keys come
// from the user's `auth.sshKeys` (and root's authorized_keys with `copyRootKeys`); a password
// only when one is configured. Everything here is pure apart from the limiter's clock, so the
// decisions are tested without a network.
import { createHash, timingSafeEqual } from 'node:crypto';
import ssh2, { type ParsedKey } from 'ssh2';
import type { Config, User } from '../config/schema.js';
import { combineKeys } from '../users/authorized-keys.js';
import { verifySha512Crypt } from '../users/sha512-crypt.js';

const { utils } = ssh2;

export type AuthMethod = 'publickey' | 'password';

/** What the client offered, in the shape ssh2's authentication contexts have. */
export type AuthRequest =
  | { method: 'none' }
  | {
      method: 'publickey';
      key: { algo: string; data: Buffer };
      signature?: Buffer | undefined;
      blob?: Buffer | undefined;
      hashAlgo?: string | undefined;
    }
  | { method: 'password'; password: string }
  | { method: 'keyboard-interactive' | 'hostbased' };

/**
 * accept: logged in. key-ok: the offered key would do, the client may now sign with it (the
 * publickey "query" of RFC 4252 7). reject: not this way (the same answer for every reason).
 */
export type AuthDecision = 'accept' | 'key-ok' | 'reject';

export interface Credentials {
  keys: ParsedKey[];
  /** A usable password: configured, non-empty, not locked. */
  password: string | undefined;
  /** The same as a SHA-512 crypt hash (auth.passwordHash); it wins over `password`. */
  passwordHash?: string | undefined;
  /** `password: ""` with `allowEmptyPassword` (and not locked): no secret is asked for. */
  open: boolean;
}

export interface CredentialsResult {
  credentials: Credentials;
  /** Key lines that cannot be used (unparsable, or restricted by authorized_keys options). */
  skipped: string[];
}

/**
 * The credentials of a configured user. Root's keys come in only with `copyRootKeys`; a line with
 * authorized_keys options (`from=`, `command=`, …) is skipped, since the gateway could not honour
 * the restriction and must not grant more than it says.
 */
export function credentialsFor(user: User, rootKeysText: string | undefined): CredentialsResult {
  const auth = user.auth;
  const lines = combineKeys(auth?.copyRootKeys ? rootKeysText : undefined, auth?.sshKeys ?? []);
  const keys: ParsedKey[] = [];
  const skipped: string[] = [];
  for (const line of lines) {
    const parsed = utils.parseKey(line);
    if (parsed instanceof Error) skipped.push(line);
    else keys.push(parsed);
  }
  const locked = auth?.locked ?? false;
  const password = !locked && !auth?.passwordHash && auth?.password ? auth.password : undefined;
  const passwordHash = !locked && auth?.passwordHash ? auth.passwordHash : undefined;
  const open = !locked && !passwordHash && auth?.password === '' && (auth?.allowEmptyPassword ?? false);
  return { credentials: { keys, password, passwordHash, open }, skipped };
}

/**
 * The methods named in every refusal. It depends on the config only, never on the user asked
 * about, so a refusal does not tell whether the account exists or has a password.
 */
export function advertisedMethods(config: Config | undefined): AuthMethod[] {
  const anyPassword = Object.values(config?.users ?? {}).some((u) => !u.auth?.locked && Boolean(u.auth?.password || u.auth?.passwordHash));
  return anyPassword ? ['publickey', 'password'] : ['publickey'];
}

/** Decides one request. `credentials` is undefined for a name that is not a configured user. */
export function decide(request: AuthRequest, credentials: Credentials | undefined): AuthDecision {
  if (!credentials) return 'reject';
  switch (request.method) {
    case 'none':
      return credentials.open ? 'accept' : 'reject';
    case 'password':
      if (credentials.open && request.password === '') return 'accept';
      if (credentials.passwordHash !== undefined)
        return verifySha512Crypt(request.password, credentials.passwordHash) === true ? 'accept' : 'reject';
      return credentials.password !== undefined && passwordMatches(credentials.password, request.password) ? 'accept' : 'reject';
    case 'publickey': {
      const key = findKey(credentials.keys, request.key.data);
      if (!key) return 'reject';
      if (!request.signature || !request.blob) return 'key-ok';
      return verifySignature(key, request.blob, request.signature, request.hashAlgo) ? 'accept' : 'reject';
    }
    default:
      return 'reject';
  }
}

/** The configured key whose public blob is the offered one. */
export function findKey(keys: readonly ParsedKey[], offered: Buffer): ParsedKey | undefined {
  return keys.find((k) => {
    const blob = k.getPublicSSH();
    return blob.length === offered.length && blob.equals(offered);
  });
}

export function verifySignature(key: ParsedKey, blob: Buffer, signature: Buffer, hashAlgo: string | undefined): boolean {
  try {
    return key.verify(blob, signature, hashAlgo) === true;
  } catch {
    return false;
  }
}

/**
 * Compares in time that depends on neither password: both are hashed first, so lengths do not
 * show either.
 */
export function passwordMatches(expected: string, given: string): boolean {
  const a = createHash('sha256').update(expected, 'utf8').digest();
  const b = createHash('sha256').update(given, 'utf8').digest();
  return timingSafeEqual(a, b);
}

export interface FailureLimiter {
  /** Records a failed authentication from `source`; returns the failures in the window. */
  fail(source: string): number;
  /** Whether `source` has reached the limit within the window. */
  blocked(source: string): boolean;
}

/**
 * Failed authentications per source address in a sliding window (a minute by default). Sources
 * are forgotten once their failures have aged out, so the map stays as small as the attack.
 */
export function createFailureLimiter(options: { max: () => number; windowMs?: number; now?: () => number }): FailureLimiter {
  const windowMs = options.windowMs ?? 60_000;
  const now = options.now ?? Date.now;
  const failures = new Map<string, number[]>();
  const recent = (source: string): number[] => {
    const since = now() - windowMs;
    const kept = (failures.get(source) ?? []).filter((t) => t > since);
    if (kept.length === 0) failures.delete(source);
    else failures.set(source, kept);
    return kept;
  };
  return {
    fail(source) {
      const kept = [...recent(source), now()];
      failures.set(source, kept);
      // Bound the memory a flood of sources can take: the oldest entries go first.
      if (failures.size > 10_000) failures.delete(failures.keys().next().value!);
      return kept.length;
    },
    blocked(source) {
      return recent(source).length >= options.max();
    },
  };
}
