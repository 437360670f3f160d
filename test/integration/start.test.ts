// The README's run command from a fresh copy of the checkout (issue 6): `npm start -- --offline`
// builds the bundle, starts the daemon with all state in .state/, serves the SSH gateway on
// loopback and prints how to connect; the real OpenSSH client logs in with exactly the printed
// command and lands in the systemd container; the printed host key fingerprint is the one served.
// Also: with no engine and no internet, plain `npm start` provisions a (private) engine, says in
// one line that it runs the offline variant, and its ssh command lands in systemd; a busy port
// is a clear error.
//
// The copy is the working tree's files as git sees them (tracked and new, not ignored), with
// node_modules linked in: what a fresh clone plus `npm ci` has. Everything the run creates on the
// engine is named with this test's prefix (`--name-prefix`) and removed afterwards.
import { execFile, execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { chmod, copyFile, mkdir, mkdtemp, readFile, rm, stat, symlink } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { StatusSnapshot } from '../../src/daemon/status.js';
import { cleanupByPrefix, integrationSkipReason, testDocker, uniquePrefix, waitFor } from './helpers/engine.js';
import { removeProvisionedEngine } from './helpers/private-engine.js';
import { freePort } from '../support/net.js';
import { scriptedSsh } from '../support/ssh-client.js';

const REPO = fileURLToPath(new URL('../..', import.meta.url));

async function portFree(port: number): Promise<boolean> {
  const server = createServer();
  const ok = await new Promise<boolean>((resolve) => {
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => resolve(true));
  });
  if (ok) await new Promise((resolve) => server.close(resolve));
  return ok;
}

function run(
  cmd: string,
  args: string[],
  opts: { cwd?: string; input?: string; timeoutMs?: number; env?: Record<string, string> } = {},
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = execFile(
      cmd,
      args,
      { cwd: opts.cwd, env: { ...process.env, ...opts.env }, timeout: opts.timeoutMs ?? 60_000, maxBuffer: 64 * 1024 * 1024 },
      (err, stdout, stderr) => {
        resolve({ code: err ? (typeof err.code === 'number' ? err.code : null) : 0, stdout, stderr });
      },
    );
    if (opts.input !== undefined) {
      child.stdin!.on('error', () => undefined); // the far side may exit before reading it
      child.stdin!.end(opts.input);
    }
  });
}

interface Started {
  child: ChildProcess;
  out(): string;
  err(): string;
  closed: Promise<number | null>;
}

/** `npm start -- ARGS` in the copy, in its own process group (so SIGINT to it is a Ctrl-C). */
function npmStart(cwd: string, args: string[], env: Record<string, string> = {}): Started {
  const child = spawn('npm', ['start', '--', ...args], {
    cwd,
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, NO_COLOR: '1', ...env },
  });
  let out = '';
  let err = '';
  child.stdout!.on('data', (c: Buffer) => (out += c.toString()));
  child.stderr!.on('data', (c: Buffer) => (err += c.toString()));
  // 'close': every process holding the pipes (npm, start.mjs, the daemon) is gone.
  const closed = new Promise<number | null>((resolve) => child.once('close', (code) => resolve(code)));
  return { child, out: () => out, err: () => err, closed };
}

function ctrlC(started: Started): void {
  try {
    process.kill(-started.child.pid!, 'SIGINT');
  } catch {
    // already gone
  }
}

