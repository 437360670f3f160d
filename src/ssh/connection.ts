// One SSH connection of the gateway: authentication (./auth.ts) with the same delay for every
// refusal, then session channels (./channel.ts), and every kind of forwarding refused with a
// reason. Everything it logs carries the connection's id, source and (once known) user.
import type { AgentRequest } from '../session/agent.js';
import { forwardGatewayAgent } from './agent-forward.js';
import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import type { Socket } from 'node:net';
import type { AuthContext, Connection } from 'ssh2';
import type { Gateway as GatewaySettings } from '../config/schema.js';
import { errorMessage } from '../errors.js';
import { sleep } from '../time.js';
import type { Admission } from './admission.js';
import { advertisedMethods, credentialsFor, decide, type AuthRequest } from './auth.js';
import { serveSession, type ConnectionInfo } from './channel.js';
import type { GatewayOptions } from './gateway.js';

/** Refused non-"none" attempts one connection may make before it is closed. */
const MAX_ATTEMPTS_PER_CONNECTION = 20;
const OPEN_ADMINISTRATIVELY_PROHIBITED = 1;

export interface ConnectionDeps {
  opts: Pick<GatewayOptions, 'config' | 'sessions' | 'log' | 'agentRelay'>;
  rootKeysPath: string;
  failureDelayMs: number;
  now: () => number;
  admission: Admission;
  settings: () => GatewaySettings;
  /** Frees the connection's pre-authentication slot (see gateway.ts's onSocket). */
  authenticated: (socket: Socket) => void;
  /** Open connections, for close(). */
  connections: Set<Connection>;
}

