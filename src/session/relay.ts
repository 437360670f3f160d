// Runs one login session in a container and relays it: the one place that does this, for both
// entry paths (the login shell's socket and the built-in SSH gateway).
import type { Duplex, Readable, Writable } from 'node:stream';
import type { Engine, ExecControl, ExecSession } from '../engine/engine.js';
import { createStdioDemuxer } from '../engine/stdio-frames.js';
import { errorMessage, SkiffError } from '../errors.js';
import type { Logger } from '../log.js';
import type { ExitInfo, Hello, ResumeRequest } from './frames.js';
import type { SessionRecords } from './handoff.js';
import { execPlan, type Route } from './route.js';
import { detachStream } from './handoff.js';
import { terminalSafeLine } from './terminal-safe.js';
import type { WarmExecs } from './warm-exec.js';

export interface SessionIo {
  /** The client's input; ends when the client closes its side (stdin EOF). */
  stdin: Readable;
  stdout: Writable;
  /** Without a TTY, stderr stays apart from stdout. */
  stderr: Writable;
  /** A line of setup progress while the container is not ready yet. */
  progress(line: string): void;
  /** The exec is running: from here on input belongs to it. */
  started(): void;
  onResize(listener: (cols: number, rows: number) => void): void;
  /** A signal the client asks to deliver (SSH "signal" request), by name without SIG. */
  onSignal?(listener: (name: string) => void): void;
  /** Aborts when the client goes away. */
  closed: AbortSignal;
  /** Set when the client takes the exec's connection itself (launcher/login.c). */
  handoff?: Handoff;
}

export interface Handoff {
  /** Gives the client the exec's connection, the bytes already read from it, and its token. */
  give(stream: Duplex, head: Buffer, resume: ResumeRequest): Promise<void>;
  /** Resolves when the client reports that the exec's output ended. */
  done: Promise<void>;
  /** Aborted when the daemon stops: handed-off sessions go on, the next daemon takes them back. */
  daemonStopping: AbortSignal;
  /** Tells a returning client that it has its session back. */
  resumed(): void;
}

export interface ResolvedUser {
  shell: string[];
  home: string | undefined;
  sftpServer: string | undefined;
}

export interface SessionDeps {
  engine: Engine;
  log: Logger;
  /** Waits until the container can take sessions (showing progress); returns its id. */
  awaitContainer(name: string, onLine: (line: string) => void, signal: AbortSignal): Promise<string>;
  resolveUser(containerId: string, route: Route): Promise<ResolvedUser>;
  /** Ends the exec's process and everything it started (the engine has no API for it). */
  killTree(pid: number, containerId: string): Promise<void>;
  /** Sends a signal to the exec's process, if it is still in that container. Never throws. */
  signal?(pid: number, containerId: string, signal: NodeJS.Signals): Promise<void>;
  /** Sessions attached per container: the daemon holds back replacing a container in use. */
  attached?(container: string, delta: 1 | -1): void;
  /** Waiting execs that take commands without starting a process (see warm-exec.ts). */
  warm?: WarmExecs;
  /** Records of handed-off sessions; without them every session is relayed. */
  records?: SessionRecords;
  /** Exec ids of handed-off sessions a client holds right now (new or taken back). */
  live?: Set<string>;
}

export async function runSession(deps: SessionDeps, route: Route, hello: Hello, io: SessionIo): Promise<ExitInfo> {
  const containerId = await deps.awaitContainer(route.container, (line) => io.progress(terminalSafeLine(line)), io.closed);
  const resolved = await deps.resolveUser(containerId, route);
  const plan = execPlan(route, resolved, { command: hello.command, env: hello.env });
  if ('error' in plan) throw new SkiffError('SESSION_REFUSED', plan.error);
  if (io.closed.aborted) return { code: 255 };

  // Commands without a TTY may take a waiting exec; the next one is started once this session
  // has its own (the engine serves this login first).
  const warm = hello.tty ? undefined : deps.warm?.take(containerId, plan);
  const refill = () => {
    if (!hello.tty) deps.warm?.refill(containerId, plan);
  };
  const session =
    warm ??
    (await deps.engine.execSession(containerId, plan.cmd, {
      tty: hello.tty,
      env: plan.env,
      ...(plan.user ? { user: plan.user } : {}),
      ...(plan.workingDir ? { workingDir: plan.workingDir } : {}),
      ...(hello.cols && hello.rows ? { cols: hello.cols, rows: hello.rows } : {}),
    }));
  deps.attached?.(route.container, 1);
  try {
    if (io.handoff && deps.records) return await handOver(deps, session, route, containerId, hello.tty, io, io.handoff, refill);
    io.started();
    refill();
    const exit = await relay(deps, session, containerId, hello.tty, io);
    // Killed (SIGKILL or SIGTERM): if the container is going away under it (Docker stopping or
    // restarting, the container stopped), say so rather than leave a bare exit status. The
    // engine kills a container's execs before it stops the container: look for a moment.
    await sayWhyKilled(deps.engine, exit, containerId, route.container, hello.tty, io);
    return exit;
  } finally {
    deps.attached?.(route.container, -1);
  }
}

