// Agent forwarding for sessions of the built-in SSH server. The container's socket is made and
// served by a small root process of the launcher (skiff-core-agent-relay, launcher/agent.c), as
// for OpenSSH logins; it relays each connection to a root-only socket of the daemon, which opens
// an "auth-agent@openssh.com" channel to the SSH client for it.
import { spawn } from 'node:child_process';
import { mkdir, rm } from 'node:fs/promises';
import { createServer, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import type { Connection, ServerChannel } from 'ssh2';
import { listenPrivate } from '../fs/unix-socket.js';
import type { Logger } from '../log.js';
import { removeAgentSocket, type AgentRequest } from '../session/agent.js';

export interface AgentRelayOptions {
  /** The compiled launcher (run as skiff-core-agent-relay). */
  launcher: string;
  /** The daemon's run directory; the relays' sockets go in agents/ there. */
  runDir: string;
}

const READY_TIMEOUT_MS = 5000;
// What ssh2 uses for the channels it opens itself.
const WINDOW = 2 * 1024 * 1024;
const PACKET = 32 * 1024;

/**
 * Asks the client for an agent channel. ssh2's server opens only forwarding and X11 channels
 * itself; this does the same for the agent through the same internals (pinned by the lockfile,
 * and proved against OpenSSH's client by the gateway test).
 */
export function openAgentChannel(client: Connection): Promise<ServerChannel> {
  const internals = client as unknown as {
    _chanMgr: { add(cb: unknown): number };
    _protocol: { openssh_authAgent(chan: number, window: number, packet: number): void };
  };
  return new Promise((resolve, reject) => {
    const done = Object.assign((err: Error | undefined, channel: ServerChannel) => (err ? reject(err) : resolve(channel)), {
      type: 'auth-agent@openssh.com',
    });
    const local = internals._chanMgr.add(done);
    if (local === -1) return reject(new Error('no free SSH channels'));
    internals._protocol.openssh_authAgent(local, WINDOW, PACKET);
  });
}

/** Starts forwarding for one session; resolves with the function that stops it. */
export async function forwardGatewayAgent(
  client: Connection,
  request: AgentRequest,
  options: AgentRelayOptions,
  log: Logger,
): Promise<() => Promise<void>> {
  const dir = join(options.runDir, 'agents');
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const path = join(dir, `${request.dir}.sock`);
  const server: Server = createServer((conn: Socket) => {
    conn.on('error', () => conn.destroy());
    openAgentChannel(client).then(
      (channel) => {
        channel.on('error', () => channel.destroy());
        conn.pipe(channel).pipe(conn);
        conn.once('close', () => channel.destroy());
        channel.once('close', () => conn.destroy());
      },
      (err: unknown) => {
        log.debug({ err }, 'The SSH client refused an agent channel');
        conn.destroy();
      },
    );
  });
  await rm(path, { force: true });
  await listenPrivate(server, path);
  const relay = spawn(options.launcher, [String(request.pid), String(request.uid), String(request.gid), request.dir, path], {
    argv0: 'skiff-core-agent-relay',
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  const stop = async () => {
    relay.stdin?.end();
    relay.kill();
    await new Promise<void>((resolve) => server.close(() => resolve()));
    await rm(path, { force: true });
    await removeAgentSocket(request);
  };
  try {
    await new Promise<void>((resolve, reject) => {
      let stderr = '';
      const timer = setTimeout(() => reject(new Error('the agent relay did not start')), READY_TIMEOUT_MS);
      relay.stderr!.on('data', (c: Buffer) => (stderr += c.toString()));
      relay.stdout!.once('data', () => {
        clearTimeout(timer);
        resolve();
      });
      relay.once('error', (err) => reject(err));
      relay.once('exit', () => {
        clearTimeout(timer);
        reject(new Error(stderr.trim() || 'the agent relay exited'));
      });
    });
  } catch (err) {
    await stop();
    throw err;
  }
  return stop;
}
