import { describe, expect, it } from 'vitest';
import { isSkiffError } from '../../../src/errors.js';
import { createCommandRunner, findExecutable, runChecked, searchPath } from '../../../src/users/command-runner.js';

// The real runner, with harmless programs of this machine.
describe('users/command-runner', () => {
  const runner = createCommandRunner();

  it('passes arguments verbatim (no shell) and stdin', async () => {
    const result = await runner.run('/bin/sh', ['-c', 'printf "%s|" "$@"; cat', 'sh', '$HOME', 'a b', ';echo no'], { stdin: 'from stdin' });
    expect(result).toEqual({ exitCode: 0, stdout: '$HOME|a b|;echo no|from stdin', stderr: '' });
  });

  it('runs with a fixed environment', async () => {
    process.env['LD_PRELOAD_TEST_MARK'] = 'leak';
    try {
      const result = await runner.run('/usr/bin/env', []);
      expect(result.stdout).not.toContain('LD_PRELOAD_TEST_MARK');
      expect(result.stdout).toContain('LC_ALL=C');
    } finally {
      delete process.env['LD_PRELOAD_TEST_MARK'];
    }
  });

  it('resolves non-zero exits; runChecked turns them into USER_COMMAND_FAILED', async () => {
    expect((await runner.run('/bin/sh', ['-c', 'echo bad >&2; exit 3'])).exitCode).toBe(3);
    const err = await runChecked(runner, '/bin/sh', ['-c', 'echo bad >&2; exit 3'], 'testing').catch((e: unknown) => e);
    expect(isSkiffError(err, 'USER_COMMAND_FAILED')).toBe(true);
    expect((err as Error).message).toBe('testing failed: `sh -c echo bad >&2; exit 3` exited with 3: bad');
  });

  it('fails a missing program with USER_COMMAND_FAILED', async () => {
    const err = await runner.run('/nonexistent/tool', []).catch((e: unknown) => e);
    expect(isSkiffError(err, 'USER_COMMAND_FAILED')).toBe(true);
  });

  it('kills a command that runs too long', async () => {
    const err = await runner.run('/bin/sleep', ['10'], { timeoutMs: 100 }).catch((e: unknown) => e);
    expect(isSkiffError(err, 'TIMEOUT')).toBe(true);
  });

  it('finds executables on the search path, sbin included', async () => {
    expect(searchPath('/opt/x:relative:/usr/bin')).toEqual([
      '/opt/x',
      '/usr/bin',
      '/usr/local/sbin',
      '/usr/local/bin',
      '/usr/sbin',
      '/sbin',
      '/bin',
    ]);
    expect(await findExecutable('sh', ['/nonexistent', '/bin'])).toBe('/bin/sh');
    expect(await findExecutable('no-such-tool-here', searchPath())).toBeUndefined();
  });
});