async function sayWhyKilled(engine: Engine, exit: ExitInfo, containerId: string, name: string, tty: boolean, io: SessionIo): Promise<void> {
  if ((exit.code === 137 || exit.code === 143) && !io.closed.aborted) {
    const why = await containerGoing(engine, containerId, name);
    if (why) io.stderr.write(`${tty ? '\r\n' : ''}skiff-core: your session ended: ${why}${tty ? '\r\n' : '\n'}`);
  }
}

/**
 * The bytes leave the daemon: the client gets the connection, the daemon keeps the record and
 * the control. A failed hand-over ends the exec (its client never got it).
 */
async function handOver(
  deps: SessionDeps,
  session: ExecSession,
  route: Route,
  containerId: string,
  tty: boolean,
  io: SessionIo,
  handoff: Handoff,
  handedOff: () => void,
): Promise<ExitInfo> {
  const records = deps.records!;
  const { execId, stream } = session;
  await records.save({ execId, user: route.user, containerId, container: route.container, tty });
  deps.live?.add(execId);
  try {
    // A warm exec was just told its command: that line must reach the engine before the hand-over.
    if (stream.writableLength > 0) await new Promise((r) => stream.once('drain', r));
    const head = detachStream(stream);
    try {
      await handoff.give(stream, head, { session: execId, token: records.token(route.user, execId) });
    } catch (err) {
      const state = await session.inspect().catch(() => undefined);
      if (state?.running && state.pid > 0) await deps.killTree(state.pid, containerId);
      await records.remove(execId);
      throw new SkiffError('SESSION_REFUSED', `cannot hand the session to its client: ${errorMessage(err)}`);
    } finally {
      // Only the daemon's descriptor: the client's copy keeps the connection open.
      stream.destroy();
    }
    handedOff();
    return await controlSession(deps, session, { containerId, name: route.container, tty }, io, handoff);
  } finally {
    deps.live?.delete(execId);
  }
}

/** A client back after a daemon restart, with the token the earlier daemon gave it. */
export async function resumeSession(deps: SessionDeps, user: string, request: ResumeRequest, hello: Hello, io: SessionIo): Promise<ExitInfo> {
  const { records, live } = deps;
  if (!records || !live || !io.handoff) throw new SkiffError('SESSION_REFUSED', 'this daemon cannot take sessions back');
  const record = await records.get(request.session);
  if (!record || record.user !== user || !records.verify(user, request.session, request.token)) {
    throw new SkiffError('SESSION_REFUSED', 'no such session for this account');
  }
  if (live.has(record.execId)) throw new SkiffError('SESSION_REFUSED', 'this session is already attached');
  const exec = deps.engine.execControl(record.execId);
  const state = await exec.inspect().catch(() => undefined);
  if (!state || state.containerId !== record.containerId) {
    await records.remove(record.execId);
    throw new SkiffError('SESSION_REFUSED', 'the session is gone (its container was removed or replaced)');
  }
  live.add(record.execId);
  deps.attached?.(record.container, 1);
  try {
    io.handoff.resumed();
    if (hello.tty && hello.cols && hello.rows) await exec.resize(hello.cols, hello.rows).catch(() => undefined);
    return await controlSession(deps, exec, { containerId: record.containerId, name: record.container, tty: record.tty }, io, io.handoff);
  } finally {
    live.delete(record.execId);
    deps.attached?.(record.container, -1);
  }
}

