import { describe, expect, it } from 'vitest';
import { CRYPT_ALPHABET, parseSha512Hash, randomSalt, sha512Crypt, verifySha512Crypt } from '../../../src/users/sha512-crypt.js';

// Vectors produced by glibc's crypt(3) (`perl -e 'print crypt($pw, $setting)'` on Debian 12).
const GLIBC: { password: string; salt: string; rounds?: number; hash: string }[] = [
  {
    password: 'hello',
    salt: 'saltsalt',
    hash: '$6$saltsalt$YTeBOLnmm3CoeJTzBuijUEtOEWCqrw/nQ8/AeMmON4LGp3k0ZiMjC1OdqzWFUAfDQBvYkOch9BWtQTBcZ1E/p0',
  },
  {
    password: '',
    salt: 'abc',
    hash: '$6$abc$mJP3a6FyA8uCnzRtlnNypPwjnvpi5TP9qOrInzrfDmwxUQG38PkpCPdqfTb8JQfAngapMxeim4AZ..hSdRRzD.',
  },
  {
    password: 'Hello world!',
    salt: 'saltstring',
    hash: '$6$saltstring$svn8UoSVapNtMuq1ukKS4tPQd8iKwSMHWjl/O817G3uBnIFNjnQJuesI68u4OTLiBFdcbYEdFCoEOfaS35inz1',
  },
  {
    // A 100-byte password and a salt longer than 16 characters (truncated).
    password: 'a'.repeat(100),
    salt: '0123456789abcdefXYZ',
    hash: '$6$0123456789abcdef$tGaTckP72q7jpF52bMmzwGpchsg55T/p77YUV80zNoRM/7d5eq5NiZJA1xo.7xLIcQ9oCdiE2XE1z1QfF5CNt1',
  },
  {
    password: 'pässwörd:x',
    salt: 'skiffAbCdEfGhIjK',
    rounds: 20000,
    hash: '$6$rounds=20000$skiffAbCdEfGhIjK$b7FPDiNS5QOhfOFbFOVGB205ftCGG1cZk/F5uavod4kcrNZA4Ywa9t7RtQGnSufJcoBjpMIjc3zBurqHFcirz.',
  },
  {
    password: 'x',
    salt: 'ab',
    rounds: 1000,
    hash: '$6$rounds=1000$ab$PjG1Vkf5LHNL84dByLtuSYjVz6Hy575FC7tz8wX4DtJ2WMsZQu0/miZCNEiAa8uwa8QG5xPQJgcyUioQ0Ac/G/',
  },
];

describe('users/sha512-crypt', () => {
  it.each(GLIBC)('matches glibc for salt $salt', ({ password, salt, rounds, hash }) => {
    expect(sha512Crypt(password, salt, rounds)).toBe(hash);
  });

  it.each(GLIBC)('verifies the glibc hash with salt $salt', ({ password, hash }) => {
    expect(verifySha512Crypt(password, hash)).toBe(true);
    expect(verifySha512Crypt(`${password}!`, hash)).toBe(false);
  });

  it('clamps rounds to the range crypt(3) allows and writes them', () => {
    expect(sha512Crypt('x', 'ab', 10)).toBe(GLIBC[5]!.hash);
  });

  it.each([
    ['$y$j9T$fyZdAbckyyHoYIe6T8Uok1$buAQWa3EpIwxhtYt/7Kv3ne1g0PEiRz/fvHhat3KAO5'],
    ['$5$salt$abc'],
    ['$1$salt$abc'],
    ['*'],
    ['!'],
    [''],
    ['$6$salt$tooshort'],
  ])('cannot verify %j (undefined, not false)', (hash) => {
    expect(verifySha512Crypt('anything', hash)).toBeUndefined();
  });

  it('parses the parameters of a hash', () => {
    expect(parseSha512Hash(GLIBC[4]!.hash)).toEqual({ rounds: 20000, explicitRounds: true, salt: 'skiffAbCdEfGhIjK' });
    expect(parseSha512Hash(GLIBC[0]!.hash)).toEqual({ rounds: 5000, explicitRounds: false, salt: 'saltsalt' });
  });

  it('makes salts from the crypt alphabet', () => {
    const salt = randomSalt(16);
    expect(salt).toHaveLength(16);
    expect([...salt].every((c) => CRYPT_ALPHABET.includes(c))).toBe(true);
    expect(randomSalt(16)).not.toBe(salt);
  });
});
