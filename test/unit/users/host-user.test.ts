import { chmod, mkdir, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { isSkiffError } from '../../../src/errors.js';
import { createBusyBoxTools, createShadowTools } from '../../../src/users/account-tools.js';
import { describeHostUserChange, ensureHostUser } from '../../../src/users/host-user.js';
import type { HostUserDeps, HostUserSpec } from '../../../src/users/host-user.js';
import { isRandomHash } from '../../../src/users/password.js';
import { parseShadow } from '../../../src/users/passwd-files.js';
import { verifySha512Crypt } from '../../../src/users/sha512-crypt.js';
import { BUSYBOX_PATHS, ME, SHADOW_PATHS, createFakeRoot, createFakeRunner } from './fake-system.js';
import type { FakeRoot, FakeRunner } from './fake-system.js';
import { changedPaths, snapshot } from './tree.js';

const LAUNCHER = '/usr/bin/skiff-core';
const KEY = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIK1 alice@laptop';
const ROOT_KEY = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIRT root@factory';

describe('users/host-user', () => {
  let fake: FakeRoot;
  let runner: FakeRunner;
  let deps: HostUserDeps;

  async function shadowHash(name: string): Promise<string | undefined> {
    return parseShadow(await fake.read('etc/shadow')).find((e) => e.name === name)?.hash;
  }
  function spec(extra: Partial<HostUserSpec> = {}): HostUserSpec {
    return { name: 'core', shell: LAUNCHER, createUsers: true, auth: { copyRootKeys: true, sshKeys: [KEY] }, ...extra };
  }
  const tools = () => runner.calls.map((c) => c.tool);
  /** An existing account: its passwd line, the groups, and a shadow entry ("!" unless given). */
  async function seed(passwdLine: string, group: string, hash = '!'): Promise<void> {
    await fake.write('etc/passwd', `root:x:0:0:root:/root:/bin/sh\n${passwdLine}\n`);
    await fake.write('etc/group', group);
    const name = passwdLine.split(':')[0]!;
    await fake.write('etc/shadow', `root:*:19000:0:99999:7:::\n${name}:${hash}:19000:0:99999:7:::\n`);
  }

  beforeEach(async () => {
    fake = await createFakeRoot({ 'root/.ssh/authorized_keys': `${ROOT_KEY}\n`, 'usr/bin/skiff-core': '#!/bin/sh\n' });
    await chmod(join(fake.root, 'usr/bin/skiff-core'), 0o755);
    runner = createFakeRunner(fake);
    deps = { tools: createShadowTools(runner, SHADOW_PATHS), root: fake.root, owner: ME };
  });
  afterEach(() => fake.cleanup());

  it('reports a missing user without --create-users and changes nothing', async () => {
    const before = await snapshot(fake.root);
    const outcome = await ensureHostUser(spec({ createUsers: false }), deps);
    expect(outcome).toEqual({
      name: 'core',
      state: 'missing',
      changes: [],
      warnings: [
        `host user core does not exist; run skiff-core with --create-users (or SKIFF_CORE_CREATE_USERS=1) to create it, or create it yourself with login shell ${LAUNCHER}`,
      ],
    });
    expect(runner.calls).toEqual([]);
    expect(changedPaths(before, await snapshot(fake.root))).toEqual([]);
  });

  it('creates the user with the launcher as shell, lists it in /etc/shells, sets a random password and writes keys', async () => {
    const outcome = await ensureHostUser(spec(), deps);

    expect(runner.calls[0]).toEqual({
      tool: 'useradd',
      file: SHADOW_PATHS.useradd,
      args: ['-m', '-d', '/home/core', '-s', LAUNCHER, '-U', '--', 'core'],
      stdin: undefined,
    });
    expect(runner.calls[1]).toMatchObject({ tool: 'chpasswd', args: ['-e'] });
    expect(runner.calls[1]!.stdin).toMatch(/^core:\$6\$rounds=20000\$skiff/);
    expect(tools()).toEqual(['useradd', 'chpasswd']);
    expect(runner.calls.flatMap((c) => c.args)).not.toContain('docker');

    expect(await fake.read('etc/passwd')).toContain(`core:x:1000:1000::/home/core:${LAUNCHER}\n`);
    expect(await fake.read('etc/shells')).toBe(`/bin/sh\n/bin/bash\n${LAUNCHER}\n`);
    expect(isRandomHash((await shadowHash('core'))!)).toBe(true);
    const keys = await fake.read('etc/skiff-core/authorized_keys/core');
    expect(keys).toContain(`${ROOT_KEY}\n${KEY}\n`);

    expect(outcome).toMatchObject({ name: 'core', state: 'ready', uid: 1000, gid: 1000, home: '/home/core', password: 'random', keys: 2 });
    expect(outcome.warnings).toEqual([]);
    expect(outcome.changes.map((c) => describeHostUserChange('core', c))).toEqual([
      `created user core (uid 1000, home /home/core, shell ${LAUNCHER})`,
      `added ${LAUNCHER} to ${join(fake.root, 'etc/shells')}`,
      'set a random password for core (log in with an SSH key)',
      `wrote 2 SSH keys for core to ${join(fake.root, 'etc/skiff-core/authorized_keys/core')}`,
    ]);
  });

  it('changes nothing on a second run: the random password is set once', async () => {
    await ensureHostUser(spec(), deps);
    const hash = await shadowHash('core');
    const before = await snapshot(fake.root);
    runner.calls.length = 0;

    const again = await ensureHostUser(spec(), deps);
    expect(again.changes).toEqual([]);
    expect(runner.calls).toEqual([]);
    expect(await shadowHash('core')).toBe(hash);
    expect(changedPaths(before, await snapshot(fake.root))).toEqual([]);
  });

  it('uses an existing group named after the user', async () => {
    await fake.write('etc/group', 'root:x:0:\ncore:x:1500:\n');
    await ensureHostUser(spec(), deps);
    expect(runner.calls[0]!.args).toEqual(['-m', '-d', '/home/core', '-s', LAUNCHER, '-g', 'core', '--', 'core']);
  });

  it('sets the launcher as shell of an existing user, with createUsers false', async () => {
    await seed(`core:x:1000:1000::/home/core:/bin/bash`, 'root:x:0:\ncore:x:1000:\n');
    const outcome = await ensureHostUser(spec({ createUsers: false }), deps);
    expect(runner.calls[0]).toMatchObject({ tool: 'usermod', args: ['-s', LAUNCHER, '--', 'core'] });
    expect(outcome.changes).toContainEqual({ kind: 'shell-set', from: '/bin/bash', to: LAUNCHER });
    expect(await fake.read('etc/passwd')).toContain(`core:x:1000:1000::/home/core:${LAUNCHER}`);
  });

  it('removes a legacy user from the docker group and reports it', async () => {
    await seed(`core:x:1000:1000::/home/core:${LAUNCHER}`, 'root:x:0:\ndocker:x:998:other,core\naudio:x:29:core\ncore:x:1000:\n');
    const outcome = await ensureHostUser(spec(), deps);

    expect(runner.calls[0]).toMatchObject({ tool: 'gpasswd', args: ['-d', 'core', 'docker'] });
    expect(await fake.read('etc/group')).toBe('root:x:0:\ndocker:x:998:other\naudio:x:29:core\ncore:x:1000:\n');
    expect(outcome.changes).toContainEqual({ kind: 'docker-group-left', group: 'docker', wasPrimary: false });
    expect(outcome.warnings).toEqual([
      'core was in the docker group (root-equivalent; the Go skiff-core put it there) and has been removed; sessions already running keep the group until they end',
    ]);
  });

  it('without gpasswd, keeps the other supplementary groups with usermod -G', async () => {
    const { gpasswd: _, ...paths } = SHADOW_PATHS;
    deps = { ...deps, tools: createShadowTools(runner, paths) };
    await seed(`core:x:1000:1000::/home/core:${LAUNCHER}`, 'root:x:0:\ndocker:x:998:core\naudio:x:29:core\ncore:x:1000:\n');
    await ensureHostUser(spec(), deps);
    expect(runner.calls[0]).toMatchObject({ tool: 'usermod', args: ['-G', 'audio', '--', 'core'] });
    expect(await fake.read('etc/group')).toBe('root:x:0:\ndocker:x:998:\naudio:x:29:core\ncore:x:1000:\n');
  });

  it('moves a user whose primary group is docker (BusyBox adduser -G docker) to its own group', async () => {
    await seed(`core:x:1000:998::/home/core:${LAUNCHER}`, 'root:x:0:\ndocker:x:998:core\n');
    const outcome = await ensureHostUser(spec(), deps);
    expect(tools().slice(0, 3)).toEqual(['gpasswd', 'groupadd', 'usermod']);
    expect(runner.calls[1]!.args).toEqual(['--', 'core']);
    expect(runner.calls[2]!.args).toEqual(['-g', 'core', '--', 'core']);
    expect(await fake.read('etc/passwd')).toContain('core:x:1000:1000:');
    expect(outcome.changes).toContainEqual({ kind: 'docker-group-left', group: 'docker', wasPrimary: true, newPrimaryGroup: 'core' });
    expect(outcome.gid).toBe(1000);
  });

  it('fails loudly when the user is still in the docker group afterwards', async () => {
    await seed(`core:x:1000:1000::/home/core:${LAUNCHER}`, 'root:x:0:\ndocker:x:998:core\ncore:x:1000:\n');
    deps = { ...deps, tools: { ...createShadowTools(runner, SHADOW_PATHS), removeFromGroup: async () => {} } };
    const err = await ensureHostUser(spec(), deps).catch((e: unknown) => e);
    expect(isSkiffError(err, 'USER_COMMAND_FAILED')).toBe(true);
    expect((err as Error).message).toMatch(/still in the docker group/);
  });

  it('locked: the hash becomes "*" (not "!"), so sshd without PAM still accepts keys', async () => {
    await ensureHostUser(spec({ auth: { locked: true, sshKeys: [KEY] } }), deps);
    expect(runner.calls[1]).toEqual({ tool: 'chpasswd', file: SHADOW_PATHS.chpasswd, args: ['-e'], stdin: 'core:*\n' });
    expect(await shadowHash('core')).toBe('*');
    expect(runner.calls.some((c) => c.tool === 'passwd' && c.args.includes('-l'))).toBe(false);
  });

  it('locked: an old "!" lock (Go original: passwd -l) is turned into "*"', async () => {
    await fake.write('etc/passwd', `root:x:0:0:root:/root:/bin/sh\ncore:x:1000:1000::/home/core:${LAUNCHER}\n`);
    await fake.write('etc/shadow', 'root:*:19000:0:99999:7:::\ncore:!$6$abc$def:19000:0:99999:7:::\n');
    const outcome = await ensureHostUser(spec({ auth: { locked: true, sshKeys: [KEY] } }), deps);
    expect(await shadowHash('core')).toBe('*');
    expect(outcome.changes).toContainEqual({ kind: 'password', mode: 'disabled' });
  });

  it('allowEmptyPassword: passwd -d', async () => {
    await ensureHostUser(spec({ auth: { allowEmptyPassword: true } }), deps);
    expect(runner.calls[1]).toMatchObject({ tool: 'passwd', args: ['-d', 'core'] });
    expect(await shadowHash('core')).toBe('');
  });

  it('an explicit password is hashed, passed on stdin only, and left alone while it matches', async () => {
    await ensureHostUser(spec({ auth: { password: 'correct horse' } }), deps);
    const call = runner.calls.find((c) => c.tool === 'chpasswd')!;
    expect(call.args).toEqual(['-e']);
    expect(runner.calls.flatMap((c) => c.args).join(' ')).not.toContain('correct horse');
    expect(call.stdin).not.toContain('correct horse');
    const hash = (await shadowHash('core'))!;
    expect(verifySha512Crypt('correct horse', hash)).toBe(true);

    runner.calls.length = 0;
    const again = await ensureHostUser(spec({ auth: { password: 'correct horse' } }), deps);
    expect(again.changes).toEqual([]);
    expect(runner.calls).toEqual([]);

    await ensureHostUser(spec({ auth: {} }), deps);
    expect(isRandomHash((await shadowHash('core'))!)).toBe(true);
  });

  it('warns when the user can log in neither by key nor by password', async () => {
    const outcome = await ensureHostUser(spec({ auth: { locked: true } }), deps);
    expect(outcome.warnings).toContain(
      'core has no SSH keys and no password it can log in with: add auth.sshKeys or auth.copyRootKeys, or set auth.password',
    );
  });

  it('warns when the launcher does not exist (sshd would refuse the login)', async () => {
    const outcome = await ensureHostUser(spec({ shell: '/opt/missing/skiff-core' }), deps);
    expect(outcome.warnings).toContain(
      'login shell /opt/missing/skiff-core does not exist or is not executable: sshd refuses logins for core until it does',
    );
  });

  it('refuses to manage uid 0', async () => {
    await fake.write('etc/passwd', 'root:x:0:0:root:/root:/bin/sh\ntoor:x:0:0::/root:/bin/sh\n');
    const err = await ensureHostUser(spec({ name: 'toor' }), deps).catch((e: unknown) => e);
    expect(isSkiffError(err, 'USER_REFUSED')).toBe(true);
    expect(runner.calls).toEqual([]);
  });

  it('refuses an invalid login name before running anything', async () => {
    const err = await ensureHostUser(spec({ name: '-oops' }), deps).catch((e: unknown) => e);
    expect(isSkiffError(err, 'USAGE')).toBe(true);
    expect(runner.calls).toEqual([]);
  });

  it('a symlink planted in the home changes nothing outside the keys directory', async () => {
    await ensureHostUser(spec(), deps);
    // The user plants links to places root writes (the Go original wrote ~/.ssh/authorized_keys,
    // ~/.skiff-core.yaml and ~/.skiff-core-setup.log as root, following links).
    const target = join(fake.root, 'target');
    await mkdir(target);
    await writeFile(join(target, 'victim'), 'do not touch\n');
    await symlink(target, join(fake.root, 'home/core/.ssh'));
    await symlink(join(target, 'victim'), join(fake.root, 'home/core/.skiff-core.yaml'));
    await symlink(join(target, 'victim'), join(fake.root, 'home/core/.skiff-core-setup.log'));
    await symlink(join(fake.root, 'etc'), join(fake.root, 'home/core/etc'));
    const before = await snapshot(fake.root);

    const outcome = await ensureHostUser(spec({ auth: { copyRootKeys: true, sshKeys: [KEY, `${KEY}2`] } }), deps);

    expect(outcome.changes.map((c) => c.kind)).toEqual(['keys-written']);
    expect(changedPaths(before, await snapshot(fake.root))).toEqual(['etc/skiff-core/authorized_keys/core']);
    expect(await fake.read('target/victim')).toBe('do not touch\n');
  });

  describe('with BusyBox', () => {
    beforeEach(() => {
      deps = { ...deps, tools: createBusyBoxTools(runner, BUSYBOX_PATHS, { root: fake.root }) };
    });

    it('creates with adduser -D and sets the password with chpasswd -e', async () => {
      await ensureHostUser(spec(), deps);
      expect(runner.calls[0]).toEqual({
        tool: 'adduser',
        file: BUSYBOX_PATHS.adduser,
        args: ['-D', '-s', LAUNCHER, '-h', '/home/core', 'core'],
        stdin: undefined,
      });
      expect(runner.calls[1]).toMatchObject({ tool: 'chpasswd', args: ['-e'] });
      expect(tools()).toEqual(['adduser', 'chpasswd']);
    });

    it('repairs a Go-original user: shell, docker as primary and supplementary group, "!" lock', async () => {
      // What `adduser -G docker -D -s /bin/sh core` and `passwd -l core` left behind.
      await fake.write('etc/passwd', 'root:x:0:0:root:/root:/bin/sh\ncore:x:1000:998:Linux User,,,:/home/core:/bin/sh\n');
      await fake.write('etc/group', 'root:x:0:\ndocker:x:998:core\n');
      await fake.write('etc/shadow', 'root:*:19000:0:99999:7:::\ncore:!:19000:0:99999:7:::\n');
      const { chpasswd: _, ...paths } = BUSYBOX_PATHS;
      deps = { ...deps, tools: createBusyBoxTools(runner, paths, { root: fake.root }) };

      const outcome = await ensureHostUser(spec({ auth: { locked: true, sshKeys: [KEY] } }), deps);

      expect(runner.calls.map((c) => [c.tool, ...c.args])).toEqual([
        ['delgroup', 'core', 'docker'],
        ['addgroup', 'core'],
      ]);
      expect(await fake.read('etc/passwd')).toBe(`root:x:0:0:root:/root:/bin/sh\ncore:x:1000:1000:Linux User,,,:/home/core:${LAUNCHER}\n`);
      expect(await fake.read('etc/group')).toBe('root:x:0:\ndocker:x:998:\ncore:x:1000:\n');
      expect(await shadowHash('core')).toBe('*');
      expect(outcome.changes.map((c) => c.kind)).toEqual(['shells-listed', 'shell-set', 'docker-group-left', 'password', 'keys-written']);
    });
  });
});
