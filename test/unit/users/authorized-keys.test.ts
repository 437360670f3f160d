import { chmod, lstat, mkdir, readlink, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  AUTHORIZED_KEYS_DIR,
  SSHD_AUTHORIZED_KEYS_LINE,
  combineKeys,
  keyLines,
  listStaleKeyFiles,
  removeStaleKeyFiles,
  renderKeysFile,
  writeAuthorizedKeys,
} from '../../../src/users/authorized-keys.js';
import { ME, createFakeRoot } from './fake-system.js';
import type { FakeRoot } from './fake-system.js';

const K1 = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIK1 alice@laptop';
const K2 = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIK2 bob@desk';
const ROOT_KEY = 'ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQroot root@factory';

describe('users/authorized-keys', () => {
  it('names the sshd_config line matching the directory', () => {
    expect(AUTHORIZED_KEYS_DIR).toBe('/etc/skiff-core/authorized_keys');
    expect(SSHD_AUTHORIZED_KEYS_LINE).toBe('AuthorizedKeysFile .ssh/authorized_keys /etc/skiff-core/authorized_keys/%u');
  });

  it('takes key lines without blanks, comments or duplicates', () => {
    expect(keyLines(`# root keys\n\n${ROOT_KEY}\n  ${K1}  \n`)).toEqual([ROOT_KEY, K1]);
    expect(combineKeys(`${ROOT_KEY}\n${K1}\n`, [K1, K2, ' '])).toEqual([ROOT_KEY, K1, K2]);
    expect(combineKeys(undefined, [K2])).toEqual([K2]);
  });

  it('refuses a configured key with a line break (it would add a second key)', () => {
    expect(() => combineKeys(undefined, [`${K1}\n${K2}`])).toThrow(/line break/);
  });

  describe('writeAuthorizedKeys', () => {
    let fake: FakeRoot;
    const path = () => join(fake.root, 'etc/skiff-core/authorized_keys/core');
    beforeEach(async () => {
      fake = await createFakeRoot({ 'root/.ssh/authorized_keys': `${ROOT_KEY}\n` });
    });
    afterEach(() => fake.cleanup());

    it('writes root keys plus sshKeys to the root-owned directory (0755 dirs, 0644 file)', async () => {
      const outcome = await writeAuthorizedKeys('core', { copyRootKeys: true, sshKeys: [K1] }, { root: fake.root, owner: ME });
      expect(outcome).toEqual({
        path: path(),
        count: 2,
        changes: [{ kind: 'keys-written', path: path(), count: 2 }],
        warnings: [],
      });
      expect(await fake.read('etc/skiff-core/authorized_keys/core')).toBe(renderKeysFile('core', [ROOT_KEY, K1]));
      for (const [p, mode] of [
        ['etc/skiff-core', 0o755],
        ['etc/skiff-core/authorized_keys', 0o755],
        ['etc/skiff-core/authorized_keys/core', 0o644],
      ] as const) {
        const info = await lstat(join(fake.root, p));
        expect([p, info.mode & 0o7777, info.uid, info.gid]).toEqual([p, mode, ME.uid, ME.gid]);
      }
    });

    it('changes nothing on a second run', async () => {
      await writeAuthorizedKeys('core', { copyRootKeys: true, sshKeys: [K1] }, { root: fake.root, owner: ME });
      const again = await writeAuthorizedKeys('core', { copyRootKeys: true, sshKeys: [K1] }, { root: fake.root, owner: ME });
      expect(again.changes).toEqual([]);
    });

    it('a missing root key file is a warning, and the configured keys are still installed', async () => {
      const outcome = await writeAuthorizedKeys(
        'core',
        { copyRootKeys: true, sshKeys: [K2] },
        { root: fake.root, owner: ME, rootKeysPath: join(fake.root, 'nope/authorized_keys') },
      );
      expect(outcome.count).toBe(1);
      expect(outcome.warnings).toEqual([
        `auth.copyRootKeys: ${join(fake.root, 'nope/authorized_keys')} does not exist, so no root keys were copied for core`,
      ]);
      expect(await fake.read('etc/skiff-core/authorized_keys/core')).toContain(K2);
    });

    it('does not read root keys unless copyRootKeys', async () => {
      const outcome = await writeAuthorizedKeys('core', { sshKeys: [K2] }, { root: fake.root, owner: ME });
      expect(await fake.read('etc/skiff-core/authorized_keys/core')).not.toContain(ROOT_KEY);
      expect(outcome.count).toBe(1);
    });

    it('removes the file when no keys are left', async () => {
      await writeAuthorizedKeys('core', { sshKeys: [K1] }, { root: fake.root, owner: ME });
      const outcome = await writeAuthorizedKeys('core', { sshKeys: [] }, { root: fake.root, owner: ME });
      expect(outcome.changes).toEqual([{ kind: 'keys-removed', path: path() }]);
      await expect(lstat(path())).rejects.toThrow(/ENOENT/);
    });

    it('replaces a symlink planted at the key file instead of writing through it', async () => {
      await mkdir(join(fake.root, 'etc/skiff-core/authorized_keys'), { recursive: true });
      await writeFile(join(fake.root, 'victim'), 'original\n');
      await symlink(join(fake.root, 'victim'), path());
      await writeAuthorizedKeys('core', { sshKeys: [K1] }, { root: fake.root, owner: ME });
      expect(await fake.read('victim')).toBe('original\n');
      expect((await lstat(path())).isFile()).toBe(true);
    });

    it('refuses a keys directory that is a symlink', async () => {
      await mkdir(join(fake.root, 'etc/skiff-core'), { recursive: true });
      await mkdir(join(fake.root, 'elsewhere'));
      await symlink(join(fake.root, 'elsewhere'), join(fake.root, 'etc/skiff-core/authorized_keys'));
      await expect(writeAuthorizedKeys('core', { sshKeys: [K1] }, { root: fake.root, owner: ME })).rejects.toThrow(/not a directory/);
      expect(await readlink(join(fake.root, 'etc/skiff-core/authorized_keys'))).toBe(join(fake.root, 'elsewhere'));
    });

    it('repairs a group-writable keys directory', async () => {
      await mkdir(join(fake.root, 'etc/skiff-core/authorized_keys'), { recursive: true });
      await chmod(join(fake.root, 'etc/skiff-core/authorized_keys'), 0o777);
      const outcome = await writeAuthorizedKeys('core', { sshKeys: [K1] }, { root: fake.root, owner: ME });
      expect(outcome.changes[0]).toEqual({
        kind: 'keys-dir-fixed',
        path: join(fake.root, 'etc/skiff-core/authorized_keys'),
        what: 'mode 777 -> 755',
      });
      expect((await lstat(join(fake.root, 'etc/skiff-core/authorized_keys'))).mode & 0o777).toBe(0o755);
    });

    it.each([['../etc/passwd'], ['.hidden'], ['a/b'], ['-rf']])('refuses the name %j', async (name) => {
      await expect(writeAuthorizedKeys(name, { sshKeys: [K1] }, { root: fake.root, owner: ME })).rejects.toThrow();
    });
  });

  describe('stale key files', () => {
    let fake: FakeRoot;
    beforeEach(async () => {
      fake = await createFakeRoot();
    });
    afterEach(() => fake.cleanup());

    it('lists and removes files of users no longer configured, and nothing else', async () => {
      for (const name of ['core', 'old', 'gone']) await writeAuthorizedKeys(name, { sshKeys: [K1] }, { root: fake.root, owner: ME });
      const dir = join(fake.root, 'etc/skiff-core/authorized_keys');
      await writeFile(join(fake.root, 'outside'), 'keep');
      await symlink(join(fake.root, 'outside'), join(dir, 'linked'));
      await mkdir(join(dir, 'subdir'));

      expect(await listStaleKeyFiles(['core'], { root: fake.root })).toEqual(['gone', 'linked', 'old']);
      expect(await removeStaleKeyFiles(['core'], { root: fake.root })).toEqual(['gone', 'linked', 'old']);
      expect(await listStaleKeyFiles(['core'], { root: fake.root })).toEqual([]);
      expect(await fake.read('outside')).toBe('keep');
      expect((await lstat(join(dir, 'core'))).isFile()).toBe(true);
      expect((await lstat(join(dir, 'subdir'))).isDirectory()).toBe(true);
    });

    it('has nothing to list without the directory', async () => {
      expect(await listStaleKeyFiles([], { root: fake.root })).toEqual([]);
    });
  });
});
