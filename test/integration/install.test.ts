// `make install` into a temporary DESTDIR: the layout a device gets (Buildroot's packages and the
// device image install through the same Makefile targets), and that the installed files work at
// the paths they were installed for.
//
// The installed launcher has /usr/lib/skiff-core/skiff-core.mjs compiled in, so it runs where a
// device runs it: in a private mount namespace where DESTDIR/usr and DESTDIR/opt are overlaid on
// this machine's /usr and /opt. Nothing outside that namespace changes. This needs root, make, a C
// compiler, unshare, overlayfs and systemd-analyze (scripts/provision.sh installs them); without
// them the test fails, it is not skipped. No Docker engine is needed.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chmod, copyFile, mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const REPO = fileURLToPath(new URL('../..', import.meta.url));
const BUNDLE = join(REPO, 'dist/skiff-core.mjs');

interface Result {
  code: number | null;
  stdout: string;
  stderr: string;
}

function run(file: string, args: readonly string[], options: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): Promise<Result> {
  return new Promise((resolve, reject) => {
    const child = spawn(file, [...args], {
      cwd: options.cwd ?? REPO,
      env: options.env ?? process.env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${file} ${args.join(' ')} still running after 120 s\n${stderr}`));
    }, 120_000);
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(new Error(`cannot run ${file}: ${err.message}`));
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

function describeResult(what: string, r: Result): string {
  return `${what} exited with ${r.code}\n--- stdout\n${r.stdout}\n--- stderr\n${r.stderr}`;
}

async function make(args: string[], umask = '022'): Promise<Result> {
  // A restrictive umask shows that the install sets every mode itself.
  return run('sh', ['-c', `umask ${umask} && exec make --no-print-directory "$@"`, 'make', ...args]);
}

/**
 * Runs `command` with `layers` (directories shaped like a root filesystem) overlaid on this
 * machine's /usr and /opt, earlier layers on top. `below` layers go under the machine's own files.
 */
function inDevice(layers: string[], command: string[], options: { below?: string[]; env?: NodeJS.ProcessEnv } = {}): Promise<Result> {
  const lower = (dir: string) =>
    [...layers.map((l) => join(l, dir)), `/${dir}`, ...(options.below ?? []).map((l) => join(l, dir))].join(':');
  const setup = [
    'set -e',
    `mount -t overlay skiff-core-test -o 'lowerdir=${lower('usr')}' /usr`,
    `mount -t overlay skiff-core-test -o 'lowerdir=${lower('opt')}' /opt`,
    'exec "$@"',
  ].join('\n');
  return run('unshare', ['--mount', '--propagation', 'private', '--', 'sh', '-c', setup, 'sh', ...command], { env: options.env });
}

async function listTree(root: string): Promise<string[]> {
  const out: string[] = [];
  async function walk(dir: string): Promise<void> {
    for (const entry of await readdir(dir, { withFileTypes: true })) {
      const full = join(dir, entry.name);
      out.push(relative(root, full) + (entry.isDirectory() ? '/' : ''));
      if (entry.isDirectory()) await walk(full);
    }
  }
  await walk(root);
  return out.sort();
}

async function modeOf(path: string): Promise<string> {
  return ((await stat(path)).mode & 0o7777).toString(8).padStart(4, '0');
}

const REQUIRED_TOOLS = ['make', 'cc', 'unshare', 'mount', 'systemd-analyze'];

describe('make install', () => {
  let work: string;
  let dest: string;
  /** Stand-in docker.service, used only where this machine has none (see the verify test). */
  let dockerStub: string;
  let version: string;
  let baseFiles: string[];

  beforeAll(async () => {
    if (!existsSync(BUNDLE)) throw new Error(`${BUNDLE} is missing: run "npm run build" first (npm test does)`);
    if (process.getuid?.() !== 0) throw new Error('this test needs root: it mounts overlays in a private mount namespace');
    const missing: string[] = [];
    for (const tool of REQUIRED_TOOLS) {
      const found = await run('sh', ['-c', `command -v ${tool}`]);
      if (found.code !== 0) missing.push(tool);
    }
    if (missing.length > 0) {
      throw new Error(
        `missing on this machine: ${missing.join(', ')}; run \`bash scripts/provision.sh\` as root (it installs make, gcc and systemd)`,
      );
    }
    version = (JSON.parse(await readFile(join(REPO, 'package.json'), 'utf8')) as { version: string }).version;
    baseFiles = (await listTree(join(REPO, 'defaults/base'))).filter((p) => !p.endsWith('/'));

    work = await mkdtemp(join(tmpdir(), 'skiff-core-install-'));
    dest = join(work, 'rootfs');
    const installed = await make(['install', `DESTDIR=${dest}`], '077');
    if (installed.code !== 0) throw new Error(describeResult(`make install DESTDIR=${dest}`, installed));

    dockerStub = join(work, 'docker-stub');
    await mkdir(join(dockerStub, 'usr/lib/systemd/system'), { recursive: true });
    await mkdir(join(dockerStub, 'opt'), { recursive: true });
    await writeFile(
      join(dockerStub, 'usr/lib/systemd/system/docker.service'),
      '[Unit]\nDescription=stand-in for the Docker engine\n\n[Service]\nExecStart=/bin/true\n',
    );
  });

  afterAll(async () => {
    if (work) await rm(work, { recursive: true, force: true });
  });

  it('installs exactly the device layout', async () => {
    const expected = [
      'opt/',
      'opt/skiff/',
      'opt/skiff/coreenv/',
      'opt/skiff/coreenv/base/',
      ...baseFiles.map((f) => `opt/skiff/coreenv/base/${f}`),
      'opt/skiff/coreenv/defconfig.yaml',
      'usr/',
      'usr/bin/',
      'usr/bin/skiff-core',
      'usr/lib/',
      'usr/lib/skiff-core/',
      'usr/lib/skiff-core/skiff-core.mjs',
      'usr/lib/systemd/',
      'usr/lib/systemd/system/',
      'usr/lib/systemd/system/skiff-core.service',
    ].sort();
    expect(await listTree(dest)).toEqual(expected);
    expect(baseFiles).toContain('Dockerfile');
  });

  it.each([
    ['usr/bin/skiff-core', '0755'],
    ['usr/lib/skiff-core', '0755'],
    ['usr/lib/skiff-core/skiff-core.mjs', '0644'],
    ['usr/lib/systemd/system/skiff-core.service', '0644'],
    ['opt/skiff/coreenv', '0755'],
    ['opt/skiff/coreenv/defconfig.yaml', '0644'],
    ['opt/skiff/coreenv/base', '0755'],
    ['opt/skiff/coreenv/base/Dockerfile', '0644'],
  ])('installs %s with mode %s (under umask 077)', async (path, mode) => {
    expect(await modeOf(join(dest, path))).toBe(mode);
  });

  it.each([
    ['usr/lib/skiff-core/skiff-core.mjs', 'dist/skiff-core.mjs'],
    ['usr/lib/systemd/system/skiff-core.service', 'systemd/skiff-core.service'],
    ['opt/skiff/coreenv/defconfig.yaml', 'defaults/skiff-core.yaml'],
    ['opt/skiff/coreenv/base/Dockerfile', 'defaults/base/Dockerfile'],
  ])('installs %s from %s', async (installed, source) => {
    expect(await readFile(join(dest, installed), 'utf8')).toBe(await readFile(join(REPO, source), 'utf8'));
  });

  it('installs a compiled launcher, since a "#!" script would lose the login shell\'s argv[0]', async () => {
    const head = (await readFile(join(dest, 'usr/bin/skiff-core'))).subarray(0, 4);
    expect(head.toString('latin1')).toBe('\x7fELF');
  });

  it('runs the installed launcher at its device path: --version', async () => {
    const r = await inDevice([dest], ['/usr/bin/skiff-core', '--version']);
    expect(r.code, describeResult('skiff-core --version', r)).toBe(0);
    expect(r.stdout.trim()).toBe(`skiff-core ${version}`);
  });

  it('validates the installed default config with the installed launcher', async () => {
    const r = await inDevice([dest], ['/usr/bin/skiff-core', 'config', 'validate', '/opt/skiff/coreenv/defconfig.yaml']);
    expect(r.code, describeResult('skiff-core config validate', r)).toBe(0);
    expect(r.stdout).toContain('/opt/skiff/coreenv/defconfig.yaml: valid');
  });

  it('installs a unit that passes systemd-analyze verify', async () => {
    // verify resolves Requires=docker.service: the machine's own unit is used when it has one (the
    // stub layer lies below /usr), so only a machine without Docker's unit sees the stand-in.
    const r = await inDevice([dest], ['systemd-analyze', 'verify', '/usr/lib/systemd/system/skiff-core.service'], {
      below: [dockerStub],
    });
    expect(r.code, describeResult('systemd-analyze verify', r)).toBe(0);
    expect(`${r.stdout}${r.stderr}`.trim()).toBe('');
  });

  describe('the launcher contract (SKIFF_CORE_ARGV0, environment, arguments)', () => {
    let probe: string;

    // A stand-in bundle laid over the installed one: it prints what the launcher handed to node.
    beforeAll(async () => {
      probe = join(work, 'probe');
      await mkdir(join(probe, 'usr/lib/skiff-core'), { recursive: true });
      await mkdir(join(probe, 'opt'), { recursive: true });
      await writeFile(
        join(probe, 'usr/lib/skiff-core/skiff-core.mjs'),
        [
          'const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => /^(NODE_|UV_|OPENSSL_|SKIFF_CORE_ARGV0$|KEEP_ME$)/.test(k)));',
          'console.log(JSON.stringify({ args: process.argv.slice(2), bundle: process.argv[1], execArgv: process.execArgv, env, pid: process.pid }));',
        ].join('\n'),
      );
    });

    interface Probe {
      args: string[];
      bundle: string;
      execArgv: string[];
      env: Record<string, string>;
      pid: number;
    }

    async function launch(script: string): Promise<{ shellPid: number; probe: Probe }> {
      const r = await inDevice([probe, dest], ['bash', '-c', `echo $$; ${script}`], {
        env: {
          ...process.env,
          // Would make node fail to start if it reached node.
          NODE_OPTIONS: '--require /nonexistent/skiff-core-test.cjs',
          UV_THREADPOOL_SIZE: '1',
          OPENSSL_CONF: '/nonexistent/openssl.cnf',
          SKIFF_CORE_ARGV0: 'forged',
          KEEP_ME: 'kept',
        },
      });
      expect(r.code, describeResult(script, r)).toBe(0);
      const [pidLine, json] = r.stdout.trim().split('\n');
      return { shellPid: Number(pidLine), probe: JSON.parse(json ?? '') as Probe };
    }

    it('passes its argv[0] on, in place of the process (same PID), with the flag the daemon runs with', async () => {
      const { shellPid, probe: p } = await launch('exec -a skiff-core /usr/bin/skiff-core status');
      expect(p).toEqual({
        args: ['status'],
        bundle: '/usr/lib/skiff-core/skiff-core.mjs',
        execArgv: ['--max-semi-space-size=1'],
        env: { SKIFF_CORE_ARGV0: 'skiff-core', KEEP_ME: 'kept' },
        pid: shellPid,
      });
    });

    it('never turns an argument into a Node.js option', async () => {
      const { probe: p } = await launch('/usr/bin/skiff-core --inspect --require x');
      expect(p.args).toEqual(['--inspect', '--require', 'x']);
      expect(p.env['SKIFF_CORE_ARGV0']).toBe('/usr/bin/skiff-core');
    });
  });

  it('installs the daemon, the unit and the default config separately', async () => {
    const parts = join(work, 'parts');
    const cases: Array<[string, string[]]> = [
      ['install-daemon', ['usr/bin/skiff-core', 'usr/lib/skiff-core/skiff-core.mjs']],
      ['install-systemd', ['usr/lib/systemd/system/skiff-core.service']],
      ['install-defconfig', ['opt/skiff/coreenv/defconfig.yaml', ...baseFiles.map((f) => `opt/skiff/coreenv/base/${f}`)]],
    ];
    for (const [target, files] of cases) {
      const root = join(parts, target);
      const r = await make([target, `DESTDIR=${root}`]);
      expect(r.code, describeResult(`make ${target}`, r)).toBe(0);
      expect(
        (await listTree(root)).filter((p) => !p.endsWith('/')),
        target,
      ).toEqual([...files].sort());
    }
  });

  it('writes another BINDIR into the installed unit', async () => {
    const root = join(work, 'prefix');
    const r = await make(['install-systemd', `DESTDIR=${root}`, 'PREFIX=/usr/local']);
    expect(r.code, describeResult('make install-systemd PREFIX=/usr/local', r)).toBe(0);
    const unit = await readFile(join(root, 'usr/local/lib/systemd/system/skiff-core.service'), 'utf8');
    expect(unit).toMatch(/^ExecStart=\/usr\/local\/bin\/skiff-core daemon$/m);
    expect(unit).not.toMatch(/[^l]\/usr\/bin\/skiff-core/);
  });

  it('replaces the build context as a whole on reinstall', async () => {
    const root = join(work, 'reinstall');
    const stale = join(root, 'opt/skiff/coreenv/base/removed-upstream.txt');
    await mkdir(join(root, 'opt/skiff/coreenv/base'), { recursive: true });
    await writeFile(stale, 'left over from an older version\n');
    const r = await make(['install-defconfig', `DESTDIR=${root}`]);
    expect(r.code, describeResult('make install-defconfig', r)).toBe(0);
    expect(existsSync(stale)).toBe(false);
  });

  it('stops with instructions when the bundle has not been built', async () => {
    const tree = join(work, 'unbuilt');
    await mkdir(tree, { recursive: true });
    await copyFile(join(REPO, 'Makefile'), join(tree, 'Makefile'));
    await chmod(join(tree, 'Makefile'), 0o644);
    const r = await run('make', ['--no-print-directory', 'install-daemon', `DESTDIR=${join(work, 'unbuilt-root')}`], { cwd: tree });
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('dist/skiff-core.mjs is missing');
    expect(r.stderr).toContain("'make build'");
    expect(existsSync(join(work, 'unbuilt-root'))).toBe(false);
  });

  it('keeps the Buildroot package versions in step with package.json', async () => {
    for (const pkg of ['skiff-core', 'skiff-core-defconfig']) {
      const mk = await readFile(join(REPO, `buildroot_ext/package/${pkg}/${pkg}.mk`), 'utf8');
      const variable = `${pkg.toUpperCase().replace(/-/g, '_')}_VERSION`;
      expect(mk, pkg).toMatch(new RegExp(`^${variable} = ${version.replace(/\./g, '\\.')}$`, 'm'));
    }
  });
});
