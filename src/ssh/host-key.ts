// The gateway's host key: made on first start, kept with mode 0600, the same across restarts (a
// new key would make every client warn of a man in the middle). Clients check it by fingerprint.
import { createHash } from 'node:crypto';
import { chmod, mkdir, readFile, stat } from 'node:fs/promises';
import { dirname } from 'node:path';
import ssh2 from 'ssh2';
import { errorMessage, SkiffError } from '../errors.js';
import { writeFileAtomic } from '../fs/atomic.js';
import type { Logger } from '../log.js';
import { ed25519KeyPair } from './openssh-key.js';

const { utils } = ssh2;

export { defaultHostKeyPath, HOST_KEY_FILE } from './host-key-path.js';

export interface HostKey {
  path: string;
  /** The private key text, as ssh2's `hostKeys` takes it. */
  privateKey: string;
  /** e.g. `ssh-ed25519` */
  type: string;
  /** `SHA256:…` as `ssh-keygen -lf` and OpenSSH's client print it. */
  fingerprint: string;
  /** The public key line (`ssh-ed25519 AAAA…`), for known_hosts. */
  publicKey: string;
  created: boolean;
}

/** OpenSSH's fingerprint of a public key blob: unpadded base64 of its SHA-256. Pure. */
export function fingerprintOf(publicBlob: Buffer): string {
  return `SHA256:${createHash('sha256').update(publicBlob).digest('base64').replace(/=+$/, '')}`;
}

/** A new ed25519 private key in OpenSSH format. */
export function generateHostKey(): string {
  return ed25519KeyPair().private;
}

/**
 * Reads the host key at `path`, creating it (mode 0600, atomically, never replacing one that
 * appeared meanwhile) when missing. A key readable by others is tightened to 0600 with a warning.
 */
export async function loadOrCreateHostKey(path: string, log: Logger): Promise<HostKey> {
  let text = await readKey(path);
  let created = false;
  if (text === undefined) {
    await mkdir(dirname(path), { recursive: true, mode: 0o700 });
    const fresh = generateHostKey();
    try {
      await writeFileAtomic(path, fresh, { mode: 0o600, exclusive: true });
      text = fresh;
      created = true;
    } catch (err) {
      // Another process made one first: use theirs, so both agree.
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST')
        throw new SkiffError('IO', `cannot write the SSH host key ${path}: ${errorMessage(err)}`, { cause: err });
      text = await readKey(path);
      if (text === undefined) throw new SkiffError('IO', `the SSH host key ${path} vanished while it was being created`);
    }
  } else {
    const mode = (await stat(path)).mode & 0o777;
    if ((mode & 0o077) !== 0) {
      await chmod(path, 0o600);
      log.warn({ path, mode: mode.toString(8) }, 'SSH host key was readable by others; changed it to mode 600');
    }
  }
  const parsed = utils.parseKey(text);
  if (parsed instanceof Error || !parsed.isPrivateKey()) {
    const why = parsed instanceof Error ? parsed.message : 'it holds no private key';
    throw new SkiffError('CONFIG_INVALID', `the SSH host key ${path} cannot be used (${why}); remove it to have a new one made`);
  }
  const blob = parsed.getPublicSSH();
  return {
    path,
    privateKey: text,
    type: parsed.type,
    fingerprint: fingerprintOf(blob),
    publicKey: `${parsed.type} ${blob.toString('base64')}`,
    created,
  };
}

async function readKey(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new SkiffError('IO', `cannot read the SSH host key ${path}: ${errorMessage(err)}`, { cause: err });
  }
}
