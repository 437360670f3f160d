import { describe, expect, it } from 'vitest';
import type { ExecOptions, ExecResult } from '../../../src/engine/engine.js';
import { isSkiffError } from '../../../src/errors.js';
import { ensureContainerUser, resolveContainerShell, splitContainerUser } from '../../../src/users/container-user.js';
import type { ContainerUserEngine } from '../../../src/users/container-user.js';

/**
 * A container with a passwd file and a set of installed programs; exec runs getent, cat, useradd
 * and adduser against them the way the real programs behave (126 for a missing program, as Docker
 * reports it).
 */
function fakeContainer(options: { passwd: string; programs: string[]; failCreate?: ExecResult }) {
  let passwd = options.passwd;
  const calls: { cmd: string[]; user: string | undefined }[] = [];
  const missing = (p: string): ExecResult => ({
    exitCode: 126,
    stdout: `OCI runtime exec failed: exec failed: unable to start container process: exec: "${p}": executable file not found in $PATH: unknown\r\n`,
    stderr: '',
  });
  const ok = (stdout = ''): ExecResult => ({ exitCode: 0, stdout, stderr: '' });
  const find = (user: string) => passwd.split('\n').find((l) => l.split(':')[0] === user || l.split(':')[2] === user);
  const engine: ContainerUserEngine = {
    async execRun(id: string, cmd: string[], opts: ExecOptions = {}): Promise<ExecResult> {
      expect(id).toBe('ctr');
      calls.push({ cmd, user: opts.user });
      const [program, ...args] = cmd as [string, ...string[]];
      if (!options.programs.includes(program)) return missing(program);
      switch (program) {
        case 'getent': {
          const line = find(args[1]!);
          return line ? ok(`${line}\n`) : { exitCode: 2, stdout: '', stderr: '' };
        }
        case 'cat':
          return ok(passwd);
        case 'useradd':
        case 'adduser': {
          if (options.failCreate) return options.failCreate;
          const name = args[args.length - 1]!;
          const shell = args[args.indexOf('-s') + 1]!;
          passwd += `${name}:x:1000:1000::/home/${name}:${shell}\n`;
          return ok();
        }
        default:
          throw new Error(`unexpected ${program}`);
      }
    },
  };
  return { engine, calls };
}

const BASE = 'root:x:0:0:root:/root:/bin/bash\nnobody:x:65534:65534::/nonexistent:/usr/sbin/nologin\n';

