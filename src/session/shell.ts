// The login shell: what sshd runs for a mapped user (`-skiff-core` or `skiff-core -c CMD`). It
// connects to the daemon's socket for its user and relays the session; the daemon decides where
// it goes. Loads nothing but Node's own modules and the frame format, so a login starts fast.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { userInfo } from 'node:os';
import { join } from 'node:path';
import { createFrameDecoder, encodeFrame, encodeHeader, FRAME, parseJson, type Hello } from './frames.js';

export interface ShellOptions {
  /** `-c CMD`; undefined for an interactive login. */
  command: string | undefined;
  runDir: string;
  env: NodeJS.ProcessEnv;
  /** How long to wait for a daemon that is not answering yet (it may be starting). */
  connectTimeoutMs?: number;
}

const DEFAULT_RUN_DIR = '/run/skiff-core';
/** By absolute path: the login shell never looks a program up in a PATH its user could set. */
const STTY = ['/bin/stty', '/usr/bin/stty'].find((p) => existsSync(p)) ?? '/bin/stty';

export async function runLoginShell(options: ShellOptions): Promise<number> {
  const user = sessionUser(options.env);
  const path = join(options.runDir || DEFAULT_RUN_DIR, 'users', `${user}.sock`);
  const socket = await connectWithRetry(path, options.connectTimeoutMs ?? 10_000);
  if (typeof socket === 'string') {
    process.stderr.write(`skiff-core: cannot start your session: ${socket}\n`);
    return 1;
  }
  return relay(socket, options);
}

/**
 * The user the login is for. Root may name another (for tests and administration); anyone else
 * is who the kernel says they are, and the socket's permissions enforce the rest.
 */
function sessionUser(env: NodeJS.ProcessEnv): string {
  const me = userInfo().username;
  return process.getuid?.() === 0 && env.SKIFF_CORE_SESSION_USER ? env.SKIFF_CORE_SESSION_USER : me;
}

async function connectWithRetry(path: string, timeoutMs: number): Promise<Socket | string> {
  const deadline = Date.now() + timeoutMs;
  let told = false;
  for (;;) {
    const result = await new Promise<Socket | NodeJS.ErrnoException>((resolve) => {
      const socket = connect(path);
      socket.once('connect', () => resolve(socket));
      socket.once('error', (err) => resolve(err as NodeJS.ErrnoException));
    });
    if (!(result instanceof Error)) return result;
    if (result.code === 'EACCES') return `${path}: permission denied (this account is not the socket's user)`;
    if (Date.now() > deadline) {
      return result.code === 'ENOENT' || result.code === 'ECONNREFUSED'
        ? 'the skiff-core daemon is not running, or this account is not mapped to a container (ask the device owner to check "skiff-core status")'
        : `${path}: ${result.message}`;
    }
    if (!told) {
      process.stderr.write('skiff-core: waiting for the skiff-core daemon...\n');
      told = true;
    }
    await new Promise((r) => setTimeout(r, 250));
  }
}

const FORWARDED = /^(TERM|LANG|LC_[A-Z_]+|COLORTERM|SSH_CONNECTION|SSH_CLIENT|SSH_TTY|SSH_ORIGINAL_COMMAND)$/;

function relay(socket: Socket, options: ShellOptions): Promise<number> {
  const stdin = process.stdin;
  const stdout = process.stdout;
  const stderr = process.stderr;
  const tty = Boolean(stdin.isTTY && stdout.isTTY);
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(options.env)) if (v !== undefined && FORWARDED.test(k)) env[k] = v;
  const hello: Hello = { v: 1, tty, env, ...(options.command !== undefined ? { command: options.command } : {}) };
  if (tty && stdout.columns && stdout.rows) Object.assign(hello, { cols: stdout.columns, rows: stdout.rows });
  socket.write(encodeFrame(FRAME.hello, hello));

  let started = false;
  let progressShown = false;
  return new Promise<number>((resolve) => {
    let code = 255;
    const finish = () => {
      clearInterval(parentWatch);
      if (tty) {
        stdin.setRawMode(false);
        spawnSync(STTY, ['opost'], { stdio: ['inherit', 'ignore', 'ignore'] });
      }
      stdin.pause();
      resolve(code);
    };

    if (tty) {
      stdin.setRawMode(true);
      // libuv's raw mode keeps output processing (ONLCR): the container's terminal already
      // turned \n into \r\n, so a second translation here would send \r\r\n.
      spawnSync(STTY, ['-opost'], { stdio: ['inherit', 'ignore', 'ignore'] });
    }
    // sshd's session process is our parent: when the client goes away without a terminal (no
    // SIGHUP), it exits and we are reparented. End the session then, so the daemon kills its processes.
    const parent = process.ppid;
    const parentWatch = setInterval(() => {
      if (process.ppid !== parent) socket.destroy();
    }, 500);
    const onWinch = () => socket.write(encodeFrame(FRAME.resize, { cols: stdout.columns, rows: stdout.rows }));
    if (tty) process.on('SIGWINCH', onWinch);

    // Input: frames to the daemon, paused while the socket cannot take more.
    stdin.on('data', (chunk: Buffer) => {
      // Before the session starts, Ctrl-C abandons the wait (the setup itself goes on).
      if (tty && !started && chunk.includes(3)) {
        stderr.write('\r\nskiff-core: stopped waiting; setup continues in the background.\r\n');
        code = 130;
        socket.destroy();
        return;
      }
      socket.cork();
      socket.write(encodeHeader(FRAME.stdin, chunk.length));
      const ok = socket.write(chunk);
      socket.uncork();
      if (!ok) {
        stdin.pause();
        socket.once('drain', () => stdin.resume());
      }
    });
    stdin.once('end', () => socket.write(encodeFrame(FRAME.stdinEnd)));

    const waiting = new Set<NodeJS.WriteStream>();
    const write = (target: NodeJS.WriteStream, data: Buffer) => {
      if (!target.write(data) && !waiting.has(target)) {
        waiting.add(target);
        socket.pause();
        target.once('drain', () => {
          waiting.delete(target);
          socket.resume();
        });
      }
    };
    const decoder = createFrameDecoder(
      (type, payload) => {
        switch (type) {
          case FRAME.stdout:
            return write(stdout, payload);
          case FRAME.stderr:
            return write(stderr, payload);
          case FRAME.progress: {
            const line = parseJson<{ line: string }>(payload)?.line ?? '';
            // On a terminal the line is redrawn in place; elsewhere each is kept.
            if (tty) stderr.write(`\r\u001b[2K${line.slice(0, (stderr.columns || 80) - 1)}`);
            else stderr.write(`${line}\n`);
            progressShown = true;
            return;
          }
          case FRAME.started:
            started = true;
            if (tty && progressShown) stderr.write('\r\u001b[2K');
            return;
          case FRAME.exit:
            code = parseJson<{ code: number }>(payload)?.code ?? 255;
            return;
          case FRAME.error: {
            const message = parseJson<{ message: string }>(payload)?.message ?? 'unknown error';
            stderr.write(`${tty && progressShown ? '\r\n' : ''}skiff-core: ${message.replace(/\n/g, tty ? '\r\n' : '\n')}${tty ? '\r\n' : '\n'}`);
            code = 1;
            return;
          }
          default:
            return;
        }
      },
      (message) => {
        stderr.write(`skiff-core: ${message}\n`);
        socket.destroy();
      },
    );
    socket.on('data', (chunk: Buffer) => decoder.push(chunk));
    socket.once('error', () => undefined);
    socket.once('close', () => {
      process.off('SIGWINCH', onWinch);
      finish();
    });
    stdin.resume();
  });
}
