// Runs one login session in a container: the one place that does this, for both entry paths
// (the session socket and the built-in SSH gateway). It relays the bytes itself for the gateway
// and for clients that cannot take the connection; otherwise it hands the exec over (handed-off.ts).
import type { Duplex, Readable, Writable } from 'node:stream';
import type { Engine, ExecSession } from '../engine/engine.js';
import { createStdioDemuxer } from '../engine/stdio-frames.js';
import { errorMessage, SkiffError } from '../errors.js';
import type { Logger } from '../log.js';
import { exitStatus, forwardSignals, sayWhyKilled } from './exec-control.js';
import type { ExitInfo, Hello, ResumeRequest } from './frames.js';
import { handOver } from './handed-off.js';
import type { SessionRecords } from './handoff.js';
import { agentRequest, agentSocketPath, removeAgentSocket, type AgentRequest, type AgentSocket } from './agent.js';
import { execPlan, type Route } from './route.js';
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
  /** Makes the agent socket of a session the daemon relays (the SSH gateway's). */
  agent?(request: AgentRequest): Promise<void>;
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
  /** Makes the session's agent socket in the container and gives it to the client (agent.ts). */
  agent(request: AgentRequest): Promise<void>;
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
  const agent = await forwardAgent(deps, route, hello, io, containerId, plan.user);

  // Commands without a TTY may take a waiting exec; the next one is started once this session
  // has its own (the engine serves this login first). A forwarded agent needs an exec of its own.
  const warm = hello.tty || agent ? undefined : deps.warm?.take(containerId, plan);
  const refill = () => {
    if (!hello.tty) deps.warm?.refill(containerId, plan);
  };
  let session: ExecSession;
  try {
    session =
      warm ??
      (await deps.engine.execSession(containerId, plan.cmd, {
        tty: hello.tty,
        env: agent ? [...plan.env, `SSH_AUTH_SOCK=${agentSocketPath(agent)}`] : plan.env,
        ...(plan.user ? { user: plan.user } : {}),
        ...(plan.workingDir ? { workingDir: plan.workingDir } : {}),
        ...(hello.cols && hello.rows ? { cols: hello.cols, rows: hello.rows } : {}),
      }));
  } catch (err) {
    if (agent) await removeAgentSocket(agent);
    throw err;
  }
  deps.attached?.(route.container, 1);
  try {
    if (io.handoff && deps.records) return await handOver(deps, session, route, containerId, hello.tty, io, io.handoff, refill, agent);
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

/**
 * The session's agent socket, when the client has an agent and the user may forward it. The
 * login client relays it (handed-off sessions), or the gateway's relay process does. A failure
 * costs the session its agent, not the login.
 */
async function forwardAgent(
  deps: SessionDeps,
  route: Route,
  hello: Hello,
  io: SessionIo,
  containerId: string,
  user: string | undefined,
): Promise<AgentSocket | undefined> {
  if (!hello.agent || !route.agentForwarding) return undefined;
  const handoff = io.handoff && deps.records ? io.handoff : undefined;
  const give = handoff ? (r: AgentRequest) => handoff.agent(r) : io.agent;
  if (!give) return undefined;
  let request: AgentRequest | undefined;
  try {
    request = await agentRequest(deps.engine, containerId, user);
    await give(request);
    return { pid: request.pid, dir: request.dir };
  } catch (err) {
    deps.log.warn({ user: route.user, container: route.container, reason: errorMessage(err) }, 'Agent forwarding failed');
    if (request) await removeAgentSocket(request);
    io.progress('agent forwarding is not available in this session');
    return undefined;
  }
}

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