describe('users/container-user', () => {
  it.each([
    ['core', { user: 'core', group: undefined }],
    ['1000', { user: '1000', group: undefined }],
    ['core:wheel', { user: 'core', group: 'wheel' }],
    ['1000:1000', { user: '1000', group: '1000' }],
  ])('splitContainerUser(%j)', (spec, expected) => {
    expect(splitContainerUser(spec)).toEqual(expected);
  });

  it.each([
    [['/bin/zsh', '-l'], { shell: '/bin/bash' }, ['/bin/zsh', '-l']],
    [undefined, { shell: '/bin/bash' }, ['/bin/bash']],
    [[], { shell: '/bin/bash' }, ['/bin/bash']],
    [undefined, { shell: '' }, ['/bin/sh']],
    [undefined, undefined, ['/bin/sh']],
  ] as const)('resolveContainerShell(%j, %j) = %j', (configured, entry, expected) => {
    expect(resolveContainerShell(configured, entry)).toEqual(expected);
  });

  it('returns an existing user with its passwd shell, as root (0:0), creating nothing', async () => {
    const { engine, calls } = fakeContainer({ passwd: `${BASE}core:x:1000:1001::/home/core:/bin/bash\n`, programs: ['getent', 'useradd'] });
    expect(await ensureContainerUser(engine, 'ctr', { user: 'core' })).toEqual({
      name: 'core',
      uid: 1000,
      gid: 1001,
      home: '/home/core',
      shell: ['/bin/bash'],
      created: false,
      warnings: [],
    });
    expect(calls).toEqual([{ cmd: ['getent', 'passwd', 'core'], user: '0:0' }]);
  });

  it('creates a missing user with useradd -m and /bin/sh', async () => {
    const { engine, calls } = fakeContainer({ passwd: BASE, programs: ['getent', 'useradd'] });
    const user = await ensureContainerUser(engine, 'ctr', { user: 'core' });
    expect(calls.map((c) => c.cmd)).toEqual([
      ['getent', 'passwd', 'core'],
      ['useradd', '-m', '-s', '/bin/sh', '--', 'core'],
      ['getent', 'passwd', 'core'],
    ]);
    expect(user).toMatchObject({ name: 'core', home: '/home/core', shell: ['/bin/sh'], created: true });
  });

  it('creates with the configured shell program and returns the configured argv', async () => {
    const { engine, calls } = fakeContainer({ passwd: BASE, programs: ['getent', 'useradd'] });
    const user = await ensureContainerUser(engine, 'ctr', { user: 'core', shell: ['/bin/bash', '-l'] });
    expect(calls[1]!.cmd).toEqual(['useradd', '-m', '-s', '/bin/bash', '--', 'core']);
    expect(user.shell).toEqual(['/bin/bash', '-l']);
  });

  it('falls back to BusyBox adduser -D, and to /etc/passwd without getent (Alpine, BusyBox images)', async () => {
    const { engine, calls } = fakeContainer({ passwd: BASE, programs: ['cat', 'adduser'] });
    const user = await ensureContainerUser(engine, 'ctr', { user: 'core', shell: ['zsh'] });
    expect(calls.map((c) => c.cmd)).toEqual([
      ['getent', 'passwd', 'core'],
      ['cat', '/etc/passwd'],
      ['useradd', '-m', '-s', '/bin/sh', '--', 'core'],
      ['adduser', '-D', '-s', '/bin/sh', 'core'],
      ['getent', 'passwd', 'core'],
      ['cat', '/etc/passwd'],
    ]);
    expect(user).toMatchObject({ name: 'core', shell: ['zsh'], created: true });
  });

  it('does not create without `create`', async () => {
    const { engine, calls } = fakeContainer({ passwd: BASE, programs: ['getent', 'useradd'] });
    const err = await ensureContainerUser(engine, 'ctr', { user: 'core', create: false }).catch((e: unknown) => e);
    expect(isSkiffError(err, 'CONTAINER_USER_FAILED')).toBe(true);
    expect((err as Error).message).toMatch(/set createContainerUser: true/);
    expect(calls).toHaveLength(1);
  });

  it('resolves a uid, and refuses to create one', async () => {
    const { engine } = fakeContainer({ passwd: BASE, programs: ['getent', 'useradd'] });
    expect(await ensureContainerUser(engine, 'ctr', { user: '65534:65534' })).toMatchObject({
      name: 'nobody',
      uid: 65534,
      shell: ['/usr/sbin/nologin'],
      warnings: ["65534's shell in container ctr is /usr/sbin/nologin, so logins end at once; set containerShell"],
    });
    const err = await ensureContainerUser(engine, 'ctr', { user: '4242' }).catch((e: unknown) => e);
    expect(isSkiffError(err, 'CONTAINER_USER_FAILED')).toBe(true);
  });

  it('reports a failing useradd with its message', async () => {
    const { engine } = fakeContainer({
      passwd: BASE,
      programs: ['getent', 'useradd'],
      failCreate: { exitCode: 12, stdout: '', stderr: 'useradd: cannot create directory /home/core\n' },
    });
    await expect(ensureContainerUser(engine, 'ctr', { user: 'core' })).rejects.toThrow(
      'creating core in container ctr failed (exit 12): useradd: cannot create directory /home/core',
    );
  });

  it('says so when the image has no tool to create users', async () => {
    const { engine } = fakeContainer({ passwd: BASE, programs: ['getent'] });
    await expect(ensureContainerUser(engine, 'ctr', { user: 'core' })).rejects.toThrow(/neither useradd nor adduser/);
  });
});
