// The gateway's session-channel layer: turns one SSH "session" channel (pty-req, env, shell /
// exec / subsystem sftp, window-change) into the Hello and SessionIo that the shared session
// routing takes, exactly what the login shell sends over its socket. What runs where is decided
// there, from the config; nothing in the channel's requests can change it.
import { randomBytes } from 'node:crypto';
import { PassThrough, Writable } from 'node:stream';
import type { ServerChannel, Session } from 'ssh2';
import { errorMessage, isSkiffError, userMessage } from '../errors.js';
import type { Logger } from '../log.js';
import { validTerminalSize, type Hello } from '../session/frames.js';
import type { AgentRequest } from '../session/agent.js';
import type { SessionIo } from '../session/relay.js';
import { allowedEnv } from '../session/route.js';
import { terminalSafe } from '../session/terminal-safe.js';
import type { SessionHandler } from '../session/session-server.js';

/** What the sftp subsystem asks the routing for: the container's own sftp-server. */
export const SFTP_COMMAND = 'internal-sftp';

/** More env requests than any client sends; the rest are refused (they would only take memory). */
const MAX_ENV = 64;

export interface ConnectionInfo {
  remoteAddress: string;
  remotePort: number;
  localAddress: string;
  localPort: number;
}

export interface ChannelContext {
  user: string;
  handler: SessionHandler;
  log: Logger;
  connection: ConnectionInfo;
  /** Aborts when the connection goes away. */
  connectionClosed: AbortSignal;
  /** Takes a session slot: a release function, or why there is none (shown to the user). */
  admit(): (() => void) | { refused: string };
  /** Data moved in either direction (for the idle timeout). */
  activity(): void;
  /** Forwards the client's agent into the session (agent-forward.ts); resolves with its stop. */
  forwardAgent?(request: AgentRequest): Promise<() => Promise<void>>;
}

interface PtyInfo {
  term: string;
  cols: number;
  rows: number;
}