export function serveConnection(client: Connection, deps: ConnectionDeps): void {
  const { opts, admission, settings, now } = deps;
  const sock = (client as unknown as { _sock?: Socket })._sock;
  const info: ConnectionInfo = {
    remoteAddress: sock?.remoteAddress ?? '',
    remotePort: sock?.remotePort ?? 0,
    localAddress: sock?.localAddress ?? '',
    localPort: sock?.localPort ?? 0,
  };
  const source = info.remoteAddress;
  const closed = new AbortController();
  deps.connections.add(client);
  // One id per connection: concurrent logins of one user can be told apart in the log.
  let log = opts.log.child({ conn: randomBytes(4).toString('hex'), source });
  let user: string | undefined;
  let rejected = 0;
  let counted = false;
  const triedUsers = new Set<string>();

  client.on('error', (err: Error) => log.debug({ err: errorMessage(err) }, 'SSH connection error'));
  client.on('authentication', (ctx: AuthContext) => {
    void authenticate(ctx).catch((err: unknown) => {
      log.error({ err }, 'SSH authentication failed unexpectedly');
      ctx.reject(advertisedMethods(opts.config()));
    });
  });

  async function authenticate(ctx: AuthContext) {
    const startedAt = now();
    const config = opts.config();
    const methods = advertisedMethods(config);
    const spec = config && Object.hasOwn(config.users, ctx.username) ? config.users[ctx.username] : undefined;
    let credentials;
    if (spec) {
      // Read per attempt: an edit of the config or of root's keys applies to the next login.
      const rootKeys = spec.auth?.copyRootKeys ? await readFile(deps.rootKeysPath, 'utf8').catch(() => undefined) : undefined;
      const result = credentialsFor(spec, rootKeys);
      if (result.skipped.length)
        log.debug(
          { user: ctx.username, skipped: result.skipped.length },
          'Some keys cannot be used by the gateway (options or an unsupported type)',
        );
      credentials = result.credentials;
    }
    const request = toRequest(ctx);
    const decision = decide(request, credentials);
    if (decision === 'accept') {
      user = ctx.username;
      if (sock) deps.authenticated(sock);
      log = log.child({ user });
      log.info({ method: ctx.method }, 'SSH login');
      ctx.accept();
      return;
    }
    if (decision === 'key-ok') return ctx.accept();
    // "none" is how every client asks for the method list: no failure, no delay.
    if (request.method === 'none') return ctx.reject(methods);

    rejected++;
    if (triedUsers.size < 8) triedUsers.add(ctx.username.slice(0, 64));
    if (request.method === 'password') {
      counted = true;
      admission.failed(source);
    }
    // The same answer after the same time, whether the user exists, has that key, or any
    // password; the response never comes sooner than the delay.
    await sleep(Math.max(0, startedAt + deps.failureDelayMs - now()));
    if (closed.signal.aborted) return;
    ctx.reject(methods);
    if (rejected >= MAX_ATTEMPTS_PER_CONNECTION || admission.blocked(source)) {
      log.info({ attempts: rejected }, 'Closed an SSH connection after too many failed attempts');
      client.end();
    }
  }

  client.on('ready', () => {
    const who = user!;
    let lastActive = now();
    const activity = () => {
      lastActive = now();
    };
    const idleSec = settings().idleTimeoutSec;
    let idleTimer: NodeJS.Timeout | undefined;
    if (idleSec > 0) {
      const check = () => {
        const left = lastActive + idleSec * 1000 - now();
        if (left > 0) {
          idleTimer = setTimeout(check, left);
          return;
        }
        log.info({ seconds: idleSec }, 'Closed an idle SSH connection');
        client.end();
      };
      idleTimer = setTimeout(check, idleSec * 1000);
      closed.signal.addEventListener('abort', () => clearTimeout(idleTimer), { once: true });
    }

    client.on('session', (accept) => {
      activity();
      serveSession(accept(), {
        user: who,
        handler: opts.sessions,
        log,
        ...(opts.agentRelay
          ? { forwardAgent: (request: AgentRequest) => forwardGatewayAgent(client, request, opts.agentRelay!, log) }
          : {}),
        connection: info,
        connectionClosed: closed.signal,
        activity,
        admit() {
          const limit = settings().maxSessionsPerUser;
          const verdict = admission.session(who, limit);
          if (verdict.admitted) return verdict.release;
          log.warn({ limit }, 'Refused an SSH session: the user has as many as allowed');
          return {
            refused: `${who} already has ${verdict.count} sessions, the most allowed (gateway.maxSessionsPerUser); close one and try again`,
          };
        },
      });
    });
    // Forwarding of any kind is a later addition; until then it is refused, and said so.
    client.on('tcpip', (_accept, reject, req) => {
      log.info({ to: `${req.destIP}:${req.destPort}` }, 'Refused TCP forwarding: not available through the gateway');
      refuseChannel(client, reject, 'port forwarding is not available through the skiff-core gateway');
    });
    client.on('openssh.streamlocal', (_accept, reject, req) => {
      log.info({ to: req.socketPath }, 'Refused socket forwarding: not available through the gateway');
      refuseChannel(client, reject, 'socket forwarding is not available through the skiff-core gateway');
    });
    client.on('request', (_accept, reject, name) => {
      log.info({ request: name }, 'Refused remote forwarding: not available through the gateway');
      reject?.();
    });
  });

  client.on('close', () => {
    deps.connections.delete(client);
    closed.abort();
    if (user || rejected === 0) return;
    // A connection that gave up after refused attempts counts once (a client offering wrong
    // keys only asks, it never signs); wrong passwords were counted one by one.
    const failures = counted ? undefined : admission.failed(source);
    log.info({ users: [...triedUsers], attempts: rejected, ...(failures ? { failuresLastMinute: failures } : {}) }, 'SSH login failed');
  });
}

function toRequest(ctx: AuthContext): AuthRequest {
  switch (ctx.method) {
    case 'none':
      return { method: 'none' };
    case 'password':
      return { method: 'password', password: ctx.password };
    case 'publickey':
      return { method: 'publickey', key: ctx.key, signature: ctx.signature, blob: ctx.blob, hashAlgo: ctx.hashAlgo };
    default:
      return { method: ctx.method };
  }
}

/**
 * Refuses a channel open with a reason the client shows ("open failed: administratively
 * prohibited: …", as sshd does with forwarding off). ssh2's own refusal carries no text, so its
 * send is given ours for this one call; with other internals it refuses without the text.
 */
function refuseChannel(client: Connection, reject: () => void, reason: string): void {
  type Proto = { channelOpenFail?: (recipient: number, code: number, description?: string) => void };
  const proto = (client as unknown as { _protocol?: Proto })._protocol;
  const original = proto?.channelOpenFail;
  if (!proto || typeof original !== 'function') return reject();
  proto.channelOpenFail = (recipient) => original.call(proto, recipient, OPEN_ADMINISTRATIVELY_PROHIBITED, reason);
  try {
    reject();
  } finally {
    proto.channelOpenFail = original;
  }
}
