import { createHash } from 'node:crypto';
import { chmod, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import ssh2 from 'ssh2';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { silentLogger } from '../../../src/log.js';
import { defaultHostKeyPath, fingerprintOf, generateHostKey, loadOrCreateHostKey } from '../../../src/ssh/host-key.js';

describe('ssh/host-key', () => {
  let dir: string;
  const log = silentLogger();
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'skiff-hostkey-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('lives beside the config by default', () => {
    expect(defaultHostKeyPath('/mnt/persist/skiff/core/config.yaml')).toBe('/mnt/persist/skiff/core/ssh_host_ed25519_key');
  });

  it('fingerprints like ssh-keygen -l: unpadded base64 of the SHA-256 of the key blob', () => {
    const blob = Buffer.from('AAAAC3NzaC1lZDI1NTE5AAAAIOgujhKhr+0z5tvRcfmz36Eo6o9H35LU8wenXSfdLiGX', 'base64');
    const expected = createHash('sha256').update(blob).digest('base64');
    expect(expected.endsWith('=')).toBe(true);
    expect(fingerprintOf(blob)).toBe(`SHA256:${expected.replace(/=+$/, '')}`);
  });

  it('generates an ed25519 key in OpenSSH format', () => {
    const text = generateHostKey();
    expect(text).toMatch(/^-----BEGIN OPENSSH PRIVATE KEY-----\n/);
    const parsed = ssh2.utils.parseKey(text);
    expect(parsed).not.toBeInstanceOf(Error);
    expect((parsed as ssh2.ParsedKey).type).toBe('ssh-ed25519');
  });

  it('creates the key on first start with mode 600 and keeps it across restarts', async () => {
    const path = join(dir, 'persist', 'ssh_host_ed25519_key');
    const first = await loadOrCreateHostKey(path, log);
    expect(first).toMatchObject({ path, type: 'ssh-ed25519', created: true });
    expect(first.fingerprint).toMatch(/^SHA256:[A-Za-z0-9+/]{43}$/);
    expect((await stat(path)).mode & 0o777).toBe(0o600);
    expect(await readFile(path, 'utf8')).toBe(first.privateKey);

    const again = await loadOrCreateHostKey(path, log);
    expect(again).toMatchObject({ created: false, fingerprint: first.fingerprint, publicKey: first.publicKey });
    expect(again.publicKey).toMatch(/^ssh-ed25519 AAAA/);
  });

  it('agrees with a second process creating it at the same moment', async () => {
    const path = join(dir, 'k');
    const [a, b] = await Promise.all([loadOrCreateHostKey(path, log), loadOrCreateHostKey(path, log)]);
    expect(a.fingerprint).toBe(b.fingerprint);
    expect([a.created, b.created].filter(Boolean)).toHaveLength(1);
  });

  it('tightens a key others can read to mode 600', async () => {
    const path = join(dir, 'k');
    await loadOrCreateHostKey(path, log);
    await chmod(path, 0o644);
    await loadOrCreateHostKey(path, log);
    expect((await stat(path)).mode & 0o777).toBe(0o600);
  });

  it('refuses a file that holds no usable private key, naming it', async () => {
    const path = join(dir, 'k');
    await writeFile(path, 'not a key\n', { mode: 0o600 });
    await expect(loadOrCreateHostKey(path, log)).rejects.toMatchObject({ code: 'CONFIG_INVALID', message: expect.stringContaining(path) });
  });
});
