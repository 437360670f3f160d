// SSH agent forwarding (users' auth.agentForwarding): a socket for one session in the container's
// /tmp, in a directory only the container user can enter, whose connections the login client
// relays to the agent of its SSH connection (launcher/agent.c). The daemon only decides, names
// it and removes it when the session ends; it never connects to it.
import { randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import { open, rmdir, unlink } from 'node:fs/promises';
import type { Engine } from '../engine/engine.js';
import { SkiffError } from '../errors.js';

export interface AgentSocket {
  /** Host PID of the container's init, through whose /proc/PID/root its /tmp is reached. */
  pid: number;
  /** `skiff-agent-<16 hex>`, a directory in the container's /tmp. */
  dir: string;
}

/** What the hand-off helper needs to make the socket (see launcher/agent.c). */
export interface AgentRequest extends AgentSocket {
  uid: number;
  gid: number;
}

/** SSH_AUTH_SOCK inside the container. */
export function agentSocketPath(agent: Pick<AgentSocket, 'dir'>): string {
  return `/tmp/${agent.dir}/agent.sock`;
}

/** The socket's owner and where to put it, for the session of `user` in `containerId`. */
export async function agentRequest(engine: Engine, containerId: string, user: string | undefined): Promise<AgentRequest> {
  const info = await engine.inspectContainer(containerId);
  if (!info?.state.running || info.state.pid <= 0) throw new SkiffError('SESSION_REFUSED', 'the container stopped');
  const ids = await engine.execRun(containerId, ['sh', '-c', 'id -u; id -g'], { ...(user ? { user } : {}), timeoutMs: 10_000 });
  const [uid, gid] = ids.stdout.trim().split('\n').map(Number);
  if (ids.exitCode !== 0 || !Number.isInteger(uid) || !Number.isInteger(gid))
    throw new SkiffError('SESSION_REFUSED', `cannot find the ids of ${user ?? 'the container user'} for agent forwarding`);
  return { pid: info.state.pid, dir: `skiff-agent-${randomBytes(8).toString('hex')}`, uid: uid!, gid: gid! };
}

/**
 * Removes the session's socket and directory. Every step is relative to a directory opened
 * without following links: the container may have put a link where /tmp or the directory was,
 * and through /proc/PID/root a link resolves on the host.
 */
export async function removeAgentSocket(agent: AgentSocket, proc = '/proc'): Promise<void> {
  if (!/^skiff-agent-[0-9a-f]{16}$/.test(agent.dir) || !Number.isInteger(agent.pid) || agent.pid <= 0) return;
  const flags = constants.O_RDONLY | constants.O_DIRECTORY | constants.O_NOFOLLOW;
  const tmp = await open(`${proc}/${agent.pid}/root/tmp`, flags).catch(() => undefined);
  if (!tmp) return;
  try {
    const dir = await open(`/proc/self/fd/${tmp.fd}/${agent.dir}`, flags).catch(() => undefined);
    if (dir) {
      await unlink(`/proc/self/fd/${dir.fd}/agent.sock`).catch(() => undefined);
      await dir.close();
    }
    await rmdir(`/proc/self/fd/${tmp.fd}/${agent.dir}`).catch(() => undefined);
  } finally {
    await tmp.close();
  }
}
