// One conformance suite for every way into a container (issue 6): OpenSSH's sshd with the
// skiff-core login shell, and the built-in gateway. A test file calls conformanceSuite() inside
// its describe(), after a beforeAll() that has made the target reachable; the checks use the real
// clients (OpenSSH's ssh and sftp, and ssh2's client for an interactive PTY) and look into the
// container through the engine, so they hold for any entry path that lands there.
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import ssh2, { type ClientChannel, type ConnectConfig } from 'ssh2';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { waitFor } from './helpers/engine.js';

export interface ConformanceTarget {
  /** OpenSSH `ssh` arguments up to and including USER@HOST, e.g. ['-p', '2222', '-i', KEY, '-o', 'BatchMode=yes', 'core@127.0.0.1']. */
  sshArgs: string[];
  /** OpenSSH `sftp` arguments up to and including USER@HOST (note `-P PORT`); `-b FILE` is put first. */
  sftpArgs: string[];
  /** The same login for ssh2's client (interactive PTY, resize). */
  ssh2: ConnectConfig;
  /** The container the user lands in (looked into with `docker exec`). */
  containerName: string;
}

export interface Ran {
  code: number | null;
  /** At most the first MiB. */
  stdout: string;
  stderr: string;
  stdoutBytes: number;
  stdoutSha256: string;
}

const sha256 = (data: Buffer | string) => createHash('sha256').update(data).digest('hex');
const MB100 = 100_000_000;

