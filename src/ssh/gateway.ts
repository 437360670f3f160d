// The built-in SSH server, layered like ContainerSSH: connection (listeners, per-source limits,
// timeouts) → authentication (./auth.ts) → session channel (./channel.ts) → the shared session
// routing, the same handler the login shell's socket uses. No host account is involved: the SSH
// user name is the key under `users:` in the config.
import { readFile } from 'node:fs/promises';
import { createServer, type AddressInfo, type Server as NetServer, type Socket } from 'node:net';
import ssh2, { type AuthContext, type Connection } from 'ssh2';
import { Gateway as GatewaySettings, type Config } from '../config/schema.js';
import { errorMessage } from '../errors.js';
import type { Logger } from '../log.js';
import type { SessionHandler } from '../session/session-server.js';
import { ROOT_AUTHORIZED_KEYS } from '../users/authorized-keys.js';
import { advertisedMethods, createFailureLimiter, credentialsFor, decide, type AuthRequest } from './auth.js';
import { serveSession, type ConnectionInfo } from './channel.js';
import type { HostKey } from './host-key.js';

export interface GatewayOptions {
  hostKey: HostKey;
  /** The config in force; read on every connection, so edits apply to the next login. */
  config(): Config | undefined;
  sessions: SessionHandler;
  log: Logger;
  /** Root's authorized_keys, for users with `copyRootKeys` (tests point it elsewhere). */
  rootKeysPath?: string;
  /** How long every refused authentication takes, whatever the reason (default 400 ms). */
  failureDelayMs?: number;
  now?: () => number;
  /** For the early drop of pre-authentication connections (tests fix it). */
  random?: () => number;
}

/** sshd's MaxStartups rule: whether to drop a new connection when `n` are authenticating. */
export function earlyDrop(n: number, random: () => number): boolean {
  if (n < PREAUTH.start) return false;
  if (n >= PREAUTH.full) return true;
  const p = PREAUTH.rate + ((1 - PREAUTH.rate) * (n - PREAUTH.start)) / (PREAUTH.full - PREAUTH.start);
  return random() < p;
}

export interface ListenFailure {
  address: string;
  reason: string;
}

export interface Gateway {
  /** Listens on exactly these HOST:PORT addresses; connections already open carry on. */
  listen(addresses: readonly string[]): Promise<ListenFailure[]>;
  /** What it listens on, with the ports the system chose for `:0`. */
  addresses(): string[];
  /** Stops listening and closes every connection (their sessions' processes are ended). */
  close(): Promise<void>;
}

const DEFAULTS = GatewaySettings.parse({});
/**
 * Connections still authenticating, like sshd's MaxStartups 16:30:64: from 16 on, new ones are
 * dropped at random (30 %, rising to 100 % at 64), so a flood cannot hold every slot.
 */
export const PREAUTH = { start: 16, rate: 0.3, full: 64, perSource: 8 } as const;
/** The client's SSH version line must arrive within this (RFC 4253 4.2: the first thing sent). */
export const VERSION_TIMEOUT_MS = 10_000;
/** Refused non-"none" attempts one connection may make before it is closed. */
const MAX_ATTEMPTS_PER_CONNECTION = 20;
const OPEN_ADMINISTRATIVELY_PROHIBITED = 1;
/** How long close() waits for sessions to end their processes. */
const CLOSE_GRACE_MS = 5000;

/** HOST:PORT or [V6]:PORT (the config's format) → host and port. */
export function parseListenAddress(address: string): { host: string; port: number } {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(address);
  const port = Number(m?.[3]);
  if (!m || !(port >= 0 && port <= 65535)) throw new Error(`"${address}" is not HOST:PORT`);
  return { host: m[1] ?? m[2] ?? '', port };
}

export function formatAddress(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}

