// The supervisor: keeps the engine converged with the config for the life of the system.
// One loop does all converging (so passes never overlap); config edits, engine events, retries
// and a periodic relist only ask it for another pass.
import type { Config } from '../config/schema.js';
import type { Engine } from '../engine/engine.js';
import { errorMessage, isSkiffError } from '../errors.js';
import type { Logger } from '../log.js';
import { converge, type RolledBackUpdate } from '../reconcile/converge.js';
import type { ProgressEvent } from '../reconcile/events.js';
import { openSessionRecords } from '../session/handoff.js';
import { createSessionServers, type SessionHandler } from '../session/session-server.js';
import { createConfigReader, watchConfigFile } from './config-reader.js';
import { controlSocketPath } from './control-protocol.js';
import { startControlServer, type ControlServer } from './control-server.js';
import { startConvergeLoop } from './converge-loop.js';
import { followEngine } from './engine-watch.js';
import { prepareLayout } from './layout.js';
import { createDaemonMetrics, type DaemonMetrics } from './metrics.js';
import { observeEngine } from './observe.js';
import { createBackupHandlers } from './backup-request.js';
import { createRollbackHandler } from './rollback-request.js';
import { createOutcomeLog } from './outcome-log.js';
import { createSessionGlue, RESUME_GRACE_MS } from './sessions.js';
import { applyProgress, applyReport, type StatusSnapshot } from './status.js';
import { withUsers } from './status-users.js';
import { createStatusHub } from './status-hub.js';
import { createUserSync } from './user-sync.js';

export interface DaemonOptions {
  configPath: string;
  workDir: string;
  runDir: string;
  /** Copied to configPath when that is missing; the built-in default when this is missing too. */
  defconfigPath: string;
  engine: Engine;
  log: Logger;
  version: string;
  relistIntervalMs?: number;
  retry?: { initialMs: number; maxMs: number };
  debounceMs?: number;
  readyTimeoutMs?: number;
  /** Called once the daemon serves its control socket (systemd readiness). */
  onReady?: () => void;
  /**
   * Host accounts: `manage` creates/fixes them (a device), `lookup` only reads /etc/passwd to
   * find uids for the session sockets (development and tests on a machine that is not ours).
   */
  users?: 'manage' | 'lookup';
  /** Create missing host users (setup --create-users, SKIFF_CORE_CREATE_USERS). */
  createUsers?: boolean;
  /** The login shell given to mapped users: the launcher's absolute path. */
  launcherPath?: string;
  /** The launcher that passes sessions' connections on (see session/handoff.ts); none: relay. */
  handoffHelper?: string;
}

export interface Daemon {
  status(): StatusSnapshot;
  /** The config in force (the last good one), if any. */
  config(): Config | undefined;
  /** Runs a login for a configured user: the same routing for every entry path. */
  sessions: SessionHandler;
  /** Re-read the config now; the result says whether it was taken. */
  reload(): Promise<{ ok: boolean; errors: string[] }>;
  /** What the built-in SSH server reports, shown by status. */
  setGatewayStatus(gateway: StatusSnapshot['gateway']): void;
  /** Resolves when the next converge pass has finished (for tests and `reload`). */
  settled(): Promise<void>;
  stop(): Promise<void>;
}

