import { describe, expect, it } from 'vitest';
import { Config } from '../../../src/config/schema.js';
import { allowedEnv, execPlan, isSftpCommand, routeFor } from '../../../src/session/route.js';
import { commandLine, shellQuote } from '../../../src/session/warm-exec.js';
import { createFrameDecoder, encodeFrame, FRAME } from '../../../src/session/frames.js';

const config = Config.parse({
  containers: { core: { image: 'x:1' }, other: { image: 'y:1' } },
  users: {
    core: { container: 'core', containerUser: 'core', containerShell: ['/bin/bash'] },
    plain: { container: 'other', auth: { agentForwarding: true } },
  },
});

describe('session/route', () => {
  it('routes by the config alone', () => {
    expect(routeFor(config, 'core')).toEqual({
      user: 'core',
      container: 'core',
      containerUser: 'core',
      shell: ['/bin/bash'],
      createContainerUser: false,
      agentForwarding: false,
    });
    expect(routeFor(config, 'plain')).toMatchObject({ container: 'other', agentForwarding: true });
    expect(routeFor(config, 'nobody')).toBeUndefined();
  });

  it('keeps only the allowlisted environment', () => {
    expect(
      allowedEnv({
        TERM: 'xterm',
        LC_ALL: 'C',
        LD_PRELOAD: '/x.so',
        NODE_OPTIONS: '--inspect',
        PATH: '/evil',
        SSH_TTY: '/dev/pts/1',
        BASH_ENV: '/x',
      }),
    ).toEqual({
      TERM: 'xterm',
      LC_ALL: 'C',
      SSH_TTY: '/dev/pts/1',
    });
  });

  it.each([
    ['/usr/lib/openssh/sftp-server', true],
    ['internal-sftp', true],
    ['/usr/libexec/sftp-server -l INFO', true],
    ['sftp-server-evil; rm -rf /', false],
    ['ls', false],
  ])('recognises %j as an sftp request: %s', (command, expected) => {
    expect(isSftpCommand(command)).toBe(expected);
  });

  it('plans a login shell in the home directory, SHELL -c CMD, or the sftp server', () => {
    const route = routeFor(config, 'core')!;
    const resolved = { shell: ['/bin/bash'], home: '/home/core', sftpServer: '/usr/lib/openssh/sftp-server' };
    expect(execPlan(route, resolved, { env: { TERM: 'vt100' } })).toMatchObject({
      cmd: ['/bin/bash', '-l'],
      workingDir: '/home/core',
      user: 'core',
      env: ['SHELL=/bin/bash', 'USER=core', 'LOGNAME=core', 'HOME=/home/core', 'TERM=vt100'],
    });
    expect(execPlan(route, resolved, { command: 'make -C x', env: {} })).toMatchObject({ cmd: ['/bin/bash', '-c', 'make -C x'] });
    expect(execPlan(route, resolved, { command: '/usr/lib/openssh/sftp-server', env: {} })).toMatchObject({
      cmd: ['/usr/lib/openssh/sftp-server'],
    });
    expect(execPlan(route, { ...resolved, sftpServer: undefined }, { command: 'internal-sftp', env: {} })).toMatchObject({
      error: expect.stringContaining('no sftp-server in container core'),
    });
  });
});

describe('session/warm-exec', () => {
  it.each([
    ["it's", `'it'\\''s'`],
    ['$(rm -rf /)', `'$(rm -rf /)'`],
    ['', `''`],
  ])('quotes %j for the shell', (word, quoted) => {
    expect(shellQuote(word)).toBe(quoted);
  });

  it('builds the one line the waiting shell runs', () => {
    const plan = {
      cmd: ['/bin/bash', '-c', "echo 'hi'"],
      env: [],
      identityEnv: [],
      clientEnv: [['TERM', "x'y"]] as [string, string][],
      workingDir: undefined,
      user: undefined,
    };
    expect(commandLine(plan)).toBe(`export TERM='x'\\''y'; exec '/bin/bash' '-c' 'echo '\\''hi'\\'''\n`);
  });
});

describe('session/frames', () => {
  it('decodes frames split across chunks and many frames in one chunk', () => {
    const got: [number, string][] = [];
    const decoder = createFrameDecoder(
      (type, payload) => got.push([type, payload.toString()]),
      (m) => got.push([-1, m]),
    );
    const bytes = Buffer.concat([
      encodeFrame(FRAME.stdout, 'hello'),
      encodeFrame(FRAME.stderr, 'oops'),
      encodeFrame(FRAME.exit, { code: 3 }),
    ]);
    for (let i = 0; i < bytes.length; i += 3) decoder.push(bytes.subarray(i, i + 3));
    expect(got).toEqual([
      [FRAME.stdout, 'hello'],
      [FRAME.stderr, 'oops'],
      [FRAME.exit, '{"code":3}'],
    ]);
  });

  it('refuses a frame over the size limit', () => {
    const errors: string[] = [];
    const decoder = createFrameDecoder(
      () => undefined,
      (m) => errors.push(m),
    );
    const header = Buffer.alloc(5);
    header.writeUInt8(FRAME.stdin, 0);
    header.writeUInt32BE(64 * 1024 * 1024, 1);
    decoder.push(header);
    expect(errors).toEqual(['first frame of 67108864 bytes is over the 4194304-byte limit']);
  });
});
