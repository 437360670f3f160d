import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { isSkiffError } from '../../../src/errors.js';
import { createBusyBoxTools, createShadowTools, detectAccountTools } from '../../../src/users/account-tools.js';
import type { CommandResult, CommandRunner, RunOptions } from '../../../src/users/command-runner.js';
import { BUSYBOX_PATHS, SHADOW_PATHS, createFakeRoot, createFakeRunner } from './fake-system.js';
import type { FakeRoot } from './fake-system.js';

/** Records argv and stdin; every command succeeds unless told otherwise. */
function recorder(result: CommandResult = { exitCode: 0, stdout: '', stderr: '' }) {
  const calls: { file: string; args: string[]; stdin: string | undefined }[] = [];
  const runner: CommandRunner = {
    async run(file: string, args: readonly string[], options: RunOptions = {}) {
      calls.push({ file, args: [...args], stdin: options.stdin });
      return result;
    },
  };
  return { calls, runner };
}

describe('users/account-tools', () => {
  describe('shadow', () => {
    it.each([
      [
        'createUser with its own new group',
        (t: ReturnType<typeof createShadowTools>) => t.createUser('core', { shell: '/usr/bin/skiff-core', home: '/home/core' }),
        [SHADOW_PATHS.useradd, ['-m', '-d', '/home/core', '-s', '/usr/bin/skiff-core', '-U', '--', 'core']],
      ],
      [
        'createUser with an existing group',
        (t: ReturnType<typeof createShadowTools>) =>
          t.createUser('core', { shell: '/usr/bin/skiff-core', home: '/home/core', group: 'core' }),
        [SHADOW_PATHS.useradd, ['-m', '-d', '/home/core', '-s', '/usr/bin/skiff-core', '-g', 'core', '--', 'core']],
      ],
      ['createGroup', (t: ReturnType<typeof createShadowTools>) => t.createGroup('core'), [SHADOW_PATHS.groupadd, ['--', 'core']]],
      [
        'setShell',
        (t: ReturnType<typeof createShadowTools>) => t.setShell('core', '/usr/bin/skiff-core'),
        [SHADOW_PATHS.usermod, ['-s', '/usr/bin/skiff-core', '--', 'core']],
      ],
      [
        'setPrimaryGroup',
        (t: ReturnType<typeof createShadowTools>) => t.setPrimaryGroup('core', 'core'),
        [SHADOW_PATHS.usermod, ['-g', 'core', '--', 'core']],
      ],
      [
        'removeFromGroup with gpasswd',
        (t: ReturnType<typeof createShadowTools>) => t.removeFromGroup('core', 'docker', ['audio']),
        [SHADOW_PATHS.gpasswd, ['-d', 'core', 'docker']],
      ],
      ['clearPassword', (t: ReturnType<typeof createShadowTools>) => t.clearPassword('core'), [SHADOW_PATHS.passwd, ['-d', 'core']]],
    ] as const)('%s runs the exact argv', async (_, act, [file, args]) => {
      const { calls, runner } = recorder();
      await act(createShadowTools(runner, SHADOW_PATHS));
      expect(calls).toEqual([{ file, args, stdin: undefined }]);
    });

    it('removes from a group with usermod -G when gpasswd is missing', async () => {
      const { calls, runner } = recorder();
      const { gpasswd: _, ...paths } = SHADOW_PATHS;
      await createShadowTools(runner, paths).removeFromGroup('core', 'docker', ['audio', 'video']);
      expect(calls).toEqual([{ file: SHADOW_PATHS.usermod, args: ['-G', 'audio,video', '--', 'core'], stdin: undefined }]);
    });

    it('passes the hash to chpasswd -e on stdin, never in argv', async () => {
      const { calls, runner } = recorder();
      await createShadowTools(runner, SHADOW_PATHS).setPasswordHash('core', '$6$salt$hash');
      expect(calls).toEqual([{ file: SHADOW_PATHS.chpasswd, args: ['-e'], stdin: 'core:$6$salt$hash\n' }]);
    });

    it('refuses a hash that would break the chpasswd line', async () => {
      const { calls, runner } = recorder();
      await expect(createShadowTools(runner, SHADOW_PATHS).setPasswordHash('core', 'a\nroot:x')).rejects.toThrow(/newline/);
      expect(calls).toEqual([]);
    });

    it('reports a failing tool with its exit code and message, without stdin', async () => {
      const { runner } = recorder({ exitCode: 9, stdout: '', stderr: "useradd: user 'core' already exists\n" });
      const err = await createShadowTools(runner, SHADOW_PATHS)
        .createUser('core', { shell: '/usr/bin/skiff-core', home: '/home/core' })
        .catch((e: unknown) => e);
      expect(isSkiffError(err, 'USER_COMMAND_FAILED')).toBe(true);
      expect((err as Error).message).toBe(
        "creating user core failed: `useradd -m -d /home/core -s /usr/bin/skiff-core -U -- core` exited with 9: useradd: user 'core' already exists",
      );
      const { runner: r2 } = recorder({ exitCode: 1, stdout: '', stderr: 'chpasswd: line 1: bad' });
      const err2 = await createShadowTools(r2, SHADOW_PATHS)
        .setPasswordHash('core', '$6$secret')
        .catch((e: unknown) => e);
      expect((err2 as Error).message).not.toContain('secret');
    });
  });

  describe('busybox', () => {
    let fake: FakeRoot;
    beforeEach(async () => {
      fake = await createFakeRoot({
        'etc/passwd': 'root:x:0:0:root:/root:/bin/sh\ncore:x:1000:998:Linux User,,,:/home/core:/bin/sh\n',
        'etc/group': 'root:x:0:\ndocker:x:998:core,other\ncore:x:1000:\n',
        'etc/gshadow': 'root:!::\ndocker:!::core,other\ncore:!::\n',
        'etc/shadow': 'root:*:19000:0:99999:7:::\ncore:!:0:0:99999:7:::\n',
      });
    });
    afterEach(() => fake.cleanup());

    it.each([
      [
        'createUser',
        (t: ReturnType<typeof createBusyBoxTools>) => t.createUser('core', { shell: '/usr/bin/skiff-core', home: '/home/core' }),
        [BUSYBOX_PATHS.adduser, ['-D', '-s', '/usr/bin/skiff-core', '-h', '/home/core', 'core']],
      ],
      [
        'createUser with an existing group',
        (t: ReturnType<typeof createBusyBoxTools>) =>
          t.createUser('core', { shell: '/usr/bin/skiff-core', home: '/home/core', group: 'core' }),
        [BUSYBOX_PATHS.adduser, ['-D', '-s', '/usr/bin/skiff-core', '-h', '/home/core', '-G', 'core', 'core']],
      ],
      ['createGroup', (t: ReturnType<typeof createBusyBoxTools>) => t.createGroup('core'), [BUSYBOX_PATHS.addgroup, ['core']]],
      [
        'removeFromGroup',
        (t: ReturnType<typeof createBusyBoxTools>) => t.removeFromGroup('core', 'docker', []),
        [BUSYBOX_PATHS.delgroup, ['core', 'docker']],
      ],
      ['clearPassword', (t: ReturnType<typeof createBusyBoxTools>) => t.clearPassword('core'), [BUSYBOX_PATHS.passwd, ['-d', 'core']]],
    ] as const)('%s runs the exact argv', async (_, act, [file, args]) => {
      const { calls, runner } = recorder();
      await act(createBusyBoxTools(runner, BUSYBOX_PATHS, { root: fake.root }));
      expect(calls).toEqual([{ file, args, stdin: undefined }]);
    });

    it('uses chpasswd -e with the hash on stdin when BusyBox has it', async () => {
      const { calls, runner } = recorder();
      await createBusyBoxTools(runner, BUSYBOX_PATHS, { root: fake.root }).setPasswordHash('core', '*');
      expect(calls).toEqual([{ file: BUSYBOX_PATHS.chpasswd, args: ['-e'], stdin: 'core:*\n' }]);
    });

    it('sets the shell by editing /etc/passwd (BusyBox has no usermod), keeping mode and other lines', async () => {
      const { calls, runner } = recorder();
      const before = await stat(join(fake.root, 'etc/passwd'));
      await createBusyBoxTools(runner, BUSYBOX_PATHS, { root: fake.root }).setShell('core', '/usr/bin/skiff-core');
      expect(calls).toEqual([]);
      expect(await fake.read('etc/passwd')).toBe(
        'root:x:0:0:root:/root:/bin/sh\ncore:x:1000:998:Linux User,,,:/home/core:/usr/bin/skiff-core\n',
      );
      expect((await stat(join(fake.root, 'etc/passwd'))).mode).toBe(before.mode);
    });

    it('sets the primary group by gid in /etc/passwd', async () => {
      const { runner } = recorder();
      await createBusyBoxTools(runner, BUSYBOX_PATHS, { root: fake.root }).setPrimaryGroup('core', 'core');
      expect(await fake.read('etc/passwd')).toContain('core:x:1000:1000:');
    });

    it('without delgroup, edits /etc/group and /etc/gshadow', async () => {
      const { calls, runner } = recorder();
      const { delgroup: _, ...paths } = BUSYBOX_PATHS;
      await createBusyBoxTools(runner, paths, { root: fake.root }).removeFromGroup('core', 'docker', []);
      expect(calls).toEqual([]);
      expect(await fake.read('etc/group')).toBe('root:x:0:\ndocker:x:998:other\ncore:x:1000:\n');
      expect(await fake.read('etc/gshadow')).toBe('root:!::\ndocker:!::other\ncore:!::\n');
    });

    it('without chpasswd, writes the hash into /etc/shadow with today as the last change', async () => {
      const { calls, runner } = recorder();
      const { chpasswd: _, ...paths } = BUSYBOX_PATHS;
      const now = () => new Date('2024-03-01T12:00:00Z');
      await createBusyBoxTools(runner, paths, { root: fake.root, now }).setPasswordHash('core', '*');
      expect(calls).toEqual([]);
      expect(await fake.read('etc/shadow')).toBe('root:*:19000:0:99999:7:::\ncore:*:19783:0:99999:7:::\n');
      const mode = (await stat(join(fake.root, 'etc/shadow'))).mode & 0o777;
      expect(mode).toBe((await stat(join(fake.root, 'etc/passwd'))).mode & 0o777);
    });

    it('without chpasswd and without a shadow entry, adds one', async () => {
      await fake.write('etc/shadow', 'root:*:19000:0:99999:7:::');
      const { runner } = recorder();
      const { chpasswd: _, ...paths } = BUSYBOX_PATHS;
      await createBusyBoxTools(runner, paths, { root: fake.root, now: () => new Date(0) }).setPasswordHash('core', '$6$a$b');
      expect(await fake.read('etc/shadow')).toBe('root:*:19000:0:99999:7:::\ncore:$6$a$b:0:0:99999:7:::\n');
    });

    it('without adduser, creating a user says what is missing', async () => {
      const { runner } = recorder();
      const err = await createBusyBoxTools(runner, { passwd: '/bin/passwd' }, { root: fake.root })
        .createUser('new', { shell: '/bin/sh', home: '/home/new' })
        .catch((e: unknown) => e);
      expect(isSkiffError(err, 'USER_TOOLS_MISSING')).toBe(true);
      expect((err as Error).message).toMatch(/adduser is not installed/);
    });

    it('refuses to edit an account file that is a symlink', async () => {
      const { symlink, rm } = await import('node:fs/promises');
      await rm(join(fake.root, 'etc/passwd'));
      await symlink('/etc/passwd', join(fake.root, 'etc/passwd'));
      const { runner } = recorder();
      await expect(createBusyBoxTools(runner, BUSYBOX_PATHS, { root: fake.root }).setShell('root', '/bin/evil')).rejects.toThrow(
        /not a regular file/,
      );
    });
  });

  describe('detectAccountTools', () => {
    function onPath(...files: string[]) {
      return async (path: string) => files.includes(path);
    }
    const runner = recorder().runner;

    it('picks shadow when its tools are there, gpasswd optional', async () => {
      const tools = await detectAccountTools({
        runner,
        searchPath: ['/usr/sbin', '/usr/bin'],
        isExecutable: onPath(...Object.values(SHADOW_PATHS).filter((p) => !p.endsWith('gpasswd')), '/usr/sbin/adduser'),
      });
      expect(tools.kind).toBe('shadow');
      expect(tools.found).not.toHaveProperty('gpasswd');
    });

    it('picks BusyBox when useradd is missing', async () => {
      const tools = await detectAccountTools({
        runner,
        searchPath: ['/bin', '/sbin'],
        isExecutable: onPath('/bin/adduser', '/bin/passwd', '/bin/addgroup'),
      });
      expect(tools.kind).toBe('busybox');
      expect(tools.found).toEqual({ passwd: '/bin/passwd', adduser: '/bin/adduser', addgroup: '/bin/addgroup' });
    });

    it('takes the first directory on the search path', async () => {
      const tools = await detectAccountTools({
        runner,
        searchPath: ['/opt/bin', '/bin'],
        isExecutable: onPath('/bin/passwd', '/opt/bin/passwd'),
      });
      expect(tools.found['passwd']).toBe('/opt/bin/passwd');
    });

    it('fails with USER_TOOLS_MISSING when nothing is there', async () => {
      const err = await detectAccountTools({ runner, searchPath: ['/nowhere'], isExecutable: onPath() }).catch((e: unknown) => e);
      expect(isSkiffError(err, 'USER_TOOLS_MISSING')).toBe(true);
    });

    it('uses the fake system end to end (sanity check of the test double)', async () => {
      const f = await createFakeRoot();
      try {
        const tools = createShadowTools(createFakeRunner(f), SHADOW_PATHS);
        await tools.createUser('core', { shell: '/bin/sh', home: '/home/core' });
        expect(await f.read('etc/passwd')).toContain('core:x:1000:1000::/home/core:/bin/sh');
      } finally {
        await f.cleanup();
      }
    });
  });
});
