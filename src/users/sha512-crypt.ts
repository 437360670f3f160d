// SHA-512 crypt (`$6$`, Ulrich Drepper's "Unix crypt using SHA-256 and SHA-512", the scheme glibc,
// musl, uClibc and BusyBox all accept in /etc/shadow). skiff-core hashes passwords itself, rather
// than handing plain text to chpasswd, so that a later run can tell whether the configured password
// still matches the account (chpasswd may pick a scheme we cannot verify, e.g. yescrypt, and would
// then be re-run, with a new salt, on every start).
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';

/** The alphabet crypt(3) uses for salts and encoded hashes. */
export const CRYPT_ALPHABET = './0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';

const DEFAULT_ROUNDS = 5000;
const MIN_ROUNDS = 1000;
const MAX_ROUNDS = 999_999_999;
const MAX_SALT = 16;

/** Rounds for new hashes: well above glibc's default, a fraction of a second on a small device. */
export const SHA512_CRYPT_ROUNDS = 20_000;

// Output byte order of the final digest, three bytes per group of four characters.
const ORDER: readonly (readonly [number, number, number])[] = Array.from({ length: 21 }, (_, i) => {
  const group = [i, i + 21, i + 42] as const;
  switch (i % 3) {
    case 0:
      return [group[0], group[1], group[2]] as const;
    case 1:
      return [group[1], group[2], group[0]] as const;
    default:
      return [group[2], group[0], group[1]] as const;
  }
});

function sha512(...parts: Buffer[]): Buffer {
  const h = createHash('sha512');
  for (const p of parts) h.update(p);
  return h.digest();
}

/** `length` bytes of `block` repeated. */
function repeatTo(block: Buffer, length: number): Buffer {
  const out = Buffer.alloc(length);
  for (let off = 0; off < length; off += block.length) block.copy(out, off, 0, Math.min(block.length, length - off));
  return out;
}

function encode24(b2: number, b1: number, b0: number, chars: number): string {
  let w = (b2 << 16) | (b1 << 8) | b0;
  let out = '';
  for (let i = 0; i < chars; i++) {
    out += CRYPT_ALPHABET[w & 0x3f];
    w >>>= 6;
  }
  return out;
}

/** The raw algorithm; `salt` is used up to its first 16 characters. */
function digest(password: Buffer, salt: Buffer, rounds: number): Buffer {
  const b = sha512(password, salt, password);
  const a = createHash('sha512');
  a.update(password);
  a.update(salt);
  a.update(repeatTo(b, password.length));
  for (let n = password.length; n > 0; n >>>= 1) a.update(n & 1 ? b : password);
  let c = a.digest();

  const dp = createHash('sha512');
  for (let i = 0; i < password.length; i++) dp.update(password);
  const p = repeatTo(dp.digest(), password.length);

  const ds = createHash('sha512');
  for (let i = 0; i < 16 + c[0]!; i++) ds.update(salt);
  const s = repeatTo(ds.digest(), salt.length);

  for (let i = 0; i < rounds; i++) {
    const h = createHash('sha512');
    h.update(i & 1 ? p : c);
    if (i % 3) h.update(s);
    if (i % 7) h.update(p);
    h.update(i & 1 ? c : p);
    c = h.digest();
  }
  return c;
}

/**
 * `$6$[rounds=N$]SALT$HASH` for `password`. Without `rounds` the default (5000) applies and no
 * `rounds=` field is written; given rounds are clamped to 1000..999999999 and written, as crypt(3)
 * does.
 */
export function sha512Crypt(password: string, salt: string, rounds?: number): string {
  const saltText = salt.slice(0, MAX_SALT);
  const r = rounds === undefined ? DEFAULT_ROUNDS : Math.min(MAX_ROUNDS, Math.max(MIN_ROUNDS, Math.floor(rounds)));
  const c = digest(Buffer.from(password, 'utf8'), Buffer.from(saltText, 'utf8'), r);
  let encoded = '';
  for (const [x, y, z] of ORDER) encoded += encode24(c[x]!, c[y]!, c[z]!, 4);
  encoded += encode24(0, 0, c[63]!, 2);
  const roundsField = rounds === undefined ? '' : `rounds=${r}$`;
  return `$6$${roundsField}${saltText}$${encoded}`;
}

/** `length` random characters of the crypt alphabet. */
export function randomSalt(length: number = MAX_SALT): string {
  const bytes = randomBytes(length);
  let out = '';
  for (const byte of bytes) out += CRYPT_ALPHABET[byte & 0x3f];
  return out;
}

export interface ParsedSha512Hash {
  rounds: number;
  /** Whether the hash names its rounds (`rounds=N$`). */
  explicitRounds: boolean;
  salt: string;
}

const SHA512_HASH = /^\$6\$(?:rounds=(\d+)\$)?([^$:\n]{0,16})\$[./0-9A-Za-z]{86}$/;

/** The parameters of a `$6$` hash, or undefined for anything else. */
export function parseSha512Hash(hash: string): ParsedSha512Hash | undefined {
  const m = SHA512_HASH.exec(hash);
  if (!m) return undefined;
  const rounds = m[1] === undefined ? DEFAULT_ROUNDS : Number(m[1]);
  return { rounds, explicitRounds: m[1] !== undefined, salt: m[2] ?? '' };
}

/**
 * Whether `password` matches `hash`: true or false for `$6$` hashes, undefined for schemes this
 * module cannot compute (yescrypt, bcrypt, SHA-256, MD5, DES…), so the caller can decide.
 */
export function verifySha512Crypt(password: string, hash: string): boolean | undefined {
  const parsed = parseSha512Hash(hash);
  if (!parsed) return undefined;
  const computed = Buffer.from(sha512Crypt(password, parsed.salt, parsed.explicitRounds ? parsed.rounds : undefined));
  const expected = Buffer.from(hash);
  return computed.length === expected.length && timingSafeEqual(computed, expected);
}