/** Runs a program, feeding `input` (or nothing: stdin at EOF), hashing all of its stdout. */
export function runProgram(
  program: string,
  args: string[],
  options: { input?: Buffer | string; timeoutMs?: number; env?: NodeJS.ProcessEnv } = {},
): Promise<Ran> {
  return new Promise((resolve, reject) => {
    const child = spawn(program, args, { stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env, ...options.env } });
    const hash = createHash('sha256');
    let stdout = '';
    let stderr = '';
    let bytes = 0;
    child.stdout.on('data', (d: Buffer) => {
      hash.update(d);
      bytes += d.length;
      if (stdout.length < 1 << 20) stdout += d.toString();
    });
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.stdin.on('error', () => undefined);
    child.stdin.end(options.input);
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${program} ${args.join(' ')} still running after ${options.timeoutMs ?? 120_000} ms\nstderr: ${stderr}`));
    }, options.timeoutMs ?? 120_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr, stdoutBytes: bytes, stdoutSha256: hash.digest('hex') });
    });
  });
}

/** `docker exec CONTAINER sh -c SCRIPT` (as root): what is really in the container. */
export function inContainer(container: string, script: string): Promise<Ran> {
  return runProgram('docker', ['exec', container, 'sh', '-c', script]);
}

/** Command lines of the container's processes that start with `prefix` (no procps needed). */
async function processes(container: string, prefix: string): Promise<string[]> {
  const r = await inContainer(container, `for p in /proc/[0-9]*; do tr '\\0' ' ' < $p/cmdline 2>/dev/null; echo; done`);
  return r.stdout.split('\n').filter((l) => l.startsWith(prefix));
}

/** Runs commands on a PTY shell through ssh2's client; `answer` waits for output to match. */
async function ptyShell(config: ConnectConfig, size: { cols: number; rows: number }) {
  const client = new ssh2.Client();
  await new Promise<void>((resolve, reject) => {
    client
      .once('ready', () => resolve())
      .once('error', reject)
      .connect({ readyTimeout: 60_000, ...config });
  });
  const channel = await new Promise<ClientChannel>((resolve, reject) =>
    client.shell({ term: 'xterm-256color', cols: size.cols, rows: size.rows, width: 0, height: 0 }, (err, ch) =>
      err ? reject(err) : resolve(ch),
    ),
  );
  let output = '';
  channel.on('data', (d: Buffer) => (output += d.toString()));
  channel.stderr.on('data', (d: Buffer) => (output += d.toString()));
  const exited = new Promise<number | null>((resolve) => channel.on('close', (code: number | null) => resolve(code)));
  return {
    channel,
    exited,
    output: () => output,
    /** Sends `line` and returns what appears between the markers it prints (not its echo). */
    async answer(command: string, tag: string): Promise<string> {
      // The shell echoes the command as typed; only its output holds the computed markers.
      const n = Math.floor(Math.random() * 1000) + 1000;
      const start = `${tag}-S${n * 2}`;
      const end = `${tag}-E${n * 3}`;
      channel.write(`echo ${tag}-S$((${n}*2)); ${command}; echo ${tag}-E$((${n}*3))\n`);
      const m = await waitFor(() => new RegExp(`${start}\\r?\\n([\\s\\S]*?)${end}`).exec(output), {
        what: `the output of "${command}" on the PTY`,
        timeoutMs: 30_000,
        intervalMs: 50,
      });
      return (m[1] ?? '').replace(/\r/g, '').trim();
    },
    close: () => client.end(),
  };
}

/**
 * Registers the conformance checks. `target` is called inside the tests (after the caller's
 * beforeAll). The container must have a POSIX shell, coreutils' `head`/`sha256sum`/`wc`/`stty`,
 * and an sftp-server where skiff-core looks for one; the session's home must be writable.
 */
export function conformanceSuite(name: string, target: () => ConformanceTarget): void {
  let dir: string;
  const ssh = (command: string, options: { input?: Buffer | string; tty?: boolean } = {}) =>
    runProgram('ssh', [...(options.tty ? ['-tt'] : ['-T']), ...target().sshArgs, command], options);

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'skiff-conformance-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it(`${name}: exec returns the command's exit code (0, 1, 42)`, async () => {
    for (const code of [0, 1, 42]) {
      const r = await ssh(`exit ${code}`);
      expect(r.code, r.stderr).toBe(code);
    }
  });

  it(`${name}: stdin EOF reaches the command; stdout and stderr stay apart`, async () => {
    const wc = await ssh('wc -c', { input: 'hi\n' });
    expect([wc.code, wc.stdout.trim()], wc.stderr).toEqual([0, '3']);
    const both = await ssh('echo out; echo err >&2; exit 3');
    expect(both.code).toBe(3);
    expect(both.stdout).toBe('out\n');
    expect(both.stderr).toContain('err\n');
  });

  it(`${name}: 100 MB through stdout and through stdin arrive with equal hashes`, async () => {
    const remote = '/tmp/skiff-conformance-100m';
    const made = await ssh(`head -c ${MB100} /dev/urandom > ${remote} && sha256sum ${remote}`);
    expect(made.code, made.stderr).toBe(0);
    const down = await ssh(`cat ${remote}; rm -f ${remote}`);
    expect([down.code, down.stdoutBytes, down.stdoutSha256]).toEqual([0, MB100, made.stdout.split(/\s+/)[0]]);

    const data = randomBytes(MB100);
    const up = await ssh('sha256sum', { input: data });
    expect([up.code, up.stdout.split(/\s+/)[0]], up.stderr).toEqual([0, sha256(data)]);
  });

  it(`${name}: interactive PTY shell: a terminal of the requested size, resized on request`, async () => {
    const shell = await ptyShell(target().ssh2, { cols: 91, rows: 27 });
    try {
      expect(await shell.answer('tty >/dev/null && echo has-tty', 'T')).toBe('has-tty');
      expect(await shell.answer('stty size', 'A')).toBe('27 91');
      shell.channel.setWindow(41, 123, 0, 0);
      // The resize travels separately from the input: ask until it has arrived.
      await waitFor(async () => (await shell.answer('stty size', `R${Date.now() % 100000}`)) === '41 123', {
        what: 'the new window size in the container',
        timeoutMs: 15_000,
        intervalMs: 100,
      });
      shell.channel.write('exit 5\n');
      expect(await shell.exited).toBe(5);
    } finally {
      shell.close();
    }
  });

  it(`${name}: PTY output is translated once (no doubled carriage returns), exit code kept`, async () => {
    const r = await ssh(`printf 'a\\nb\\n'; exit 7`, { tty: true });
    expect(r.code).toBe(7);
    expect(r.stdout).toBe('a\r\nb\r\n');
  });

  it(`${name}: sftp put and get read and write the container's files`, async () => {
    const { containerName, sftpArgs } = target();
    const content = randomBytes(300_000);
    const local = join(dir, 'put.bin');
    await writeFile(local, content);
    const remote = `/tmp/skiff-conformance-sftp-${Date.now()}`;
    const marker = `made in ${containerName}\n`;
    await inContainer(containerName, `printf '%s' '${marker}' > ${remote}.marker && chmod 644 ${remote}.marker`);
    const batch = join(dir, 'batch');
    await writeFile(batch, `put ${local} ${remote}\nget ${remote}.marker ${join(dir, 'got')}\n`);
    const r = await runProgram('sftp', ['-b', batch, ...sftpArgs]);
    expect(r.code, r.stderr).toBe(0);
    expect(await readFile(join(dir, 'got'), 'utf8')).toBe(marker);
    const inside = await inContainer(containerName, `sha256sum ${remote}; rm -f ${remote} ${remote}.marker`);
    expect(inside.stdout.split(/\s+/)[0]).toBe(sha256(content));
  });

  it(`${name}: setup progress is shown while the container starts, then the command runs`, async () => {
    const { containerName } = target();
    const stopped = await runProgram('docker', ['stop', '-t', '5', containerName]);
    expect(stopped.code, stopped.stderr).toBe(0);
    const r = await ssh('echo ran');
    expect([r.code, r.stdout], r.stderr).toEqual([0, 'ran\n']);
    expect(r.stderr).toContain(`container ${containerName}: starting`);
  });

  it(`${name}: a client that disconnects leaves no process behind (within 5 s)`, async () => {
    const { containerName, sshArgs } = target();
    const seconds = `${1000 + Math.floor(Math.random() * 8999)}`;
    const client = spawn('ssh', ['-T', ...sshArgs, `sleep ${seconds}`], { stdio: 'ignore' });
    try {
      await waitFor(async () => (await processes(containerName, `sleep ${seconds}`)).length > 0, {
        what: `sleep ${seconds} in the container`,
        timeoutMs: 30_000,
      });
    } finally {
      client.kill('SIGKILL');
    }
    const gone = Date.now();
    await waitFor(async () => (await processes(containerName, `sleep ${seconds}`)).length === 0, {
      what: `sleep ${seconds} to be gone`,
      timeoutMs: 5_000,
      intervalMs: 200,
    });
    expect(Date.now() - gone).toBeLessThan(5_000);
  });
}
