import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { formatDiagnostic } from '../../../src/config/diagnostics.js';
import { loadConfigFile, parseConfigFiles } from '../../../src/config/load.js';

const MAIN = `containers:
  core:
    image: debian:12
    cmd: ["sleep", "infinity"]
    env: ["FROM=main"]
users:
  core:
    container: core
gateway:
  listen: ["127.0.0.1:2222"]
`;

describe('config drop-ins', () => {
  it('adds entries, replaces a whole entry of the same name, and replaces any other section whole', () => {
    const result = parseConfigFiles([
      { file: '/c/config.yaml', input: MAIN },
      {
        file: '/c/config.d/10-dev.yaml',
        input: `containers:\n  dev:\n    image: alpine:3\n  core:\n    image: debian:13\nusers:\n  dev:\n    container: dev\ngateway:\n  maxAuthFailures: 3\n`,
      },
    ]);
    if (!result.ok) throw new Error(result.diagnostics.map(formatDiagnostic).join('\n'));
    expect(Object.keys(result.config.containers)).toEqual(['core', 'dev']);
    // The entry is replaced, not merged field by field: main's env and cmd are gone.
    expect(result.config.containers.core).toMatchObject({ image: 'debian:13', env: [] });
    expect(result.config.containers.core!.cmd).toBeUndefined();
    expect(result.config.users.dev!.container).toBe('dev');
    // gateway is one section: the fragment's replaces the main file's (listen back to its default).
    expect(result.config.gateway?.maxAuthFailures).toBe(3);
    expect(result.config.gateway?.listen).toEqual([]);
  });

  it('names the fragment, line and column of an error in it, and of an error the merge reveals', () => {
    const result = parseConfigFiles([
      { file: '/c/config.yaml', input: MAIN },
      { file: '/c/config.d/10-a.yaml', input: `containers:\n  other:\n    image: alpine:3\n    tty: 7\n` },
      { file: '/c/config.d/20-b.yaml', input: `users:\n  bob:\n    container: nothere\n` },
    ]);
    expect(result.ok).toBe(false);
    const lines = result.diagnostics.filter((d) => d.severity === 'error').map(formatDiagnostic);
    expect(lines).toEqual([
      expect.stringMatching(/^\/c\/config\.d\/10-a\.yaml:4:10: containers\.other\.tty: expected true or false, found number 7/),
      expect.stringMatching(/^\/c\/config\.d\/20-b\.yaml:3:16: users\.bob\.container: no container named "nothere"/),
    ]);
  });

  it('lets the main file refer to what a fragment defines', () => {
    const result = parseConfigFiles([
      { file: '/c/config.yaml', input: `users:\n  dev:\n    container: dev\n` },
      { file: '/c/config.d/dev.yml', input: `containers:\n  dev:\n    image: alpine:3\n` },
    ]);
    expect(result.ok).toBe(true);
  });

  describe('beside a config file', () => {
    let dir: string;
    beforeEach(async () => {
      dir = await mkdtemp(join(tmpdir(), 'skt-dropins-'));
      await writeFile(join(dir, 'config.yaml'), MAIN);
      await mkdir(join(dir, 'config.d'));
    });
    afterEach(async () => {
      await rm(dir, { recursive: true, force: true });
    });

    it('reads config.d/*.yaml and *.yml in name order, and nothing else there', async () => {
      await writeFile(join(dir, 'config.d', '20-later.yaml'), `containers:\n  one:\n    image: alpine:2\n`);
      await writeFile(join(dir, 'config.d', '10-first.yml'), `containers:\n  one:\n    image: alpine:1\n  two:\n    image: alpine:1\n`);
      await writeFile(join(dir, 'config.d', '30-ignored.yaml.disabled'), 'not: [valid');
      await writeFile(join(dir, 'config.d', '.40-hidden.yaml'), 'not: [valid');
      const result = await loadConfigFile(join(dir, 'config.yaml'));
      if (!result.ok) throw new Error(result.diagnostics.map(formatDiagnostic).join('\n'));
      expect(result.config.containers.one!.image).toBe('alpine:2');
      expect(Object.keys(result.config.containers)).toEqual(['core', 'one', 'two']);
    });

    it('fails as a whole when one fragment cannot be read as YAML, naming it', async () => {
      await writeFile(join(dir, 'config.d', '10-broken.yaml'), 'containers:\n  one: [oops\n');
      const result = await loadConfigFile(join(dir, 'config.yaml'));
      expect(result.ok).toBe(false);
      expect(result.diagnostics.map(formatDiagnostic).join('\n')).toContain(join(dir, 'config.d', '10-broken.yaml'));
    });
  });
});
