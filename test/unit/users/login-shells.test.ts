import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { addShell, ensureLoginShellListed } from '../../../src/users/login-shells.js';
import { ME, createFakeRoot } from './fake-system.js';
import type { FakeRoot } from './fake-system.js';

describe('users/login-shells', () => {
  it.each([
    ['appends', '/bin/sh\n', '/bin/sh\n/usr/bin/skiff-core\n'],
    ['adds a missing final newline', '/bin/sh', '/bin/sh\n/usr/bin/skiff-core\n'],
    ['handles an empty file', '', '/usr/bin/skiff-core\n'],
    ['is undefined when listed', '# shells\n/bin/sh\n/usr/bin/skiff-core\n', undefined],
    ['ignores surrounding blanks', '/usr/bin/skiff-core  \n', undefined],
    ['creates a missing file with /bin/sh', undefined, '/bin/sh\n/usr/bin/skiff-core\n'],
  ])('addShell %s', (_, content, expected) => {
    expect(addShell(content, '/usr/bin/skiff-core')).toBe(expected);
  });

  describe('ensureLoginShellListed', () => {
    let fake: FakeRoot;
    beforeEach(async () => {
      fake = await createFakeRoot();
    });
    afterEach(() => fake.cleanup());

    it('adds the launcher once, keeping the file mode', async () => {
      const { chmod } = await import('node:fs/promises');
      await chmod(join(fake.root, 'etc/shells'), 0o644);
      const first = await ensureLoginShellListed('/usr/bin/skiff-core', { root: fake.root });
      expect(first).toEqual({ kind: 'shells-listed', path: join(fake.root, 'etc/shells'), shell: '/usr/bin/skiff-core', created: false });
      expect(await fake.read('etc/shells')).toBe('/bin/sh\n/bin/bash\n/usr/bin/skiff-core\n');
      expect((await stat(join(fake.root, 'etc/shells'))).mode & 0o777).toBe(0o644);
      expect(await ensureLoginShellListed('/usr/bin/skiff-core', { root: fake.root })).toBeUndefined();
    });

    it('creates a missing /etc/shells 0644', async () => {
      const { rm } = await import('node:fs/promises');
      await rm(join(fake.root, 'etc/shells'));
      const change = await ensureLoginShellListed('/usr/bin/skiff-core', { root: fake.root, owner: ME });
      expect(change?.created).toBe(true);
      expect(await fake.read('etc/shells')).toBe('/bin/sh\n/usr/bin/skiff-core\n');
      expect((await stat(join(fake.root, 'etc/shells'))).mode & 0o777).toBe(0o644);
    });

    it.each([['skiff-core'], ['/usr/bin/a:b'], ['/usr/bin/a\n/bin/evil']])('refuses %j', async (shell) => {
      await expect(ensureLoginShellListed(shell, { root: fake.root })).rejects.toThrow(/absolute path/);
    });
  });
});
