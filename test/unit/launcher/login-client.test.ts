// The native login client (launcher/login.c) and the hand-off helper (launcher/handoff.c), built
// for this machine and cross-built for the boards' 32- and 64-bit ARM, those run under qemu-user.
// A stand-in daemon speaks the session protocol on the user's socket and hands over a connection
// to a stand-in engine that talks Docker's multiplexed stdio, so every byte the client handles is
// one this test chose. Cross compilers and qemu come from the test provisioning (scripts/provision.sh).
import { execFileSync, spawn } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { createHash, randomBytes } from 'node:crypto';
import { chmod, mkdir, mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createFrameDecoder, encodeFrame, FRAME } from '../../../src/session/frames.js';
import { removeAgentSocket } from '../../../src/session/agent.js';
import { createHandoffHelper, type HandoffHelper } from '../../../src/session/handoff.js';

const LAUNCHER_DIR = fileURLToPath(new URL('../../../launcher/', import.meta.url));
/** Every C file of the launcher, as the Makefile compiles them. */
const SOURCES = readdirSync(LAUNCHER_DIR)
  .filter((f) => f.endsWith('.c'))
  .sort()
  .map((f) => join(LAUNCHER_DIR, f));

interface Target {
  name: string;
  cc: string;
  /** How to run a binary of this target here. */
  runner: string[];
}

const TARGETS: Target[] = [
  { name: 'native', cc: 'cc', runner: [] },
  { name: 'armhf', cc: 'arm-linux-gnueabihf-gcc', runner: ['qemu-arm-static', '-L', '/usr/arm-linux-gnueabihf'] },
  { name: 'aarch64', cc: 'aarch64-linux-gnu-gcc', runner: ['qemu-aarch64-static', '-L', '/usr/aarch64-linux-gnu'] },
];

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'skt-login-client-'));
});
afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

/** Docker's stdio frame: [stream][0 0 0][size u32 BE][data]. */
const stdioFrame = (stream: 1 | 2, data: Buffer | string) => {
  const body = Buffer.from(data);
  const header = Buffer.alloc(8);
  header[0] = stream;
  header.writeUInt32BE(body.length, 4);
  return Buffer.concat([header, body]);
};
/** What the daemon read before the hand-over: the first 11 bytes of the exec's first frame. */
const HEAD = stdioFrame(1, 'hello world\n').subarray(0, 11);
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

interface Ran {
  code: number | null;
  stdout: Buffer;
  stderr: string;
}