function alive(pid: number | undefined): boolean {
  if (!pid) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe.skipIf(integrationSkipReason())('npm start from a fresh copy of the checkout', () => {
  const docker = testDocker();
  const prefix = uniquePrefix();
  let copy: string;
  const runs: Started[] = [];
  const daemonPids: number[] = [];

  const enginesToRemove: string[] = [];

  const statusOf = async (config: string, runDir: string, env: Record<string, string> = {}): Promise<StatusSnapshot> => {
    const r = await run(
      process.execPath,
      [join(copy, 'dist/skiff-core.mjs'), '--config', config, 'status', '--json', '--run-dir', runDir],
      { cwd: copy, env },
    );
    return JSON.parse(r.stdout) as StatusSnapshot;
  };

  beforeAll(async () => {
    copy = await mkdtemp(join(tmpdir(), `${prefix}-clone-`));
    const files = execFileSync('git', ['ls-files', '-z', '--cached', '--others', '--exclude-standard'], { cwd: REPO })
      .toString()
      .split('\0')
      .filter(Boolean);
    for (const file of files) {
      // A tracked file deleted in the working tree is not part of what a commit would hold.
      const isFile = await stat(join(REPO, file)).then(
        (s) => s.isFile(),
        () => false,
      );
      if (!isFile) continue;
      await mkdir(dirname(join(copy, file)), { recursive: true });
      await copyFile(join(REPO, file), join(copy, file));
    }
    await symlink(join(REPO, 'node_modules'), join(copy, 'node_modules'));
    // A fresh clone has no build and no state.
    await expect(stat(join(copy, 'dist'))).rejects.toThrow();
    await expect(stat(join(copy, '.state'))).rejects.toThrow();
  });

  afterAll(async () => {
    for (const r of runs) {
      if (r.child.exitCode === null && r.child.signalCode === null) ctrlC(r);
    }
    await Promise.race([Promise.all(runs.map((r) => r.closed)), new Promise((resolve) => setTimeout(resolve, 15_000))]);
    for (const r of runs) {
      try {
        process.kill(-r.child.pid!, 'SIGKILL');
      } catch {
        // gone
      }
    }
    for (const pid of daemonPids) if (alive(pid)) process.kill(pid, 'SIGKILL');
    await cleanupByPrefix(prefix, docker);
    for (const dir of enginesToRemove) await removeProvisionedEngine(dir);
    if (copy) await rm(copy, { recursive: true, force: true });
  });

  it('--offline: builds, serves SSH on loopback, prints how to connect; the printed command logs in to systemd', async () => {
    // The README's port when it is free (then the command is exactly the README's), else another.
    const port = (await portFree(2222)) ? 2222 : await freePort();
    const t0 = Date.now();
    const started = npmStart(copy, ['--offline', ...(port === 2222 ? [] : ['--port', String(port)]), '--name-prefix', `${prefix}-`]);
    runs.push(started);
    const printed = await waitFor(
      () => {
        if (started.child.exitCode !== null) throw new Error(`npm start exited (${started.child.exitCode})`);
        const m = /^\s*Log in:\s+(ssh .*)$/m.exec(started.out());
        const fp = /^\s*Host key:\s+(SHA256:\S+)/m.exec(started.out());
        return m && fp ? { command: m[1]!.trim(), fingerprint: fp[1]! } : undefined;
      },
      { what: 'npm start to print how to connect', timeoutMs: 120_000, intervalMs: 200 },
    ).catch((err: Error) => {
      throw new Error(`${err.message}\nstdout:\n${started.out()}\nstderr:\n${started.err().slice(-4000)}`);
    });
    const printedAfterMs = Date.now() - t0;

    expect(printed.command).toBe(`ssh -i .state/id_ed25519 -p ${port} core@127.0.0.1`);
    expect(started.out()).toContain('is accepted for "core"');
    expect(started.out()).toContain('Ctrl-C stops the daemon; the containers keep running.');

    // All state is in the copy's .state/: the config copy (with the generated key and absolute
    // build source), the client key (0600), the host key (0600).
    const state = join(copy, '.state');
    const offlineConfig = await readFile(join(state, 'offline.yaml'), 'utf8');
    const publicKey = (await readFile(join(state, 'id_ed25519.pub'), 'utf8')).trim();
    expect(offlineConfig).toContain(publicKey);
    expect(offlineConfig).toContain(`source: ${join(copy, 'test/fixtures/images/core')}`);
    expect((await stat(join(state, 'id_ed25519'))).mode & 0o777).toBe(0o600);
    expect((await stat(join(state, 'ssh_host_ed25519_key'))).mode & 0o777).toBe(0o600);
    const s = await statusOf(join(state, 'offline.yaml'), join(state, 'run-offline'));
    if (s.daemon.pid) daemonPids.push(s.daemon.pid);
    expect(s.gateway?.listening).toEqual([`127.0.0.1:${port}`]);

    // Exactly the printed command (run where npm start ran), plus what a script needs: no host
    // key prompt, no password prompt. The login waits for the image build and systemd's boot.
    const [cmd, ...args] = printed.command.split(' ');
    const loginStart = Date.now();
    const login = await run(cmd!, [...scriptedSsh(), ...args, 'whoami; cat /proc/1/comm'], { cwd: copy, timeoutMs: 300_000 });
    const loginMs = Date.now() - loginStart;
    expect(login.code, `${login.stderr}\ndaemon log:\n${started.err().slice(-4000)}`).toBe(0);
    expect(login.stdout.trim().split('\n').slice(-2)).toEqual(['core', 'systemd']);

    // The printed fingerprint is the one the gateway serves.
    const scan = await run('ssh-keyscan', ['-t', 'ed25519', '-p', String(port), '127.0.0.1']);
    const served = await run('ssh-keygen', ['-lf', '-'], { input: scan.stdout });
    expect(served.stdout.split(/\s+/)[1]).toBe(printed.fingerprint);

    // Ctrl-C: the daemon stops, the container keeps running, and the output says how to remove it.
    const container = `${prefix}-core-offline`;
    expect((await docker.getContainer(container).inspect()).State.Running).toBe(true);
    ctrlC(started);
    const code = await started.closed;
    expect(code).toBe(0);
    expect(started.out()).toContain(`Remove them with: docker rm -f ${container}`);
    expect(started.err()).toContain('skiff-core daemon stopped; containers keep running');
    expect((await docker.getContainer(container).inspect()).State.Running).toBe(true);
    // No host account was made or needed.
    expect(execFileSync('getent', ['passwd']).toString()).not.toMatch(/^core:/m);
    console.log(`npm start -- --offline (port ${port}): connect text after ${printedAfterMs} ms, login (image build + boot) ${loginMs} ms`);
  }, 420_000);

  it('a busy port is a clear error before anything starts', async () => {
    const port = await freePort();
    const blocker: Server = createServer();
    await new Promise<void>((resolve) => blocker.listen(port, '127.0.0.1', resolve));
    try {
      const r = await run(process.execPath, ['scripts/start.mjs', '--offline', '--port', String(port)], { cwd: copy });
      expect(r.code).toBe(1);
      expect(r.stderr).toContain(`127.0.0.1:${port} is already in use`);
      expect(r.stderr).toContain('--port N');
    } finally {
      blocker.close();
    }
  });

  it('not root and no engine: one message naming what is missing and the command that fixes it', async () => {
    await chmod(copy, 0o755); // readable by the unprivileged user below (mkdtemp makes it 0700)
    if (!(await stat(join(copy, 'dist/skiff-core.mjs')).catch(() => undefined))) await run('npm', ['run', 'build'], { cwd: copy });
    const r = await run(
      'setpriv',
      ['--reuid=65534', '--regid=65534', '--clear-groups', process.execPath, 'scripts/start.mjs', '--port', String(await freePort())],
      {
        cwd: copy,
        env: { DOCKER_HOST: `unix://${join(copy, 'no-engine', 'docker.sock')}` },
      },
    );
    expect(r.stderr.trim()).toBe(
      `npm start: no Docker engine answers on ${join(copy, 'no-engine', 'docker.sock')} (no such socket), and installing one needs root: run it as root: sudo npm start`,
    );
    expect(r.code).toBe(1);
  });

  it('no engine and no internet: npm start provisions an engine, switches to the offline variant, and its ssh command lands in systemd', async () => {
    // A socket where no engine answers: npm start provisions one there, a private engine in a
    // network namespace of its own (so it reaches no registry, like a machine without internet).
    const engineDir = join(tmpdir(), `${prefix}-engine`);
    enginesToRemove.push(engineDir);
    const dockerHost = `unix://${join(engineDir, 'docker.sock')}`;
    const port = await freePort();
    const started = npmStart(copy, ['--port', String(port), '--name-prefix', `${prefix}-`], { DOCKER_HOST: dockerHost });
    runs.push(started);
    const command = await waitFor(
      () => {
        if (started.child.exitCode !== null) throw new Error(`npm start exited (${started.child.exitCode})`);
        return /^\s*Log in:\s+(ssh .*)$/m.exec(started.out())?.[1]?.trim();
      },
      { what: 'npm start to print how to connect', timeoutMs: 240_000, intervalMs: 200 },
    ).catch((err: Error) => {
      throw new Error(`${err.message}\nstdout:\n${started.out()}\nstderr:\n${started.err().slice(-4000)}`);
    });
    const out = started.out();
    expect(out).toContain(
      `npm start: no Docker engine answers on ${join(engineDir, 'docker.sock')} (no such socket); installing and starting one: bash scripts/provision.sh engine`,
    );
    // The switch is said in one line, naming the image and pointing at the explicit choice.
    const switched = out.split('\n').filter((l) => l.includes('running the offline variant instead'));
    expect(switched).toHaveLength(1);
    expect(switched[0]).toMatch(
      /^npm start: quay\.io\/skiffos\/skiff-core-debian:latest cannot be pulled \(.+\); running the offline variant instead \(defaults\/offline\.yaml; "npm start -- --offline" picks it directly\)\.$/,
    );
    expect(command).toBe(`ssh -i .state/id_ed25519 -p ${port} core@127.0.0.1`);
    expect(started.err()).toMatch(/\[provision\] engine: started dockerd, answering on .*docker\.sock/);

    const [cmd, ...args] = command.split(' ');
    const login = await run(cmd!, [...scriptedSsh(), ...args, 'whoami; cat /proc/1/comm'], { cwd: copy, timeoutMs: 300_000 });
    expect(login.code, `${login.stderr}\ndaemon log:\n${started.err().slice(-4000)}`).toBe(0);
    expect(login.stdout.trim().split('\n').slice(-2)).toEqual(['core', 'systemd']);
    const s = await statusOf(join(copy, '.state/offline.yaml'), join(copy, '.state/run-offline'), { DOCKER_HOST: dockerHost });
    if (s.daemon.pid) daemonPids.push(s.daemon.pid);
    // The container runs on the engine npm start provisioned.
    const onPrivate = execFileSync('docker', ['ps', '--format', '{{.Names}}'], {
      env: { ...process.env, DOCKER_HOST: dockerHost },
    }).toString();
    expect(onPrivate.split('\n')).toContain(`${prefix}-core-offline`);

    ctrlC(started);
    expect(await started.closed).toBe(0);
  }, 420_000);
});
