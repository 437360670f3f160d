// Sessions whose bytes do not pass through the daemon: the exec's connection goes to the login
// client (see handoff.ts), the daemon keeps the control until the session ends or the daemon
// stops, and a later daemon takes the session back from a returning client.
import type { ExecControl, ExecSession } from '../engine/engine.js';
import { errorMessage, SkiffError } from '../errors.js';
import { exitStatus, forwardSignals, sayWhyKilled } from './exec-control.js';
import type { ExitInfo, Hello, ResumeRequest } from './frames.js';
import { removeAgentSocket, type AgentSocket } from './agent.js';
import { detachStream } from './handoff.js';
import type { Handoff, SessionDeps, SessionIo } from './relay.js';
import type { Route } from './route.js';

/**
 * The bytes leave the daemon: the client gets the connection, the daemon keeps the record and
 * the control. A failed hand-over ends the exec (its client never got it).
 */
export async function handOver(
  deps: SessionDeps,
  session: ExecSession,
  route: Route,
  containerId: string,
  tty: boolean,
  io: SessionIo,
  handoff: Handoff,
  handedOff: () => void,
  agent?: AgentSocket,
): Promise<ExitInfo> {
  const records = deps.records!;
  const { execId, stream } = session;
  await records.save({ execId, user: route.user, containerId, container: route.container, tty, ...(agent ? { agent } : {}) });
  deps.live?.add(execId);
  try {
    // A warm exec was just told its command: that line must reach the engine before the hand-over.
    if (stream.writableLength > 0) {
      await new Promise((r) => {
        stream.once('drain', r);
        stream.once('close', r);
      });
    }
    const head = detachStream(stream);
    try {
      await handoff.give(stream, head, { session: execId, token: records.token(route.user, execId) });
    } catch (err) {
      const state = await session.inspect().catch(() => undefined);
      if (state?.running && state.pid > 0) await deps.killTree(state.pid, containerId);
      await records.remove(execId);
      if (agent) await removeAgentSocket(agent);
      throw new SkiffError('SESSION_REFUSED', `cannot hand the session to its client: ${errorMessage(err)}`);
    } finally {
      // Only the daemon's descriptor: the client's copy keeps the connection open.
      stream.destroy();
    }
    handedOff();
    return await controlSession(deps, session, { containerId, name: route.container, tty, agent }, io, handoff);
  } finally {
    deps.live?.delete(execId);
  }
}

/** A client back after a daemon restart, with the token the earlier daemon gave it. */
export async function resumeSession(
  deps: SessionDeps,
  user: string,
  request: ResumeRequest,
  hello: Hello,
  io: SessionIo,
): Promise<ExitInfo> {
  const { records, live } = deps;
  if (!records || !live || !io.handoff) throw new SkiffError('SESSION_REFUSED', 'this daemon cannot take sessions back');
  const record = await records.get(request.session);
  if (!record || record.user !== user || !records.verify(user, request.session, request.token)) {
    throw new SkiffError('SESSION_REFUSED', 'no such session for this account');
  }
  if (live.has(record.execId)) throw new SkiffError('SESSION_REFUSED', 'this session is already attached');
  // Claimed before the first await: two clients with one token cannot both take it back.
  live.add(record.execId);
  const exec = deps.engine.execControl(record.execId);
  const state = await exec.inspect().catch(() => undefined);
  if (!state || state.containerId !== record.containerId) {
    live.delete(record.execId);
    await records.remove(record.execId);
    throw new SkiffError('SESSION_REFUSED', 'the session is gone (its container was removed or replaced)');
  }
  deps.attached?.(record.container, 1);
  try {
    io.handoff.resumed();
    if (hello.tty && hello.cols && hello.rows) await exec.resize(hello.cols, hello.rows).catch(() => undefined);
    return await controlSession(
      deps,
      exec,
      { containerId: record.containerId, name: record.container, tty: record.tty, agent: record.agent },
      io,
      io.handoff,
    );
  } finally {
    live.delete(record.execId);
    deps.attached?.(record.container, -1);
  }
}

/** What the daemon still does for a handed-off session, until it ends or the daemon stops. */
async function controlSession(
  deps: SessionDeps,
  exec: ExecControl,
  target: { containerId: string; name: string; tty: boolean; agent?: AgentSocket | undefined },
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
    if (target.agent) await removeAgentSocket(target.agent);
  }
}
