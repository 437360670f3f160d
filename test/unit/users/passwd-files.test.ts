import { describe, expect, it } from 'vitest';
import {
  currentHash,
  findPasswdEntry,
  hashState,
  parseGroup,
  parsePasswd,
  parsePasswdLine,
  parseShadow,
  removeGroupMember,
  setField,
  supplementaryGroups,
} from '../../../src/users/passwd-files.js';

const PASSWD = [
  'root:x:0:0:root:/root:/bin/bash',
  'core:x:1000:1000:Core User,,,:/home/core:/usr/bin/skiff-core',
  '# a comment',
  '',
  'broken:x:notanumber:1:::',
  '+nisuser::::::',
  'noshell:x:1001:1001::/home/noshell:',
  'nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin',
].join('\n');

describe('users/passwd-files', () => {
  describe('parsePasswdLine', () => {
    it('reads all seven fields', () => {
      expect(parsePasswdLine('core:x:1000:1000:Core User,,,:/home/core:/usr/bin/skiff-core')).toEqual({
        name: 'core',
        password: 'x',
        uid: 1000,
        gid: 1000,
        gecos: 'Core User,,,',
        home: '/home/core',
        shell: '/usr/bin/skiff-core',
      });
    });

    it.each([
      ['too few fields', 'core:x:1000:1000:/home/core:/bin/sh'],
      ['non-numeric uid', 'core:x:abc:1000::/home/core:/bin/sh'],
      ['negative gid', 'core:x:1:-1::/:/bin/sh'],
      ['empty name', ':x:1:1::/:/bin/sh'],
      ['NIS compat entry', '+::::::'],
      ['comment', '#core:x:1:1::/:/bin/sh'],
    ])('rejects %s', (_, line) => {
      expect(parsePasswdLine(line)).toBeUndefined();
    });

    it('keeps an empty shell empty and tolerates CRLF', () => {
      expect(parsePasswdLine('a:x:1:2::/h:\r')).toMatchObject({ shell: '', home: '/h' });
    });
  });

  it('parses a file, skipping what is not an entry', () => {
    expect(parsePasswd(PASSWD).map((e) => e.name)).toEqual(['root', 'core', 'noshell', 'nobody']);
  });

  it('finds by name, then by uid', () => {
    expect(findPasswdEntry(PASSWD, 'core')?.uid).toBe(1000);
    expect(findPasswdEntry(PASSWD, '65534')?.name).toBe('nobody');
    expect(findPasswdEntry(PASSWD, 'ghost')).toBeUndefined();
    expect(findPasswdEntry(PASSWD, '4242')).toBeUndefined();
  });

  it('parses groups with their members', () => {
    expect(parseGroup('docker:x:998:core,legacy\naudio:x:29:\nbad:x:z:\n')).toEqual([
      { name: 'docker', gid: 998, members: ['core', 'legacy'] },
      { name: 'audio', gid: 29, members: [] },
    ]);
  });

  it('parses shadow names and hashes', () => {
    expect(parseShadow('root:*:1:0:99999:7:::\ncore:$6$x$y:1::::::\n')).toEqual([
      { name: 'root', hash: '*' },
      { name: 'core', hash: '$6$x$y' },
    ]);
  });

  it.each([
    [undefined, 'missing'],
    ['x', 'missing'],
    ['', 'empty'],
    ['!', 'locked'],
    ['!!', 'locked'],
    ['!$6$abc$def', 'locked'],
    ['*', 'disabled'],
    ['*LK*', 'disabled'],
    ['$6$salt$hash', 'usable'],
    ['$y$j9T$a$b', 'usable'],
    ['abJnggxhB/yWI', 'usable'],
  ] as const)('hashState(%j) is %s', (hash, state) => {
    expect(hashState(hash)).toBe(state);
  });

  it('takes the hash from shadow, else from passwd', () => {
    const core = parsePasswdLine('core:x:1000:1000::/home/core:/bin/sh')!;
    expect(currentHash(core, [{ name: 'core', hash: '*' }])).toBe('*');
    expect(currentHash(core, [])).toBeUndefined();
    expect(currentHash({ ...core, password: '$6$a$b' }, undefined)).toBe('$6$a$b');
  });

  it('lists supplementary groups', () => {
    expect(supplementaryGroups(parseGroup('docker:x:998:core\naudio:x:29:x,core\nvideo:x:44:\n'), 'core')).toEqual(['docker', 'audio']);
  });

  describe('setField', () => {
    const text = 'root:x:0:0:root:/root:/bin/sh\ncore:x:1000:1000::/home/core:/bin/sh\n';

    it('changes one field of the named line only', () => {
      expect(setField(text, 'core', 6, '/usr/bin/skiff-core')).toBe(
        'root:x:0:0:root:/root:/bin/sh\ncore:x:1000:1000::/home/core:/usr/bin/skiff-core\n',
      );
    });

    it('is undefined for an unknown name', () => {
      expect(setField(text, 'ghost', 6, '/bin/sh')).toBeUndefined();
    });

    it('does not match a name that is a prefix of another', () => {
      expect(setField('corey:x:1:1::/:/bin/sh\n', 'core', 6, '/x')).toBeUndefined();
    });

    it.each([['a:b'], ['a\nb']])('refuses a value with separators: %j', (value) => {
      expect(() => setField(text, 'core', 6, value)).toThrow();
    });
  });

  describe('removeGroupMember', () => {
    it('removes the user and keeps the others', () => {
      expect(removeGroupMember('docker:x:998:a,core,b\naudio:x:29:core\n', 'docker', 'core')).toBe('docker:x:998:a,b\naudio:x:29:core\n');
    });

    it('is undefined when the user is not a member', () => {
      expect(removeGroupMember('docker:x:998:a\n', 'docker', 'core')).toBeUndefined();
    });
  });
});
