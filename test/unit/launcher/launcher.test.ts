// The compiled launcher (launcher/skiff-core.c): built here with -Wall -Wextra -Werror against a
// stand-in "node" that prints the environment it was given, run as an unprivileged user and as
// root.
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const LAUNCHER_DIR = fileURLToPath(new URL('../../../launcher/', import.meta.url));
/** Every C file of the launcher, as the Makefile compiles them. */
const SOURCES = readdirSync(LAUNCHER_DIR)
  .filter((f) => f.endsWith('.c'))
  .sort()
  .map((f) => join(LAUNCHER_DIR, f));
const FIXED_PATH = 'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
const HOSTILE = {
  NODE_OPTIONS: '--inspect=0.0.0.0:9229',
  GCONV_PATH: '/tmp/evil',
  LOCPATH: '/tmp/evil',
  GLIBC_TUNABLES: 'glibc.malloc.check=3',
  LD_PRELOAD: '/tmp/evil.so',
  PATH: '/tmp/evil:/usr/bin',
  SKIFF_CORE_RUN_DIR: '/tmp/elsewhere',
  SKIFF_CORE_ARGV0: 'forged',
  RANDOM_THING: 'x',
};
const FRIENDLY = { TERM: 'xterm-256color', LANG: 'C.UTF-8', LC_ALL: 'C.UTF-8', SSH_CONNECTION: '1 2 3 4', HOME: '/home/u' };

let dir: string;
let launcher: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'skt-launcher-'));
  await chmod(dir, 0o755);
  await writeFile(join(dir, 'fake-node'), '#!/bin/sh\n# argv: FLAG BUNDLE ARGS...\necho "args: $*"\nexec /usr/bin/env -0\n', {
    mode: 0o755,
  });
  await writeFile(join(dir, 'bundle.mjs'), '', { mode: 0o644 });
  launcher = join(dir, 'skiff-core');
  execFileSync('cc', [
    '-Wall',
    '-Wextra',
    '-Werror',
    '-std=c99',
    `-DSKIFF_CORE_NODE="${join(dir, 'fake-node')}"`,
    `-DSKIFF_CORE_BUNDLE="${join(dir, 'bundle.mjs')}"`,
    '-o',
    launcher,
    ...SOURCES,
  ]);
  await chmod(launcher, 0o755);
});
afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

function launch(asRoot: boolean, argv0: string, args: string[]): { args: string; env: Record<string, string> } {
  const cmd = asRoot ? launcher : 'setpriv';
  const argv = asRoot ? args : ['--reuid=65534', '--regid=65534', '--clear-groups', launcher, ...args];
  const r = spawnSync(cmd, argv, {
    env: { ...HOSTILE, ...FRIENDLY, DOCKER_HOST: 'unix:///x.sock' },
    argv0: asRoot ? argv0 : undefined,
    encoding: 'buffer',
  });
  const out = r.stdout.toString();
  const newline = out.indexOf('\n');
  const env = Object.fromEntries(
    out
      .slice(newline + 1)
      .split('\0')
      .filter(Boolean)
      .map((e) => [e.slice(0, e.indexOf('=')), e.slice(e.indexOf('=') + 1)]),
  );
  return { args: out.slice(0, newline), env };
}

describe('launcher', () => {
  it('passes only the allowlist and a fixed PATH to node for a user', () => {
    const r = launch(false, 'skiff-core', ['status', '--json']);
    expect(r.args).toBe(`args: --max-semi-space-size=1 ${join(dir, 'bundle.mjs')} status --json`);
    for (const [k, v] of Object.entries(FRIENDLY)) expect(r.env[k]).toBe(v);
    expect(`PATH=${r.env.PATH}`).toBe(FIXED_PATH);
    for (const k of [
      'NODE_OPTIONS',
      'GCONV_PATH',
      'LOCPATH',
      'GLIBC_TUNABLES',
      'LD_PRELOAD',
      'SKIFF_CORE_RUN_DIR',
      'RANDOM_THING',
      'DOCKER_HOST',
    ])
      expect(r.env[k]).toBeUndefined();
    // The argv[0] it was started with, never an inherited value; and where it is, for the daemon.
    expect(r.env.SKIFF_CORE_ARGV0).toBe(launcher);
    expect(r.env.SKIFF_CORE_LAUNCHER).toBe(launcher);
    expect(r.env.MALLOC_ARENA_MAX).toBe('2');
  });

  it('serves a login itself: node never starts for "-c CMD" or a login shell', async () => {
    // Both wait the client's 10 s for a daemon that may be starting, side by side.
    const runs = (
      [
        ['skiff-core', ['-c', 'echo hi']],
        ['-skiff-core', []],
      ] as const
    ).map(
      ([argv0, args]) =>
        new Promise<{ stdout: string; stderr: string; code: number | null }>((resolve) => {
          const env = { SKIFF_CORE_RUN_DIR: join(dir, 'no-daemon'), SKIFF_CORE_SESSION_USER: 'nobody' };
          const child = spawn(launcher, [...args], { argv0, env, timeout: 20_000 });
          let stdout = '';
          let stderr = '';
          child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
          child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
          child.on('close', (code) => resolve({ stdout, stderr, code }));
        }),
    );
    for (const r of await Promise.all(runs)) {
      expect(r.stdout).not.toContain('args:');
      expect(r.stderr).toContain('the skiff-core daemon is not running');
      expect(r.code).toBe(1);
    }
  }, 30_000);

  it("keeps root's environment but for what changes how node or glibc run", () => {
    const r = launch(true, 'skiff-core', ['status']);
    expect(r.env.SKIFF_CORE_ARGV0).toBe('skiff-core');
    expect(r.env.SKIFF_CORE_RUN_DIR).toBe('/tmp/elsewhere');
    expect(r.env.DOCKER_HOST).toBe('unix:///x.sock');
    expect(r.env.RANDOM_THING).toBe('x');
    expect(`PATH=${r.env.PATH}`).toBe(FIXED_PATH);
    for (const k of ['NODE_OPTIONS', 'GCONV_PATH', 'LOCPATH', 'GLIBC_TUNABLES', 'LD_PRELOAD']) expect(r.env[k]).toBeUndefined();
  });
});