export async function startDaemon(opts: DaemonOptions): Promise<Daemon> {
  const { engine, log } = opts;
  const retry = opts.retry ?? { initialMs: 1000, maxMs: 60_000 };
  const debounceMs = opts.debounceMs ?? 300;
  const stopping = new AbortController();

  await prepareLayout(opts, log);

  let config: Config | undefined;
  const hub = createStatusHub(
    {
      daemon: { running: true, pid: process.pid, version: opts.version, startedAt: new Date().toISOString() },
      config: { path: opts.configPath, ok: false, errors: [], warnings: [] },
      engine: { reachable: false },
      reconcile: { state: 'idle' },
      images: [],
      containers: [],
      users: [],
    },
    (next) => withUsers(next, config, (c) => glue.attached(c), hostUsers),
  );
  const setSnapshot = (next: StatusSnapshot) => hub.set(next);

  // --- logins ---------------------------------------------------------------------------------
  const records = opts.handoffHelper
    ? await openSessionRecords(opts.runDir).catch((err: unknown) => {
        log.error(
          { err: errorMessage(err), dir: opts.runDir },
          'Cannot keep session records: sessions are relayed by the daemon and end when it stops',
        );
        return undefined;
      })
    : undefined;
  const glue = createSessionGlue({
    engine,
    log,
    ...(records ? { records } : {}),
    config: () => config,
    snapshot: () => hub.current,
    watch: (listener) => hub.watch(listener),
    setReadiness(name, readiness) {
      setSnapshot({ ...hub.current, containers: hub.current.containers.map((c) => (c.name === name ? { ...c, readiness } : c)) });
    },
  });
  const sessionServers = createSessionServers(opts.runDir, glue.handler, log, { handoffHelper: records ? opts.handoffHelper : undefined });
  const users = createUserSync(opts, log, sessionServers);
  const hostUsers = users.problems;
  async function syncUsers() {
    if (!config) return;
    await users.sync(config);
    setSnapshot(hub.current);
  }

  // --- config -------------------------------------------------------------------------------
  const readConfig = createConfigReader(opts.configPath, log);
  async function loadConfig(): Promise<{ ok: boolean; errors: string[] }> {
    const result = await readConfig(config !== undefined);
    if (!result.ok) {
      // The last good config stays in force.
      const loadedAt = hub.current.config.loadedAt;
      setSnapshot({ ...hub.current, config: { ...result.status, ...(loadedAt ? { loadedAt } : {}) } });
      return { ok: false, errors: result.errors };
    }
    config = result.config;
    setSnapshot({ ...hub.current, config: { ...result.status, loadedAt: new Date().toISOString() } });
    await syncMetrics();
    return { ok: true, errors: [] };
  }

  // --- metrics (opt-in) -------------------------------------------------------------------------
  let metrics: DaemonMetrics | undefined;
  async function syncMetrics() {
    const listen = config?.metrics?.listen;
    if (listen && !metrics) metrics = await createDaemonMetrics(() => hub.current, log);
    await metrics?.listen(listen);
  }

  // Converge passes and rollbacks both change containers: one at a time.
  let exclusive: Promise<unknown> = Promise.resolve();
  function serialized<T>(fn: () => Promise<T>): Promise<T> {
    const run = exclusive.then(fn, fn);
    exclusive = run.catch(() => undefined);
    return run;
  }

  // What requests that change containers (rollback, restore) share with converge passes.
  const containerRequests = {
    engine,
    log,
    config: () => config,
    attached: (name: string) => glue.attached(name),
    serialized,
    signal: stopping.signal,
    onProgress: (event: ProgressEvent) => {
      setSnapshot(applyProgress(hub.current, event));
      hub.progress(event);
    },
  };
  const rollback = createRollbackHandler({ ...containerRequests, converge: () => request('rollback') });
  const backups = createBackupHandlers({
    ...containerRequests,
    configPath: opts.configPath,
    reloadConfig: loadConfig,
    converge: () => request('restore'),
  });

  // --- the converge loop ----------------------------------------------------------------------
  const request = (why: string) => {
    log.debug({ why }, 'Converge requested');
    loop.request();
  };
  let debounceTimer: NodeJS.Timeout | undefined;
  const requestSoon = (why: string) => {
    clearTimeout(debounceTimer);
    debounceTimer = setTimeout(() => request(why), debounceMs);
  };

  const logOutcome = createOutcomeLog(log);
  // Updates the health gate undid: not retried every back-off (see converge.ts); reload forgets them.
  const rolledBack = new Map<string, RolledBackUpdate>();

  async function pass(): Promise<boolean> {
    const version = await engine.ping({ signal: stopping.signal });
    if (!hub.current.engine.reachable) log.info({ version: version.version }, 'Docker engine reachable');
    setSnapshot({ ...hub.current, engine: { reachable: true, version: version.version, apiVersion: version.apiVersion } });
    if (!config) return true;
    setSnapshot({ ...hub.current, reconcile: { ...hub.current.reconcile, state: 'running' } });
    const started = performance.now();
    const report = await converge(
      config,
      { engine, workDir: opts.workDir },
      {
        signal: stopping.signal,
        rolledBack,
        startStopped: false,
        ...(opts.readyTimeoutMs ? { readyTimeoutMs: opts.readyTimeoutMs } : {}),
        holdReplace: (name) => {
          const n = glue.attached(name);
          return n > 0 ? `${n} session(s) attached` : undefined;
        },
        onProgress: (event: ProgressEvent) => {
          setSnapshot(applyProgress(hub.current, event));
          hub.progress(event);
        },
      },
    );
    metrics?.passDone((performance.now() - started) / 1000, report);
    logOutcome(report);
    let next = applyReport(hub.current, report);
    next = { ...next, ...(await observeEngine(engine, config, next)) };
    setSnapshot({ ...next, reconcile: { state: 'idle', lastRunAt: new Date().toISOString(), lastOk: report.ok } });
    await syncUsers();
    return report.ok;
  }

  // --- engine events --------------------------------------------------------------------------
  function engineGone(err: unknown) {
    if (hub.current.engine.reachable || hub.current.engine.error !== errorMessage(err))
      log.warn({ reason: errorMessage(err) }, 'Docker unavailable; will retry');
    setSnapshot({ ...hub.current, engine: { reachable: false, error: errorMessage(err) } });
  }

  // --- start ------------------------------------------------------------------------------------
  await loadConfig();
  // Logins can connect (and see "waiting for …") before the first pass has finished.
  await syncUsers().catch((err: unknown) => log.error({ reason: errorMessage(err) }, 'Cannot set up host users'));
  // The sockets are open: clients of sessions an earlier daemon handed off can come back now.
  void glue
    .endUnclaimed(RESUME_GRACE_MS)
    .catch((err: unknown) => log.warn({ err: errorMessage(err) }, 'Cannot check the sessions an earlier daemon left'));
  const loop = startConvergeLoop({
    pass: () => serialized(pass),
    retry,
    signal: stopping.signal,
    onError(err) {
      if (isSkiffError(err, 'ENGINE_UNREACHABLE')) return engineGone(err);
      log.error({ err }, 'Converge pass failed');
      setSnapshot({ ...hub.current, reconcile: { ...hub.current.reconcile, lastError: errorMessage(err) } });
    },
    onRetryAt(at) {
      setSnapshot({
        ...hub.current,
        reconcile: { ...hub.current.reconcile, state: 'waiting-retry', lastOk: false, nextRetryAt: at.toISOString() },
      });
    },
  });
  void loop.done.then(() => setSnapshot({ ...hub.current, reconcile: { ...hub.current.reconcile, state: 'stopped' } }));
  const eventsDone = followEngine({ engine, log, retry, signal: stopping.signal, request, requestSoon, engineGone });
  const relist = setInterval(() => request('periodic relist'), opts.relistIntervalMs ?? 60_000);

  const unwatch = watchConfigFile(opts.configPath, debounceMs, log, () => {
    void loadConfig().then((r) => r.ok && request('config changed'));
  });

  const server: ControlServer = await startControlServer(
    controlSocketPath(opts.runDir),
    {
      status: () => hub.current,
      reload: async () => {
        rolledBack.clear();
        const result = await loadConfig();
        if (result.ok) {
          const done = settled();
          request('reload');
          await done;
        }
        return result;
      },
      subscribe: (send) => hub.subscribe(send),
      rollback,
      backup: backups.backup,
      restore: backups.restore,
    },
    log,
  );
  log.info({ config: opts.configPath, socket: controlSocketPath(opts.runDir) }, 'skiff-core daemon started');
  opts.onReady?.();

  const settled = () => loop.settled();

  return {
    status: () => hub.current,
    config: () => config,
    sessions: glue.handler,
    setGatewayStatus: (gateway) => setSnapshot({ ...hub.current, gateway }),
    reload: async () => {
      rolledBack.clear();
      const result = await loadConfig();
      if (result.ok) request('reload');
      return result;
    },
    settled,
    async stop() {
      clearInterval(relist);
      clearTimeout(debounceTimer);
      unwatch();
      hub.close();
      stopping.abort();
      await server.close();
      await sessionServers.close();
      await metrics?.close();
      glue.close();
      await Promise.allSettled([loop.done, eventsDone]);
      log.info('skiff-core daemon stopped; containers keep running');
    },
  };
}
