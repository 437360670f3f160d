import { chmod, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { main } from '../../../src/cli/main.js';
import { DEFAULT_CONFIG_TEXT } from '../../../src/config/default-config.js';

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

async function run(argv: string[], env: NodeJS.ProcessEnv = {}): Promise<Run> {
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  stdout.on('data', (c: Buffer) => out.push(c));
  stderr.on('data', (c: Buffer) => err.push(c));
  const code = await main(argv, { stdout, stderr, env: { NO_COLOR: '1', ...env } });
  return { code, stdout: Buffer.concat(out).toString(), stderr: Buffer.concat(err).toString() };
}

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'skiff-core-cli-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('cli config validate', () => {
  it('prints FILE:LINE:COL lines and exits 1 for an invalid file', async () => {
    const file = join(dir, 'bad.yaml');
    await writeFile(file, 'containers:\n  c1:\n    image: x\n    tmpfs: {}\nusers:\n  u: {container: nope}\n');
    const r = await run(['config', 'validate', file]);
    expect(r.code).toBe(1);
    expect(r.stdout.split('\n')).toEqual([
      `${file}:4:5: containers.c1.tmpfs: unknown key "tmpfs"; did you mean "tmpFs"?`,
      `${file}:6:18: users.u.container: no container named "nope" in containers (defined: c1)`,
      `${file}: invalid (2 error(s), 0 warning(s))`,
      '',
    ]);
  });

  it('exits 0 for a valid file with warnings, printing them', async () => {
    const file = join(dir, 'old.yaml');
    await writeFile(file, 'images:\n  a:latest:\n    pull: {policy: ifnotexists}\n');
    const r = await run(['config', 'validate', file]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`${file}:3:12: warning: images["a:latest"].pull.policy:`);
    expect(r.stdout).toContain('valid (0 error(s), 2 warning(s))');
  });

  it('reads the file named by --config, then SKIFF_CORE_CONFIG', async () => {
    const file = join(dir, 'c.yaml');
    await writeFile(file, DEFAULT_CONFIG_TEXT);
    expect((await run(['--config', file, 'config', 'validate'])).code).toBe(0);
    expect((await run(['config', 'validate'], { SKIFF_CORE_CONFIG: file })).code).toBe(0);
    const missing = await run(['--config', join(dir, 'none.yaml'), 'config', 'validate']);
    expect(missing.code).toBe(1);
    expect(missing.stdout).toContain('none.yaml: (top level): no such file (create one with `skiff-core defconfig FILE`)');
  });

  it('prints JSON with --json', async () => {
    const file = join(dir, 'bad.yaml');
    await writeFile(file, 'containers:\n  c1: {image: x, env: [A]}\n');
    const r = await run(['config', 'validate', '--json', file]);
    expect(r.code).toBe(1);
    expect(JSON.parse(r.stdout)).toEqual({
      file,
      valid: false,
      errors: [{ file, line: 2, col: 24, path: ['containers', 'c1', 'env', 0], message: 'environment entry "A" must be NAME=VALUE' }],
      warnings: [],
    });
  });

  it('colours output only when asked or on a terminal', async () => {
    const file = join(dir, 'bad.yaml');
    await writeFile(file, 'x: 1\n');
    expect((await run(['config', 'validate', file])).stdout).not.toContain('\u001b[');
    expect((await run(['config', 'validate', file], { NO_COLOR: '', FORCE_COLOR: '1' })).stdout).toContain('\u001b[31m');
  });
});

describe('cli defconfig', () => {
  it('writes the default config and refuses to overwrite without --force', async () => {
    const file = join(dir, 'sub', 'config.yaml');
    expect((await run(['defconfig', file])).code).toBe(0);
    expect(await readFile(file, 'utf8')).toBe(DEFAULT_CONFIG_TEXT);

    await writeFile(file, 'users: {}\n');
    const again = await run(['defconfig', file]);
    expect(again.code).toBe(1);
    expect(again.stderr).toContain('already exists; keeping it (use --force to replace it)');
    expect(await readFile(file, 'utf8')).toBe('users: {}\n');

    expect((await run(['defconfig', '--force', file])).code).toBe(0);
    expect(await readFile(file, 'utf8')).toBe(DEFAULT_CONFIG_TEXT);
    // No temp files are left beside it.
    expect(await readdir(join(dir, 'sub'))).toEqual(['config.yaml']);
  });

  it('prints the default config with "-"', async () => {
    const r = await run(['defconfig', '-']);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(DEFAULT_CONFIG_TEXT);
  });
});

describe('cli conventions', () => {
  it('prints the version', async () => {
    const r = await run(['--version']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^skiff-core \d+\.\d+\.\d+/);
  });

  it.each([
    [['--help']],
    [['config', 'validate', '--help']],
    [['config', 'schema', '-h']],
    [['defconfig', '--help']],
    [['config', '--help']],
  ])('shows help for %j', async (argv) => {
    const r = await run(argv);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/Usage|Commands/);
  });

  it.each([
    [['frobnicate'], 'unknown command "frobnicate"'],
    [['--frob'], 'unknown option "--frob"'],
    [['config', 'validate', '--nope'], "Unknown option '--nope'"],
    [['config', 'validate', 'a', 'b'], 'unexpected argument "b"'],
    [['--config'], '--config needs a FILE'],
  ])('exits 2 with a hint for %j', async (argv, message) => {
    const r = await run(argv);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(message);
    expect(r.stderr).toContain('--help');
  });

  it('prints a JSON Schema', async () => {
    const r = await run(['config', 'schema']);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ $schema: 'https://json-schema.org/draft/2020-12/schema', type: 'object' });
  });
});

describe('cli doctor', () => {
  it('warns when the config holds a plain-text password and others can read it', async () => {
    const file = join(dir, 'config.yaml');
    const yaml =
      'containers:\n  core:\n    image: a:1\nusers:\n  skt-nobody-here:\n    container: core\n    auth:\n      password: hunter2\n';
    await writeFile(file, yaml, { mode: 0o644 });
    await chmod(file, 0o644);
    const r = await run(['--config', file, 'doctor', '--sshd-config', join(dir, 'no-sshd'), '--run-dir', join(dir, 'run')], {
      DOCKER_HOST: `unix://${join(dir, 'no.sock')}`,
    });
    expect(r.stdout).toContain(
      `${file}: holds plain-text passwords (users.skt-nobody-here.auth.password) and is readable by others (mode 644): chmod 600 it`,
    );
    await chmod(file, 0o600);
    const quiet = await run(['--config', file, 'doctor', '--sshd-config', join(dir, 'no-sshd'), '--run-dir', join(dir, 'run')], {
      DOCKER_HOST: `unix://${join(dir, 'no.sock')}`,
    });
    expect(quiet.stdout).not.toContain('plain-text passwords');
  });
});