describe.each(TARGETS)('login client ($name)', (target) => {
  let binary: string;
  let helper: HandoffHelper;
  let runDir: string;
  let engineDir: string;

  beforeAll(async () => {
    for (const tool of [target.cc, ...target.runner.slice(0, 1)]) {
      if (
        !execFileSync('sh', ['-c', `command -v ${tool} || true`])
          .toString()
          .trim()
      ) {
        throw new Error(
          `${tool} is missing: run "bash scripts/provision.sh cross" as root (it installs the cross compilers and qemu-user-static)`,
        );
      }
    }
    binary = join(dir, `skiff-core-${target.name}`);
    // The build must be warning-free for every target.
    const out = execFileSync(target.cc, ['-O2', '-Wall', '-Wextra', '-Werror', '-std=c99', '-o', binary, ...SOURCES], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    expect(out).toBe('');
    // The helper of this target too, through qemu for the ARM builds.
    const helperPath = join(dir, `handoff-${target.name}.sh`);
    await writeFile(
      helperPath,
      target.runner.length
        ? `#!/bin/sh\nexec ${target.runner.join(' ')} -0 skiff-core-handoff ${binary}\n`
        : `#!/bin/bash\nexec -a skiff-core-handoff ${binary}\n`,
    );
    await chmod(helperPath, 0o755);
    helper = createHandoffHelper(helperPath);
    runDir = join(dir, `run-${target.name}`);
    engineDir = join(dir, `engine-${target.name}`);
    await mkdir(join(runDir, 'users'), { recursive: true });
    await mkdir(engineDir, { recursive: true });
  }, 120_000);
  afterAll(() => helper?.close());

  /** Runs the client as root for user "u" with `input` on stdin. */
  function client(command: string, input: Buffer, env: Record<string, string> = {}): Promise<Ran> {
    return new Promise((resolve) => {
      const [program, ...args] = [...target.runner, binary, '-c', command];
      const child = spawn(program!, args, {
        env: { SKIFF_CORE_RUN_DIR: runDir, SKIFF_CORE_SESSION_USER: 'u', TERM: 'xterm', LC_ALL: 'C', FOO: 'not passed', ...env },
        stdio: ['pipe', 'pipe', 'pipe'],
      });
      const out: Buffer[] = [];
      let stderr = '';
      child.stdout.on('data', (c: Buffer) => out.push(c));
      child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
      child.stdin.on('error', () => undefined);
      child.stdin.end(input);
      child.on('close', (code) => resolve({ code, stdout: Buffer.concat(out), stderr }));
    });
  }

  /** A stand-in daemon on u's socket: `onConnection` gets each connection and its frames. */
  async function daemon(onConnection: (socket: Socket, frames: AsyncIterator<[number, Buffer]>) => Promise<void>): Promise<Server> {
    const path = join(runDir, 'users', 'u.sock');
    await rm(path, { force: true });
    const server = createServer((socket) => {
      const queue: [number, Buffer][] = [];
      let wake: (() => void) | undefined;
      const decoder = createFrameDecoder(
        (type, payload) => {
          queue.push([type, payload]);
          wake?.();
        },
        () => socket.destroy(),
      );
      socket.on('data', (c: Buffer) => decoder.push(c));
      socket.on('error', () => undefined);
      socket.on('close', () => wake?.());
      const frames: AsyncIterator<[number, Buffer]> = {
        async next() {
          while (!queue.length && !socket.destroyed) await new Promise<void>((r) => (wake = r));
          const value = queue.shift();
          return value ? { value, done: false } : { value: undefined, done: true };
        },
      };
      void onConnection(socket, frames).catch(() => socket.destroy());
    });
    await new Promise<void>((resolve) => server.listen(path, resolve));
    return server;
  }

  /** A stand-in engine: the daemon's end of one exec connection, and the engine's end. */
  async function engineConnection(name: string): Promise<{ daemonSide: Socket; engineSide: Socket; server: Server }> {
    const path = join(engineDir, `${name}.sock`);
    await rm(path, { force: true });
    const accepted = new Promise<Socket>((resolve) => {
      const server = createServer({ allowHalfOpen: true }, (s) => resolve(s));
      server.listen(path);
      servers.push(server);
    });
    const daemonSide = connect(path);
    await new Promise((r) => daemonSide.once('connect', r));
    return { daemonSide, engineSide: await accepted, server: servers.at(-1)! };
  }
  const servers: Server[] = [];
  afterAll(() => servers.forEach((s) => s.close()));

  const expectFrame = async (frames: AsyncIterator<[number, Buffer]>, type: number) => {
    const { value, done } = await frames.next();
    expect(done).toBe(false);
    expect(value![0]).toBe(type);
    return value![1];
  };

  /** The stand-in engine's exec: stdout in pieces, stderr, then what it read on stdin, then its end. */
  function runExec(engineSide: Socket, afterStdin: () => Promise<void> = async () => undefined): Promise<Buffer> {
    return new Promise((resolve) => {
      const input: Buffer[] = [];
      engineSide.on('data', (c: Buffer) => input.push(c));
      engineSide.once('end', async () => {
        const got = Buffer.concat(input);
        engineSide.write(stdioFrame(1, `read ${got.length} ${sha(got)}\n`));
        await afterStdin();
        engineSide.end();
        resolve(got);
      });
      // The rest of the first frame (its start went ahead as the daemon's "engine head").
      engineSide.write(Buffer.from('lo wor'));
      engineSide.write(Buffer.concat([Buffer.from('ld\n'), stdioFrame(2, 'warn\n').subarray(0, 5)]));
      engineSide.write(stdioFrame(2, 'warn\n').subarray(5));
    });
  }

  it('takes the exec connection: demultiplexes stdout and stderr, half-closes stdin at EOF, delivers the exit code', async () => {
    const input = randomBytes(3 * 1024 * 1024 + 17);
    const exec = await engineConnection('a');
    let hello: Record<string, unknown> = {};
    const server = await daemon(async (socket, frames) => {
      hello = JSON.parse((await expectFrame(frames, FRAME.hello)).toString()) as Record<string, unknown>;
      socket.write(encodeFrame(FRAME.progress, { line: 'pulling something' }));
      socket.write(encodeFrame(FRAME.engineHead, HEAD));
      socket.write(encodeFrame(FRAME.handoff, { session: 'a'.repeat(64), token: 'b'.repeat(64) }));
      await helper.pass(socket, exec.daemonSide);
      execDone = runExec(exec.engineSide);
      await expectFrame(frames, FRAME.done);
      socket.end(encodeFrame(FRAME.exit, { code: 7 }));
    });
    let execDone: Promise<Buffer> | undefined;
    try {
      const r = await client('the command', input);
      // Hashes: comparing megabytes byte by byte takes the matcher seconds.
      expect(sha(await execDone!)).toBe(sha(input));
      expect(hello).toEqual({ v: 1, tty: false, handoff: true, command: 'the command', env: { TERM: 'xterm', LC_ALL: 'C' } });
      expect(r.stdout.toString()).toBe(`hello world\nread ${input.length} ${sha(input)}\n`);
      expect(r.stderr).toBe('pulling something\nwarn\n');
      expect(r.code).toBe(7);
    } finally {
      server.close();
    }
  }, 60_000);

  it('relays each connection to the agent socket the helper made to its own SSH_AUTH_SOCK, until the session ends', async () => {
    // The "container" is this process: the helper makes the socket in /proc/<our pid>/root/tmp.
    const agentPath = join(dir, `agent-${target.name}.sock`);
    const fakeAgent = createServer((s) => s.on('data', (d: Buffer) => s.write(Buffer.concat([Buffer.from('agent:'), d]))));
    await new Promise<void>((resolve) => fakeAgent.listen(agentPath, resolve));
    servers.push(fakeAgent);
    const agent = { pid: process.pid, dir: `skiff-agent-${randomBytes(8).toString('hex')}` };
    const inside = join('/tmp', agent.dir, 'agent.sock');
    const ask = (text: string) =>
      new Promise<string>((resolve, reject) => {
        const s = connect(inside, () => s.write(text));
        s.once('data', (d: Buffer) => {
          resolve(d.toString());
          s.destroy();
        });
        s.once('error', reject);
      });
    const exec = await engineConnection('agent');
    let hello: Record<string, unknown> = {};
    let replies: string[] = [];
    let modes: number[] = [];
    const server = await daemon(async (socket, frames) => {
      hello = JSON.parse((await expectFrame(frames, FRAME.hello)).toString()) as Record<string, unknown>;
      await helper.agent(socket, { ...agent, uid: process.getuid!(), gid: process.getgid!() });
      socket.write(encodeFrame(FRAME.handoff, { session: 'e'.repeat(64), token: 'f'.repeat(64) }));
      await helper.pass(socket, exec.daemonSide);
      replies = await Promise.all([ask('one'), ask('two')]);
      modes = [(await stat(join('/tmp', agent.dir))).mode & 0o777, (await stat(inside)).mode & 0o777];
      exec.engineSide.end();
      await expectFrame(frames, FRAME.done);
      socket.end(encodeFrame(FRAME.exit, { code: 0 }));
    });
    try {
      const r = await client('cmd', Buffer.alloc(0), { SSH_AUTH_SOCK: agentPath });
      expect(r, r.stderr).toMatchObject({ code: 0 });
      expect(hello['agent']).toBe(true);
      expect(replies).toEqual(['agent:one', 'agent:two']);
      expect(modes).toEqual([0o700, 0o600]);
    } finally {
      server.close();
      await removeAgentSocket(agent);
    }
    await expect(stat(join('/tmp', agent.dir))).rejects.toThrow(/ENOENT/);
  }, 60_000);

  it('keeps the session through a daemon restart: reconnects with its token, then gets the exit code', async () => {
    const exec = await engineConnection('b');
    const resumed: Record<string, unknown>[] = [];
    const input = Buffer.from('typed while the daemon was away\n');
    let execDone: Promise<Buffer> | undefined;
    let second: Server | undefined;
    const first = await daemon(async (socket, frames) => {
      await expectFrame(frames, FRAME.hello);
      socket.write(encodeFrame(FRAME.engineHead, HEAD));
      socket.write(encodeFrame(FRAME.handoff, { session: 'c'.repeat(64), token: 'd'.repeat(64) }));
      await helper.pass(socket, exec.daemonSide);
      // The exec ends only after the new daemon is up, so the client must come back to it.
      execDone = runExec(exec.engineSide, () => new Promise((r) => setTimeout(r, 1500)));
      // The daemon dies: its socket goes, and a new one comes a moment later.
      first.close();
      socket.destroy();
      await new Promise((r) => setTimeout(r, 600));
      second = await daemon(async (s2, f2) => {
        resumed.push(JSON.parse((await expectFrame(f2, FRAME.hello)).toString()) as Record<string, unknown>);
        s2.write(encodeFrame(FRAME.resumed, {}));
        await expectFrame(f2, FRAME.done);
        s2.end(encodeFrame(FRAME.exit, { code: 5 }));
      });
    });
    try {
      const r = await client('cat', input);
      expect(await execDone!).toEqual(input);
      expect(r.stdout.toString()).toBe(`hello world\nread ${input.length} ${sha(input)}\n`);
      expect(resumed).toEqual([{ v: 1, tty: false, env: {}, resume: { session: 'c'.repeat(64), token: 'd'.repeat(64) } }]);
      expect(r.code).toBe(5);
    } finally {
      first.close();
      second?.close();
    }
  }, 60_000);

  it('relays through the daemon when it does not hand over: stdin frames, its end, output frames, exit code', async () => {
    const input = randomBytes(200_000);
    const got: Buffer[] = [];
    const server = await daemon(async (socket, frames) => {
      await expectFrame(frames, FRAME.hello);
      socket.write(encodeFrame(FRAME.started, {}));
      for (;;) {
        const { value } = await frames.next();
        if (!value || value[0] === FRAME.stdinEnd) break;
        expect(value[0]).toBe(FRAME.stdin);
        got.push(value[1]);
      }
      socket.write(encodeFrame(FRAME.stdout, 'out\n'));
      socket.write(encodeFrame(FRAME.stderr, 'err\n'));
      socket.end(encodeFrame(FRAME.exit, { code: 3 }));
    });
    try {
      const r = await client('x', input);
      expect(sha(Buffer.concat(got))).toBe(sha(input));
      expect({ stdout: r.stdout.toString(), stderr: r.stderr, code: r.code }).toEqual({ stdout: 'out\n', stderr: 'err\n', code: 3 });
    } finally {
      server.close();
    }
  }, 60_000);

  it('a login still waiting asks the next daemon again when the daemon restarts', async () => {
    const hellos: string[] = [];
    let second: Server | undefined;
    const first = await daemon(async (socket, frames) => {
      hellos.push((await expectFrame(frames, FRAME.hello)).toString());
      socket.write(encodeFrame(FRAME.progress, { line: 'building' }));
      first.close();
      socket.destroy();
      second = await daemon(async (s2, f2) => {
        hellos.push((await expectFrame(f2, FRAME.hello)).toString());
        s2.write(encodeFrame(FRAME.started, {}));
        await expectFrame(f2, FRAME.stdinEnd);
        s2.end(encodeFrame(FRAME.exit, { code: 4 }));
      });
    });
    try {
      const r = await client('make', Buffer.alloc(0));
      expect(hellos).toHaveLength(2);
      expect(hellos[1]).toBe(hellos[0]);
      expect({ stderr: r.stderr, code: r.code }).toEqual({ stderr: 'building\n', code: 4 });
    } finally {
      first.close();
      second?.close();
    }
  }, 60_000);

  it('a refusal is said in one line, with exit status 1', async () => {
    const server = await daemon(async (socket, frames) => {
      await expectFrame(frames, FRAME.hello);
      socket.end(encodeFrame(FRAME.error, { message: 'setup failed: image "x" \u00e9 not found' }));
    });
    try {
      const r = await client('true', Buffer.alloc(0));
      expect({ stderr: r.stderr, code: r.code }).toEqual({ stderr: 'skiff-core: setup failed: image "x" \u00e9 not found\n', code: 1 });
    } finally {
      server.close();
    }
  }, 60_000);
});
