// The gateway as a part of the daemon: where it listens (the command line wins over the config),
// the host key (made on first use), and following config reloads. ssh2 (and the gateway) load
// only once an address to listen on is configured: a daemon without a gateway never holds them.
import type { AgentRelayOptions } from './agent-forward.js';
import { dirname, resolve } from 'node:path';
import type { Config } from '../config/schema.js';
import type { Logger } from '../log.js';
import type { SessionHandler } from '../session/session-server.js';
import type { Gateway } from './gateway.js';
import type { HostKey } from './host-key.js';
import { defaultHostKeyPath } from './host-key-path.js';

export interface GatewayServiceOptions {
  configPath: string;
  /** `--ssh-listen`/SKIFF_CORE_SSH_LISTEN; when non-empty it replaces `gateway.listen`. */
  listen: readonly string[];
  /** `--host-key`; else `gateway.hostKey` (relative to the config's directory), else beside the config. */
  hostKeyPath?: string | undefined;
  daemon: { config(): Config | undefined; sessions: SessionHandler };
  log: Logger;
  /** How often a reloaded config is looked for (default 2 s; 0: only at start). */
  pollMs?: number;
  rootKeysPath?: string;
  failureDelayMs?: number;
  /** Told what the gateway serves whenever that changes (for `status`). */
  onStatus?: (status: GatewayStatus) => void;
  /** How to forward SSH agents (needs the compiled launcher); without it, none is. */
  agentRelay?: AgentRelayOptions;
}

export interface GatewayStatus {
  listening: string[];
  hostKeyFingerprint: string | undefined;
  hostKeyPath: string | undefined;
}

export interface GatewayService {
  status(): GatewayStatus;
  /** Applies the config in force now (the timer does this after reloads). */
  sync(): Promise<void>;
  close(): Promise<void>;
}

export async function startGatewayService(opts: GatewayServiceOptions): Promise<GatewayService> {
  const { log } = opts;
  let gateway: Gateway | undefined;
  let hostKey: HostKey | undefined;
  // null: nothing applied yet (undefined is a daemon without a good config).
  let lastConfig: Config | undefined | null = null;
  let lastListen = '';
  let syncing: Promise<void> = Promise.resolve();
  let stopped = false;

  const listenFor = (config: Config | undefined): string[] => [
    ...new Set(opts.listen.length ? opts.listen : (config?.gateway?.listen ?? [])),
  ];
  const hostKeyPathFor = (config: Config | undefined): string =>
    opts.hostKeyPath
      ? resolve(opts.hostKeyPath)
      : config?.gateway?.hostKey
        ? resolve(dirname(opts.configPath), config.gateway.hostKey)
        : defaultHostKeyPath(opts.configPath);

  async function apply(): Promise<void> {
    const config = opts.daemon.config();
    // Only a reload makes a new config object; a failure is tried again with the next one.
    if (stopped || config === lastConfig) return;
    lastConfig = config;
    if (gateway && hostKeyPathFor(config) !== hostKey?.path) {
      log.warn({ path: hostKeyPathFor(config), inUse: hostKey?.path }, 'gateway.hostKey changed; the new key is used after a restart');
    }
    const listen = listenFor(config);
    const key = listen.join(',');
    if (key === lastListen || (listen.length === 0 && !gateway)) return;
    if (!gateway) {
      const [{ startGateway }, { loadOrCreateHostKey }] = await Promise.all([import('./gateway.js'), import('./host-key.js')]);
      const path = hostKeyPathFor(config);
      hostKey = await loadOrCreateHostKey(path, log);
      log.info(
        { path, type: hostKey.type, fingerprint: hostKey.fingerprint },
        hostKey.created ? 'SSH host key created' : 'SSH host key loaded',
      );
      gateway = startGateway({
        hostKey,
        config: () => opts.daemon.config(),
        sessions: opts.daemon.sessions,
        log,
        ...(opts.rootKeysPath ? { rootKeysPath: opts.rootKeysPath } : {}),
        ...(opts.failureDelayMs !== undefined ? { failureDelayMs: opts.failureDelayMs } : {}),
        ...(opts.agentRelay ? { agentRelay: opts.agentRelay } : {}),
      });
    }
    lastListen = key;
    // A failed address is logged by the gateway and tried again when the listen set changes.
    await gateway.listen(listen);
    opts.onStatus?.(status());
  }

  function status(): GatewayStatus {
    return { listening: gateway?.addresses() ?? [], hostKeyFingerprint: hostKey?.fingerprint, hostKeyPath: hostKey?.path };
  }

  const sync = () => {
    syncing = syncing.then(apply).catch((err: unknown) => {
      // No host key means no gateway; the daemon's other work goes on.
      log.error({ err }, 'SSH gateway cannot start');
    });
    return syncing;
  };

  await sync();
  const pollMs = opts.pollMs ?? 2000;
  const timer = pollMs > 0 ? setInterval(() => void sync(), pollMs) : undefined;
  timer?.unref();

  return {
    status,
    sync,
    async close() {
      stopped = true;
      clearInterval(timer);
      await syncing;
      await gateway?.close();
    },
  };
}