/** What the daemon still does for a handed-off session, until it ends or the daemon stops. */
async function controlSession(
  deps: SessionDeps,
  exec: ExecControl,
  target: { containerId: string; name: string; tty: boolean },
  io: SessionIo,
  handoff: Handoff,
): Promise<ExitInfo> {
  io.onResize((cols, rows) => {
    exec.resize(cols, rows).catch((err: unknown) => deps.log.debug({ err: errorMessage(err) }, 'Resize failed'));
  });
  forwardSignals(deps, exec, target.containerId, io);
  const outcome = await new Promise<'ended' | 'client-gone' | 'daemon-stopping'>((resolve) => {
    void handoff.done.then(() => resolve('ended'));
    const gone = () => resolve(handoff.daemonStopping.aborted ? 'daemon-stopping' : 'client-gone');
    if (io.closed.aborted) gone();
    io.closed.addEventListener('abort', gone, { once: true });
  });
  // The record stays: the next daemon gives the client its session back, or ends it.
  if (outcome === 'daemon-stopping') return { code: 255 };
  try {
    if (outcome === 'client-gone') {
      const state = await exec.inspect().catch(() => undefined);
      if (state?.running && state.pid > 0) await deps.killTree(state.pid, target.containerId);
      return { code: 255 };
    }
    const exit = await exitStatus(exec);
    await sayWhyKilled(deps.engine, exit, target.containerId, target.name, target.tty, io);
    return exit;
  } finally {
    await deps.records?.remove(exec.execId);
  }
}

/** The output ends when the process exits; the engine records the code a moment later. */
async function exitStatus(exec: ExecControl): Promise<ExitInfo> {
  for (let attempt = 0; attempt < 100; attempt++) {
    const state = await exec.inspect();
    if (!state.running) return { code: state.exitCode ?? 255 };
    await new Promise((r) => setTimeout(r, attempt < 10 ? 5 : 50));
  }
  return { code: 255 };
}

function forwardSignals(deps: SessionDeps, exec: ExecControl, containerId: string, io: SessionIo): void {
  io.onSignal?.((name) => {
    if (!FORWARDED_SIGNALS.has(name)) return;
    void exec
      .inspect()
      .then((state) => (state.running && state.pid > 0 ? deps.signal?.(state.pid, containerId, `SIG${name}` as NodeJS.Signals) : undefined))
      .catch(() => undefined);
  });
}

/** Why the container is stopping within `withinMs`, or undefined if it stays up. */
async function containerGoing(engine: Engine, id: string, name: string, withinMs = 1500): Promise<string | undefined> {
  for (const deadline = Date.now() + withinMs; Date.now() < deadline; await new Promise((r) => setTimeout(r, 100))) {
    const container = await engine.inspectContainer(id).catch(() => null);
    if (container === null) return 'Docker is not answering (restarting?)';
    if (!container?.state.running) return `container ${name} stopped`;
  }
  return undefined;
}

/** What a client may send to the session's process (as OpenSSH's RFC 4254 names them). */
const FORWARDED_SIGNALS = new Set(['HUP', 'INT', 'QUIT', 'TERM', 'KILL', 'USR1', 'USR2', 'ALRM']);

async function relay(deps: SessionDeps, session: ExecSession, containerId: string, tty: boolean, io: SessionIo): Promise<ExitInfo> {
  const { stream } = session;
  io.onResize((cols, rows) => {
    session.resize(cols, rows).catch((err: unknown) => deps.log.debug({ err: errorMessage(err) }, 'Resize failed'));
  });

  forwardSignals(deps, session, containerId, io);

  // Input: pipe() carries backpressure, and ending it half-closes the engine connection, which
  // the engine turns into EOF on the process's stdin. With a TTY the engine would end the
  // output too, so the end of input is not passed on (as sshd does with a pty).
  io.stdin.pipe(stream, { end: !tty });

  // Output: pause the engine connection while the client cannot take more.
  // One drain listener per target: a chunk may hold many frames, each refused while paused.
  const waiting = new Set<Writable>();
  const write = (target: Writable, data: Buffer) => {
    if (!target.write(data) && !waiting.has(target)) {
      waiting.add(target);
      stream.pause();
      target.once('drain', () => {
        waiting.delete(target);
        if (waiting.size === 0) stream.resume();
      });
    }
  };
  if (tty) {
    stream.on('data', (chunk: Buffer) => write(io.stdout, chunk));
  } else {
    const demux = createStdioDemuxer((which, data) => write(which === 'stderr' ? io.stderr : io.stdout, data));
    stream.on('data', (chunk: Buffer) => demux.push(chunk));
  }
  stream.resume();

  const outcome = await new Promise<'ended' | 'client-gone'>((resolve) => {
    stream.once('end', () => resolve('ended'));
    stream.once('close', () => resolve('ended'));
    stream.once('error', () => resolve('ended'));
    if (io.closed.aborted) resolve('client-gone');
    io.closed.addEventListener('abort', () => resolve('client-gone'), { once: true });
  });

  if (outcome === 'client-gone') {
    // The client hung up: nothing may keep running in its name.
    const state = await session.inspect().catch(() => undefined);
    if (state?.running && state.pid > 0) await deps.killTree(state.pid, containerId);
    stream.destroy();
    return { code: 255 };
  }
  return exitStatus(session);
}