export function startGateway(opts: GatewayOptions): Gateway {
  const { log, hostKey } = opts;
  const now = opts.now ?? Date.now;
  const failureDelayMs = opts.failureDelayMs ?? 400;
  const rootKeysPath = opts.rootKeysPath ?? ROOT_AUTHORIZED_KEYS;
  const settings = () => opts.config()?.gateway ?? DEFAULTS;
  const limiter = createFailureLimiter({ max: () => settings().maxAuthFailures, now });
  const refusalLogged = new Map<string, number>();
  const sessionsPerUser = new Map<string, number>();
  const listeners = new Map<string, NetServer>();
  const sockets = new Set<Socket>();
  const connections = new Set<Connection>();
  let unauthenticated = 0;
  let floodLoggedAt: number | undefined;
  let activeSessions = 0;
  const idleWaiters: (() => void)[] = [];

  const ssh = new ssh2.Server({ hostKeys: [hostKey.privateKey], ident: 'skiff-core' }, onConnection);

  /** Per TCP connection until it authenticates: its slot among the unauthenticated, its timer. */
  const pending = new WeakMap<Socket, () => void>();
  const unauthenticatedBySource = new Map<string, number>();
  const random = opts.random ?? Math.random;

  /** The TCP layer: refuse what is over a limit before any cryptography is spent on it. */
  function onSocket(socket: Socket) {
    const ip = socket.remoteAddress ?? '';
    socket.on('error', () => undefined);
    if (limiter.blocked(ip)) {
      // Said once a minute per source, not for every connection of a flood.
      const last = refusalLogged.get(ip);
      if (last === undefined || now() - last > 60_000) {
        if (refusalLogged.size > 10_000) refusalLogged.clear();
        refusalLogged.set(ip, now());
        log.warn(
          { source: ip, limit: settings().maxAuthFailures },
          'Refusing SSH connections from this address: too many failed logins in the last minute',
        );
      }
      socket.destroy();
      return;
    }
    refusalLogged.delete(ip);
    const fromSource = unauthenticatedBySource.get(ip) ?? 0;
    const dropped = fromSource >= PREAUTH.perSource ? 'from this address' : earlyDrop(unauthenticated, random) ? 'in all' : undefined;
    if (dropped) {
      if (floodLoggedAt === undefined || now() - floodLoggedAt > 60_000) {
        floodLoggedAt = now();
        log.warn(
          { source: ip, fromSource, unauthenticated, limits: PREAUTH },
          `Refusing SSH connections: too many are still authenticating ${dropped}`,
        );
      }
      socket.destroy();
      return;
    }
    sockets.add(socket);
    unauthenticated++;
    unauthenticatedBySource.set(ip, fromSource + 1);
    // The version line comes first and is short: a client that does not end it soon is cut off.
    const versionTimer = setTimeout(() => {
      log.info({ source: ip, ms: VERSION_TIMEOUT_MS }, 'Closed an SSH connection that sent no version line in time');
      socket.destroy();
    }, VERSION_TIMEOUT_MS);
    const onVersionData = (chunk: Buffer) => {
      if (!chunk.includes(0x0a)) return;
      clearTimeout(versionTimer);
      socket.off('data', onVersionData);
    };
    socket.on('data', onVersionData);
    // The whole way to a login (version exchange, key exchange, authentication) has one limit.
    const seconds = settings().authTimeoutSec;
    const timer = setTimeout(() => {
      log.info({ source: ip, seconds }, 'Closed an SSH connection that did not authenticate in time');
      socket.destroy();
    }, seconds * 1000);
    let waiting = true;
    const authenticated = () => {
      if (!waiting) return;
      waiting = false;
      unauthenticated--;
      const left = (unauthenticatedBySource.get(ip) ?? 1) - 1;
      if (left > 0) unauthenticatedBySource.set(ip, left);
      else unauthenticatedBySource.delete(ip);
      clearTimeout(timer);
      clearTimeout(versionTimer);
    };
    pending.set(socket, authenticated);
    socket.once('close', () => {
      sockets.delete(socket);
      authenticated();
    });
    ssh.injectSocket(socket);
  }

  function onConnection(client: Connection) {
    const sock = (client as unknown as { _sock?: Socket })._sock;
    const info: ConnectionInfo = {
      remoteAddress: sock?.remoteAddress ?? '',
      remotePort: sock?.remotePort ?? 0,
      localAddress: sock?.localAddress ?? '',
      localPort: sock?.localPort ?? 0,
    };
    const source = info.remoteAddress;
    const closed = new AbortController();
    connections.add(client);
    let user: string | undefined;
    let rejected = 0;
    let counted = false;
    const triedUsers = new Set<string>();

    client.on('error', (err: Error) => log.debug({ source, err: errorMessage(err) }, 'SSH connection error'));
    client.on('authentication', (ctx: AuthContext) => {
      void authenticate(ctx).catch((err: unknown) => {
        log.error({ source, err }, 'SSH authentication failed unexpectedly');
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
        const rootKeys = spec.auth?.copyRootKeys ? await readFile(rootKeysPath, 'utf8').catch(() => undefined) : undefined;
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
        if (sock) pending.get(sock)?.();
        log.info({ user, source, method: ctx.method }, 'SSH login');
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
        limiter.fail(source);
      }
      // The same answer after the same time, whether the user exists, has that key, or any
      // password; the response never comes sooner than the delay.
      await sleep(Math.max(0, startedAt + failureDelayMs - now()));
      if (closed.signal.aborted) return;
      ctx.reject(methods);
      if (rejected >= MAX_ATTEMPTS_PER_CONNECTION || limiter.blocked(source)) {
        log.info({ source, attempts: rejected }, 'Closed an SSH connection after too many failed attempts');
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
          log.info({ user: who, source, seconds: idleSec }, 'Closed an idle SSH connection');
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
          connection: info,
          connectionClosed: closed.signal,
          activity,
          admit() {
            const limit = settings().maxSessionsPerUser;
            const count = sessionsPerUser.get(who) ?? 0;
            if (count >= limit) {
              log.warn({ user: who, limit }, 'Refused an SSH session: the user has as many as allowed');
              return {
                refused: `${who} already has ${count} sessions, the most allowed (gateway.maxSessionsPerUser); close one and try again`,
              };
            }
            sessionsPerUser.set(who, count + 1);
            activeSessions++;
            let released = false;
            return () => {
              if (released) return;
              released = true;
              if (--activeSessions === 0) for (const wake of idleWaiters.splice(0)) wake();
              const left = (sessionsPerUser.get(who) ?? 1) - 1;
              if (left > 0) sessionsPerUser.set(who, left);
              else sessionsPerUser.delete(who);
            };
          },
        });
      });
      // Forwarding of any kind is a later addition; until then it is refused, and said so.
      client.on('tcpip', (_accept, reject, req) => {
        log.info({ user: who, source, to: `${req.destIP}:${req.destPort}` }, 'Refused TCP forwarding: not available through the gateway');
        refuseChannel(client, reject, 'port forwarding is not available through the skiff-core gateway');
      });
      client.on('openssh.streamlocal', (_accept, reject, req) => {
        log.info({ user: who, source, to: req.socketPath }, 'Refused socket forwarding: not available through the gateway');
        refuseChannel(client, reject, 'socket forwarding is not available through the skiff-core gateway');
      });
      client.on('request', (_accept, reject, name) => {
        log.info({ user: who, source, request: name }, 'Refused remote forwarding: not available through the gateway');
        reject?.();
      });
    });

    client.on('close', () => {
      connections.delete(client);
      closed.abort();
      if (user || rejected === 0) return;
      // A connection that gave up after refused attempts counts once (a client offering wrong
      // keys only asks, it never signs); wrong passwords were counted one by one.
      const failures = counted ? undefined : limiter.fail(source);
      log.info(
        { source, users: [...triedUsers], attempts: rejected, ...(failures ? { failuresLastMinute: failures } : {}) },
        'SSH login failed',
      );
    });
  }

  async function open(address: string): Promise<void> {
    const { host, port } = parseListenAddress(address);
    const server = createServer(onSocket);
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => {
        server.off('error', reject);
        resolve();
      });
    });
    server.on('error', (err) => log.error({ address, err: errorMessage(err) }, 'SSH listener error'));
    listeners.set(address, server);
    const bound = server.address() as AddressInfo;
    log.info({ address: formatAddress(bound.address, bound.port), hostKey: hostKey.fingerprint }, 'SSH gateway listening');
  }

  function shut(address: string): void {
    const server = listeners.get(address);
    if (!server) return;
    listeners.delete(address);
    // Stops accepting at once; its callback would wait for every connection to end.
    server.close();
    log.info({ address }, 'SSH gateway stopped listening');
  }

  return {
    async listen(addresses) {
      const wanted = new Set(addresses);
      for (const address of [...listeners.keys()]) if (!wanted.has(address)) shut(address);
      const failures: ListenFailure[] = [];
      for (const address of wanted) {
        if (listeners.has(address)) continue;
        try {
          await open(address);
        } catch (err) {
          const reason = errorMessage(err);
          log.error({ address, reason }, 'SSH gateway cannot listen');
          failures.push({ address, reason });
        }
      }
      return failures;
    },
    addresses() {
      return [...listeners.values()].map((s) => {
        const a = s.address() as AddressInfo;
        return formatAddress(a.address, a.port);
      });
    },
    async close() {
      for (const address of [...listeners.keys()]) shut(address);
      // Disconnect everyone; their sessions see the client go and end their processes (as on
      // any disconnect). Wait for that, a few seconds at most, before the daemon exits.
      for (const client of connections) client.end();
      if (activeSessions > 0) {
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, CLOSE_GRACE_MS);
          idleWaiters.push(() => {
            clearTimeout(timer);
            resolve();
          });
        });
      }
      for (const socket of sockets) socket.destroy();
    },
  };
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

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