/** Serves one accepted session channel until it ends. */
export function serveSession(session: Session, ctx: ChannelContext): void {
  // The connection's logger already names it, its source and its user; this names the channel.
  const log = ctx.log.child({ channel: randomBytes(3).toString('hex') });
  let pty: PtyInfo | undefined;
  const env: Record<string, string> = {};
  const resizeListeners: ((cols: number, rows: number) => void)[] = [];
  const signalListeners: ((name: string) => void)[] = [];
  let running = false;

  session.on('pty', (accept, reject, info) => {
    if (running) return reject?.();
    pty = { term: info.term, cols: info.cols, rows: info.rows };
    accept?.();
  });
  session.on('env', (accept, reject, info) => {
    const kept = allowedEnv({ [info.key]: info.val });
    if (running || Object.keys(kept).length === 0 || Object.keys(env).length >= MAX_ENV) return reject?.();
    Object.assign(env, kept);
    accept?.();
  });
  session.on('window-change', (accept, _reject, info) => {
    accept?.();
    if (!validTerminalSize(info.cols, info.rows)) return;
    if (pty) pty = { ...pty, cols: info.cols, rows: info.rows };
    for (const l of resizeListeners) l(info.cols, info.rows);
  });
  session.on('x11', (_accept, reject) => {
    log.info('Refused X11 forwarding: the gateway does not forward X11');
    reject?.();
  });
  // Whether it is forwarded is the daemon's decision (the user's auth.agentForwarding).
  let agentAsked = false;
  session.on('auth-agent', (accept, reject) => {
    if (running || !ctx.forwardAgent) {
      log.info(running ? 'Refused agent forwarding after the session began' : 'Refused agent forwarding: no launcher to relay with');
      return reject?.();
    }
    agentAsked = true;
    accept?.();
  });
  session.on('signal', (accept, _reject, info) => {
    accept?.();
    if (typeof info.name !== 'string') return;
    for (const listener of signalListeners) listener(info.name.replace(/^SIG/, ''));
  });
  /**
   * One shell, exec or subsystem per channel (RFC 4254 6.5): a second is refused. ssh2's accept()
   * returns no channel for it, and using that would throw out of the session.
   */
  const begin = (
    accept: (() => ServerChannel | undefined) | undefined,
    reject: (() => void) | undefined,
    what: string,
    command: string | undefined,
    binary = false,
  ) => {
    if (running || !accept) {
      log.info({ request: what }, 'Refused a second session request on one channel');
      return reject?.();
    }
    running = true;
    const channel = accept();
    if (!channel) return;
    run(channel, command, binary).catch((err: unknown) => {
      // A boundary per channel: whatever went wrong ends this channel, never the daemon.
      log.error({ err: errorMessage(err) }, 'SSH session failed');
      channel.destroy();
    });
  };
  session.on('shell', (accept, reject) => begin(accept, reject, 'shell', undefined));
  session.on('exec', (accept, reject, info) => begin(accept, reject, 'exec', info.command));
  session.on('subsystem', (accept, reject, info) => {
    if (info.name !== 'sftp') {
      log.info({ subsystem: info.name }, 'Refused an unknown subsystem');
      return reject?.();
    }
    begin(accept, reject, 'subsystem', SFTP_COMMAND, true);
  });

  async function run(channel: ServerChannel, command: string | undefined, binary = false): Promise<void> {
    const closed = new AbortController();
    const abort = () => closed.abort();
    if (ctx.connectionClosed.aborted) abort();
    ctx.connectionClosed.addEventListener('abort', abort, { once: true });
    session.once('close', abort);
    channel.once('close', abort);
    channel.on('error', (err: Error) => log.debug({ err: errorMessage(err) }, 'SSH channel error'));
    channel.stderr.on('error', () => undefined);

    // sftp speaks a binary protocol: never through a terminal, whatever the client asked for.
    const tty = pty !== undefined && !binary;
    const nl = tty ? '\r\n' : '\n';
    // Messages and progress: on a terminal into the one stream (a pty merges them), else stderr.
    const notices: Writable = tty ? channel : channel.stderr;

    const slot = ctx.admit();
    if (typeof slot !== 'function') {
      notices.write(`skiff-core: ${slot.refused}${nl}`);
      await end(channel, [notices], closed.signal, { code: 1 });
      ctx.connectionClosed.removeEventListener('abort', abort);
      return;
    }

    let started = false;
    let progressShown = false;
    let finished = false;
    const stdin = new PassThrough({ highWaterMark: 256 * 1024 });
    const stdout = outputTo(channel, closed.signal, ctx.activity);
    const stderr = tty ? stdout : outputTo(channel.stderr, closed.signal, ctx.activity);

    const finish = async (exit: { code: number; signal?: string | undefined }) => {
      if (finished) return;
      finished = true;
      stdin.destroy();
      await end(channel, [stdout, stderr, channel, channel.stderr], closed.signal, exit);
      ctx.connectionClosed.removeEventListener('abort', abort);
    };

    // Input: kept in order, paused (and so the client's SSH window) while the session cannot
    // take more; without a terminal the client's EOF becomes EOF on the process's stdin.
    channel.on('data', (chunk: Buffer) => {
      ctx.activity();
      // Before the session starts, ^C on a terminal abandons the wait (the setup itself goes on).
      if (!started && tty && chunk.includes(3)) {
        if (finished) return;
        notices.write(`${progressShown ? '\r\n' : ''}skiff-core: stopped waiting; setup continues in the background.\r\n`);
        void finish({ code: 130 }).then(abort);
        return;
      }
      if (finished) return;
      if (!stdin.write(chunk)) {
        channel.pause();
        stdin.once('drain', () => channel.resume());
      }
    });
    channel.once('end', () => {
      // A terminal has no end of input: like sshd with a pty, EOF from the client is dropped
      // (the engine would end a TTY exec's output with its input).
      if (!tty && !stdin.destroyed) stdin.end();
    });

    const hello: Hello = {
      v: 1,
      tty,
      env: {
        ...env,
        ...(tty ? { TERM: pty!.term || 'xterm' } : {}),
        SSH_CONNECTION: `${ctx.connection.remoteAddress} ${ctx.connection.remotePort} ${ctx.connection.localAddress} ${ctx.connection.localPort}`,
        SSH_CLIENT: `${ctx.connection.remoteAddress} ${ctx.connection.remotePort} ${ctx.connection.localPort}`,
      },
      ...(command !== undefined ? { command } : {}),
      ...(tty && pty && pty.cols > 0 && pty.rows > 0 ? { cols: pty.cols, rows: pty.rows } : {}),
      ...(agentAsked ? { agent: true } : {}),
    };
    let stopAgent: (() => Promise<void>) | undefined;
    const io: SessionIo = {
      stdin,
      stdout,
      stderr,
      progress(line) {
        if (started || finished) return;
        // On a terminal the line is redrawn in place; elsewhere each is kept.
        notices.write(tty ? `\r\u001b[2K${line.slice(0, (pty?.cols || 80) - 1)}` : `${line}\n`);
        progressShown = true;
      },
      started() {
        started = true;
        if (tty && progressShown && !finished) notices.write('\r\u001b[2K');
      },
      onSignal(listener) {
        signalListeners.push(listener);
      },
      onResize(listener) {
        resizeListeners.push(listener);
        // The terminal may have been resized while the session waited for its container.
        if (tty && pty && pty.cols > 0 && pty.rows > 0 && (pty.cols !== hello.cols || pty.rows !== hello.rows))
          listener(pty.cols, pty.rows);
      },
      closed: closed.signal,
      ...(ctx.forwardAgent
        ? {
            agent: async (request: AgentRequest) => {
              stopAgent = await ctx.forwardAgent!(request);
            },
          }
        : {}),
    };

    try {
      const result: { code: number; signal?: unknown } = await ctx.handler(ctx.user, hello, io);
      await finish({ code: result.code, signal: typeof result.signal === 'string' ? result.signal : undefined });
    } catch (err) {
      if (!closed.signal.aborted && !finished) {
        if (!isSkiffError(err)) log.error({ err }, 'Session failed');
        await flushed(stdout, closed.signal);
        notices.write(`${tty && progressShown ? '\r\n' : ''}skiff-core: ${terminalSafe(userMessage(err)).replace(/\n/g, nl)}${nl}`);
      }
      await finish({ code: 1 });
    } finally {
      slot();
      await stopAgent?.().catch((err: unknown) => log.warn({ err: errorMessage(err) }, 'Cannot remove the agent socket'));
    }
  }
}

