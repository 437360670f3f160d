// The built-in SSH server, layered like ContainerSSH: connection (listeners, per-source limits,
// timeouts) → authentication (./auth.ts) → session channel (./channel.ts) → the shared session
// routing, the same handler the login shell's socket uses. No host account is involved: the SSH
// user name is the key under `users:` in the config.
import type { AgentRelayOptions } from './agent-forward.js';
import { createServer, type AddressInfo, type Server as NetServer, type Socket } from 'node:net';
import ssh2, { type Connection } from 'ssh2';
import { splitListenAddress } from '../config/checks.js';
import { Gateway as GatewaySettings, type Config } from '../config/schema.js';
import { errorMessage } from '../errors.js';
import type { Logger } from '../log.js';
import type { SessionHandler } from '../session/session-server.js';
import { pause } from '../time.js';
import { ROOT_AUTHORIZED_KEYS } from '../users/authorized-keys.js';
import { createAdmission, PREAUTH } from './admission.js';
import { serveConnection } from './connection.js';
import type { HostKey } from './host-key.js';

export { earlyDrop, PREAUTH } from './admission.js';

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
  /** How to forward SSH agents; without it, agent requests are refused. */
  agentRelay?: AgentRelayOptions;
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
/** The client's SSH version line must arrive within this (RFC 4253 4.2: the first thing sent). */
export const VERSION_TIMEOUT_MS = 10_000;
/** How long close() waits for sessions to end their processes. */
const CLOSE_GRACE_MS = 5000;

/** HOST:PORT or [V6]:PORT (the config's format) → host and port. */
export function parseListenAddress(address: string): { host: string; port: number } {
  const at = splitListenAddress(address);
  if (!at) throw new Error(`"${address}" is not HOST:PORT`);
  return { host: at.host, port: at.port };
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
  const admission = createAdmission({
    maxAuthFailures: () => settings().maxAuthFailures,
    now,
    ...(opts.random ? { random: opts.random } : {}),
  });
  const listeners = new Map<string, NetServer>();
  const sockets = new Set<Socket>();
  const connections = new Set<Connection>();
  /** Per TCP connection until it authenticates: frees its slot and stops its timers. */
  const pending = new WeakMap<Socket, () => void>();

  const ssh = new ssh2.Server({ hostKeys: [hostKey.privateKey], ident: 'skiff-core' }, (client: Connection) =>
    serveConnection(client, {
      opts,
      rootKeysPath,
      failureDelayMs,
      now,
      admission,
      settings,
      connections,
      authenticated: (socket) => pending.get(socket)?.(),
    }),
  );

  /** The TCP layer: refuse what is over a limit before any cryptography is spent on it. */
  function onSocket(socket: Socket) {
    const ip = socket.remoteAddress ?? '';
    socket.on('error', () => undefined);
    const verdict = admission.connection(ip);
    if (!verdict.admitted) {
      if (verdict.why === 'too many failed logins') {
        if (verdict.log)
          log.warn(
            { source: ip, limit: settings().maxAuthFailures },
            'Refusing SSH connections from this address: too many failed logins in the last minute',
          );
      } else if (verdict.log) {
        log.warn({ source: ip, unauthenticated: admission.authenticating(), limits: PREAUTH }, `Refusing SSH connections: ${verdict.why}`);
      }
      socket.destroy();
      return;
    }
    sockets.add(socket);
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
    const authenticated = () => {
      verdict.authenticated();
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
      const grace = new AbortController();
      await Promise.race([admission.idle(), pause(CLOSE_GRACE_MS, grace.signal)]);
      grace.abort();
      for (const socket of sockets) socket.destroy();
    },
  };
}
