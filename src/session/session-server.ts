// Per-user session sockets: RUN_DIR/users/NAME.sock, owned by that user, mode 0600 from the
// moment it exists, in a root-owned directory. Which socket a login arrived on is the only thing
// that says who it is: the route comes from the config, never from the request.
import { randomBytes } from 'node:crypto';
import { chmod, chown, mkdir, rm } from 'node:fs/promises';
import { createServer, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { PassThrough, Writable } from 'node:stream';
import { errorMessage, isSkiffError, userMessage } from '../errors.js';
import { listenPrivate } from '../fs/unix-socket.js';
import type { Logger } from '../log.js';
import {
  createFrameDecoder,
  encodeFrame,
  encodeHeader,
  FRAME,
  MAX_CLIENT_FRAME,
  MAX_HELLO,
  parseJson,
  validTerminalSize,
  type Hello,
} from './frames.js';
import { createHandoffHelper, type HandoffHelper } from './handoff.js';
import type { Handoff, SessionIo } from './relay.js';
import { terminalSafe } from './terminal-safe.js';

export const USERS_DIR = 'users';

export function sessionSocketPath(runDir: string, user: string): string {
  return join(runDir, USERS_DIR, `${user}.sock`);
}

export interface SessionAccount {
  name: string;
  uid: number;
  gid: number;
}

/** Runs a session for `user`; errors thrown are shown to the user (keep them safe to show). */
export type SessionHandler = (user: string, hello: Hello, io: SessionIo) => Promise<{ code: number }>;

export interface SessionServers {
  /** Open sockets for these accounts and close the others. */
  update(accounts: SessionAccount[]): Promise<void>;
  close(): Promise<void>;
}

const HELLO_TIMEOUT_MS = 10_000;
/**
 * What one user may hold open on their socket, so one user cannot pin the daemon's memory or
 * descriptors for everybody (like the gateway's gateway.maxSessionsPerUser). A session handed to
 * its client costs the daemon a socket and a few objects: many may run at once. A connection that
 * has not said hello yet (up to 64 KiB of hello each), or a session the daemon relays (buffers on
 * both sides), costs more. 64 waiting lets a burst of parallel logins (ansible, pssh) through.
 */
export const SESSION_LIMITS = { connections: 256, waitingForHello: 64, relayed: 32 } as const;

export interface SessionServerOptions {
  /**
   * The launcher, run as "skiff-core-handoff" to pass a connection on. Without it, sessions of
   * clients that could take their connection are relayed by the daemon.
   */
  handoffHelper?: string | undefined;
}

export function createSessionServers(
  runDir: string,
  handler: SessionHandler,
  log: Logger,
  options: SessionServerOptions = {},
): SessionServers {
  const stopping = new AbortController();
  const helper = options.handoffHelper ? createHandoffHelper(options.handoffHelper) : undefined;
  const servers = new Map<string, { server: Server; uid: number; sockets: Set<Socket> }>();
  const dir = join(runDir, USERS_DIR);

  async function open(account: SessionAccount) {
    await mkdir(dir, { recursive: true, mode: 0o755 });
    await chmod(dir, 0o755);
    const path = sessionSocketPath(runDir, account.name);
    await rm(path, { force: true });
    const sockets = new Set<Socket>();
    const waiting = new Set<Socket>();
    const relayed = new Set<Socket>();
    const tooMany = (kind: string, limit: number) =>
      `${account.name} already has ${limit} ${kind}, the most allowed; close one and try again`;
    const refuse = (socket: Socket, kind: string, limit: number) => {
      log.warn({ user: account.name, kind, limit }, 'Refusing a login: too many open connections for this user');
      socket.on('error', () => socket.destroy());
      socket.end(encodeFrame(FRAME.error, { message: tooMany(kind, limit) }));
    };
    const server = createServer((socket) => {
      if (sockets.size >= SESSION_LIMITS.connections) return refuse(socket, 'open logins', SESSION_LIMITS.connections);
      if (waiting.size >= SESSION_LIMITS.waitingForHello)
        return refuse(socket, 'logins that have not started', SESSION_LIMITS.waitingForHello);
      sockets.add(socket);
      waiting.add(socket);
      socket.once('close', () => {
        sockets.delete(socket);
        waiting.delete(socket);
        relayed.delete(socket);
      });
      serve(account.name, socket, handler, log, {
        helper,
        stopping: stopping.signal,
        admit(handedOff) {
          waiting.delete(socket);
          if (handedOff) return undefined;
          if (relayed.size >= SESSION_LIMITS.relayed) return tooMany('relayed sessions', SESSION_LIMITS.relayed);
          relayed.add(socket);
          return undefined;
        },
      });
    });
    // 0600 (root's) the instant it appears, then handed to the user.
    await listenPrivate(server, path);
    await chown(path, account.uid, account.gid);
    servers.set(account.name, { server, uid: account.uid, sockets });
    log.debug({ user: account.name, socket: path }, 'Session socket open');
  }

  async function shut(name: string) {
    const entry = servers.get(name);
    if (!entry) return;
    servers.delete(name);
    // Running sessions go on; only new logins are refused.
    await new Promise<void>((resolve) => entry.server.close(() => resolve()));
    await rm(sessionSocketPath(runDir, name), { force: true });
  }

  return {
    async update(accounts) {
      const wanted = new Map(accounts.map((a) => [a.name, a]));
      for (const [name, entry] of servers) {
        const want = wanted.get(name);
        if (!want || want.uid !== entry.uid) await shut(name);
      }
      for (const account of accounts) {
        if (servers.has(account.name)) continue;
        try {
          await open(account);
        } catch (err) {
          log.error({ user: account.name, err: errorMessage(err) }, 'Cannot open the session socket; this user cannot log in');
        }
      }
    },
    async close() {
      // Handed-off sessions keep running; their clients come back to the next daemon.
      stopping.abort();
      for (const entry of servers.values()) for (const s of entry.sockets) s.destroy();
      for (const name of [...servers.keys()]) await shut(name);
      helper?.close();
    },
  };
}

function serve(
  user: string,
  socket: Socket,
  handler: SessionHandler,
  log: Logger,
  context: {
    helper: HandoffHelper | undefined;
    stopping: AbortSignal;
    /** The hello arrived: counts the connection as what it is; a reason when over a limit. */
    admit(handedOff: boolean): string | undefined;
  },
): void {
  // One id per connection: concurrent logins of one user can be told apart in the log.
  log = log.child({ conn: randomBytes(4).toString('hex'), user });
  const closed = new AbortController();
  const stdin = new PassThrough();
  const resizeListeners: ((cols: number, rows: number) => void)[] = [];
  const signalListeners: ((name: string) => void)[] = [];
  let reportDone = () => undefined as void;
  const done = new Promise<void>((resolve) => (reportDone = resolve));
  // The last size the client reported, for a relay that starts listening after a resize (the
  // terminal may change while the login waits for its container).
  let size: { cols: number; rows: number } | undefined;
  let hello: Hello | undefined;
  const helloTimer = setTimeout(() => socket.destroy(), HELLO_TIMEOUT_MS);

  const send = (type: (typeof FRAME)[keyof typeof FRAME], payload?: Buffer | string | object) => {
    if (!socket.destroyed) socket.write(encodeFrame(type, payload));
  };
  const fail = (message: string) => {
    send(FRAME.error, { message });
    socket.end();
  };
  /** Whatever a client sends ends at most its own connection, logged once. */
  const refuse = (reason: string) => {
    if (socket.destroyed) return;
    log.warn({ reason }, 'Closing a session connection: the client broke the protocol');
    fail(reason);
    // The error frame goes out if the client reads it; a client that does not is cut off.
    setTimeout(() => socket.destroy(), 1000).unref();
  };
  let stdinEnded = false;

  const decoder = createFrameDecoder(
    (type, payload) => {
      if (!hello) {
        const parsed = type === FRAME.hello ? parseJson<Hello>(payload) : undefined;
        if (!parsed || parsed.v !== 1 || typeof parsed.tty !== 'boolean') return refuse('the session must start with a hello frame');
        clearTimeout(helloTimer);
        const env = typeof parsed.env === 'object' && parsed.env ? Object.entries(parsed.env).filter(([, v]) => typeof v === 'string') : [];
        hello = { v: 1, tty: parsed.tty, env: Object.fromEntries(env) };
        if (typeof parsed.command === 'string') hello.command = parsed.command;
        if (parsed.handoff === true) hello.handoff = true;
        if (parsed.agent === true) hello.agent = true;
        const resume = parsed.resume as unknown;
        if (resume !== undefined) {
          const r = resume as Record<string, unknown>;
          const ok = (v: unknown) => typeof v === 'string' && v.length > 0 && v.length <= 128;
          if (typeof resume !== 'object' || resume === null || !ok(r['session']) || !ok(r['token']))
            return refuse('a resume needs a session and a token');
          hello.resume = { session: r['session'] as string, token: r['token'] as string };
        }
        if (validTerminalSize(parsed.cols, parsed.rows)) {
          hello.cols = parsed.cols!;
          hello.rows = parsed.rows!;
        }
        const over = context.admit(takesConnection(hello));
        if (over) {
          log.warn({ reason: over }, 'Refusing a login');
          return fail(over);
        }
        void start(hello);
        return;
      }
      switch (type) {
        case FRAME.stdin:
          // Input after its end goes nowhere: the client said there would be none.
          if (stdinEnded || stdin.destroyed) return;
          // No copy needed: socket chunks are fresh buffers that nothing else writes to.
          if (!stdin.write(payload)) {
            socket.pause();
            stdin.once('drain', () => socket.resume());
          }
          return;
        case FRAME.stdinEnd:
          stdinEnded = true;
          stdin.end();
          return;
        case FRAME.resize: {
          const next = parseJson<{ cols: number; rows: number }>(payload);
          if (next && validTerminalSize(next.cols, next.rows)) {
            size = next;
            for (const l of resizeListeners) l(next.cols, next.rows);
          }
          return;
        }
        case FRAME.signal: {
          const name = parseJson<{ name: string }>(payload)?.name;
          if (typeof name === 'string') for (const l of signalListeners) l(name);
          return;
        }
        case FRAME.done:
          reportDone();
          return;
        default:
          return;
      }
    },
    (message) => refuse(message),
    { maxFrame: (index) => (index === 0 ? MAX_HELLO : MAX_CLIENT_FRAME) },
  );
  socket.on('data', (chunk: Buffer) => {
    try {
      decoder.push(chunk);
    } catch (err) {
      refuse(`the session failed on what the client sent: ${errorMessage(err)}`);
    }
  });
  socket.on('error', () => socket.destroy());
  socket.once('close', () => {
    clearTimeout(helloTimer);
    closed.abort();
    stdin.destroy();
    // A flush waiting on a client that left must not wait forever.
    for (const out of outputs) out.destroy();
  });

  const outputs: Writable[] = [];
  const output = (type: typeof FRAME.stdout | typeof FRAME.stderr) => {
    const out = new Writable({
      highWaterMark: 256 * 1024,
      write(chunk: Buffer, _encoding, done) {
        if (socket.destroyed) return done();
        // One writev for header and data, without copying the data.
        socket.cork();
        socket.write(encodeHeader(type, chunk.length));
        const ok = socket.write(chunk);
        socket.uncork();
        if (ok) done();
        else socket.once('drain', () => done());
      },
    });
    outputs.push(out);
    return out;
  };

  /** A session whose client holds the exec's connection (new, or taken back): not relayed. */
  const takesConnection = (request: Hello) => request.resume !== undefined || (request.handoff === true && context.helper !== undefined);
  const handoff = (request: Hello): Handoff | undefined => {
    if (!takesConnection(request)) return undefined;
    const helper = context.helper;
    return {
      async give(stream, head, resume) {
        if (!helper) throw new Error('no hand-off helper');
        if (head.length > 0) send(FRAME.engineHead, head);
        await new Promise<void>((resolve, reject) => {
          if (socket.destroyed) return reject(new Error('the client left'));
          socket.write(encodeFrame(FRAME.handoff, resume), (err) => (err ? reject(err) : resolve()));
        });
        await helper.pass(socket, stream);
      },
      async agent(request) {
        if (!helper) throw new Error('no hand-off helper');
        await helper.agent(socket, request);
      },
      done,
      daemonStopping: context.stopping,
      resumed: () => send(FRAME.resumed, {}),
    };
  };

  async function start(request: Hello) {
    const given = handoff(request);
    const io: SessionIo = {
      stdin,
      stdout: output(FRAME.stdout),
      stderr: output(FRAME.stderr),
      progress: (line) => send(FRAME.progress, { line }),
      started: () => send(FRAME.started, {}),
      onResize: (l) => {
        resizeListeners.push(l);
        if (size && (size.cols !== request.cols || size.rows !== request.rows)) l(size.cols, size.rows);
      },
      onSignal: (l) => signalListeners.push(l),
      closed: closed.signal,
      ...(given ? { handoff: given } : {}),
    };
    try {
      const result = await handler(user, request, io);
      // Output frames are queued on the socket in order, so the exit frame arrives after them.
      await Promise.all([flush(io.stdout), flush(io.stderr)]);
      send(FRAME.exit, { code: result.code });
      socket.end();
    } catch (err) {
      if (!closed.signal.aborted) {
        if (!isSkiffError(err)) log.error({ err }, 'Session failed');
        fail(terminalSafe(userMessage(err)));
      }
    }
  }
}

function flush(stream: Writable): Promise<void> {
  // 'drain' only follows a write() that returned false: data buffered below the high-water
  // mark would never announce itself. End the stream (nothing else is written to it) and wait
  // until every pending write has gone to the socket.
  return new Promise((resolve) => {
    if (stream.writableFinished || stream.destroyed) return resolve();
    stream.once('finish', () => resolve());
    stream.once('close', () => resolve());
    stream.once('error', () => resolve());
    stream.end();
  });
}