/**
 * Ends a session channel: what is queued reaches the client first, then the exit status (or
 * signal), then EOF and close. Nothing is sent once the client has gone.
 */
async function end(
  channel: ServerChannel,
  queues: Writable[],
  closed: AbortSignal,
  exit: { code: number; signal?: string | undefined },
): Promise<void> {
  for (const queue of queues) await flushed(queue, closed);
  if (closed.aborted || !channel.writable) return;
  if (exit.signal) channel.exit(exit.signal.replace(/^SIG/, ''), false, '');
  else channel.exit(exit.code);
  channel.end();
}

/**
 * A Writable into the channel (or its stderr) that holds the writer back while the client's
 * window is full, and drops output once the client is gone instead of failing.
 */
function outputTo(target: Writable, closed: AbortSignal, activity: () => void): Writable {
  return new Writable({
    highWaterMark: 256 * 1024,
    write(chunk: Buffer, _encoding, done) {
      if (closed.aborted || !target.writable) return done();
      activity();
      if (target.write(chunk)) return done();
      const release = () => {
        target.off('drain', release);
        closed.removeEventListener('abort', release);
        done();
      };
      target.on('drain', release);
      closed.addEventListener('abort', release, { once: true });
    },
  });
}

/**
 * Resolves once everything written to `stream` so far has been handed on (an empty write's
 * callback runs after the writes queued before it), or when the client is gone.
 */
function flushed(stream: Writable, closed: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (closed.aborted || !stream.writable || stream.writableLength === 0) return resolve();
    const done = () => {
      closed.removeEventListener('abort', done);
      resolve();
    };
    closed.addEventListener('abort', done, { once: true });
    stream.write(Buffer.alloc(0), done);
  });
}
