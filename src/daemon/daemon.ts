// The supervisor: keeps the engine converged with the config for the life of the system.
// One loop does all converging (so passes never overlap); config edits, engine events, retries
// and a periodic relist only ask it for another pass.
import { watch, type FSWatcher } from 'node:fs';
import { mkdir, readFile, stat } from 'node:fs/promises';
import { basename, dirname } from 'node:path';
import { DEFAULT_CONFIG_TEXT } from '../config/default-config.js';
import { formatDiagnostic } from '../config/diagnostics.js';
import { loadConfigFile } from '../config/load.js';
import { protectPlainPasswords } from '../config/secrets.js';
import { faultPoint } from '../faults.js';
import type { Config } from '../config/schema.js';
import type { Engine } from '../engine/engine.js';
import { errorMessage, isSkiffError } from '../errors.js';
import { cleanStaleTemps, writeFileAtomic } from '../fs/atomic.js';
import type { Logger } from '../log.js';
import { converge, type ConvergeReport } from '../reconcile/converge.js';
import type { ProgressEvent } from '../reconcile/events.js';
import { LABEL } from '../reconcile/labels.js';
import { controlSocketPath } from './control-protocol.js';
import { startControlServer, type ControlServer } from './control-server.js';
import { observeEngine } from './observe.js';
import { openSessionRecords } from '../session/handoff.js';
import { createSessionServers, type SessionAccount, type SessionHandler } from '../session/session-server.js';
import { accountToolsOnce, syncHostUsers } from '../users/sync.js';
import { createSessionGlue, RESUME_GRACE_MS } from './sessions.js';
import { applyProgress, applyReport, plainDiagnostics, type StatusSnapshot } from './status.js';

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
  let snapshot: StatusSnapshot = {
    daemon: { running: true, pid: process.pid, version: opts.version, startedAt: new Date().toISOString() },
    config: { path: opts.configPath, ok: false, errors: [], warnings: [] },
    engine: { reachable: false },
    reconcile: { state: 'idle' },
    images: [],
    containers: [],
    users: [],
  };
  const subscribers = new Set<(event: 'progress' | 'status', data: unknown) => void>();
  const watchers = new Set<(event: ProgressEvent | undefined) => void>();
  let statusTimer: NodeJS.Timeout | undefined;
  const publish = () => {
    // Coalesce: a pull emits many events; watchers need a few redraws a second, not hundreds.
    statusTimer ??= setTimeout(() => {
      statusTimer = undefined;
      for (const send of subscribers) send('status', snapshot);
    }, 100);
  };
  const setSnapshot = (next: StatusSnapshot) => {
    snapshot = withUsers(next, config, (c) => glue.attached(c), hostUsers);
    publish();
    for (const w of watchers) w(undefined);
  };

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
    snapshot: () => snapshot,
    watch(listener) {
      watchers.add(listener);
      return () => watchers.delete(listener);
    },
    setReadiness(name, readiness) {
      setSnapshot({ ...snapshot, containers: snapshot.containers.map((c) => (c.name === name ? { ...c, readiness } : c)) });
    },
  });
  const sessionServers = createSessionServers(opts.runDir, glue.handler, log, { handoffHelper: records ? opts.handoffHelper : undefined });
  const hostUsers = new Map<string, string>();
  const accountTools = accountToolsOnce();

  /** Host accounts for the configured users, then a session socket for each that exists. */
  async function syncUsers() {
    if (!config) return;
    const results = await syncHostUsers(config, {
      mode: opts.users ?? 'manage',
      createUsers: opts.createUsers ?? false,
      launcherPath: opts.launcherPath ?? '/usr/bin/skiff-core',
      tools: accountTools,
    });
    const accounts: SessionAccount[] = [];
    for (const r of results) {
      for (const change of r.changes) log.info({ user: r.name }, change);
      for (const warning of r.warnings) log.warn({ user: r.name }, warning);
      if (r.account) accounts.push({ name: r.name, ...r.account });
      if (r.problem) {
        if (hostUsers.get(r.name) !== r.problem) {
          // Without an account only OpenSSH logins are impossible; the built-in gateway needs none.
          if (r.account === undefined && r.problem.startsWith('no host account'))
            log.warn(
              { user: r.name, reason: r.problem },
              'User has no host account: OpenSSH logins need one, the built-in SSH server does not',
            );
          else log.error({ user: r.name, reason: r.problem }, 'User cannot log in');
        }
        hostUsers.set(r.name, r.problem);
      } else hostUsers.delete(r.name);
    }
    await sessionServers.update(accounts);
    setSnapshot(snapshot);
  }

  // --- config -------------------------------------------------------------------------------
  let lastConfigError = '';
  async function loadConfig(): Promise<{ ok: boolean; errors: string[] }> {
    const result = await loadConfigFile(opts.configPath);
    const errors = result.diagnostics.filter((d) => d.severity === 'error').map(formatDiagnostic);
    const cfg = {
      path: opts.configPath,
      ok: result.ok,
      errors: plainDiagnostics(result.diagnostics, 'error'),
      warnings: plainDiagnostics(result.diagnostics, 'warning'),
    };
    if (!result.ok) {
      // The last good config stays in force; say what is wrong once, not on every retry.
      const text = errors.join('\n');
      if (text !== lastConfigError) {
        log.error(
          { file: opts.configPath, errors },
          config ? 'Config has errors; keeping the last good config' : 'Config has errors; nothing will be changed until it is fixed',
        );
        lastConfigError = text;
      }
      setSnapshot({
        ...snapshot,
        config: { ...snapshot.config, ...cfg, ...(snapshot.config.loadedAt ? { loadedAt: snapshot.config.loadedAt } : {}) },
      });
      return { ok: false, errors };
    }
    lastConfigError = '';
    for (const w of result.diagnostics) log.warn({ file: opts.configPath }, formatDiagnostic(w));
    config = result.config;
    const exposed = await protectPlainPasswords(opts.configPath, config).catch((err: unknown) => {
      log.error(
        { file: opts.configPath, err: errorMessage(err) },
        'The config holds plain-text passwords and others can read it; cannot change its mode',
      );
      return undefined;
    });
    if (exposed)
      log.warn(
        { file: opts.configPath, users: exposed },
        'The config holds plain-text passwords: made it readable by root only (auth.passwordHash stores none)',
      );
    setSnapshot({ ...snapshot, config: { ...cfg, loadedAt: new Date().toISOString() } });
    log.info(
      { file: opts.configPath, containers: Object.keys(config.containers).length, users: Object.keys(config.users).length },
      'Config loaded',
    );
    return { ok: true, errors: [] };
  }

  // --- the converge loop ----------------------------------------------------------------------
  let wanted = true;
  let wake: (() => void) | undefined;
  const waiters: (() => void)[] = [];
  const request = (why: string) => {
    log.debug({ why }, 'Converge requested');
    wanted = true;
    wake?.();
  };
  let debounceTimer: NodeJS.Timeout | undefined;
  const requestSoon = (why: string) => {
    clearTimeout(debounceTimer);
    debounceTimer = setTimeout(() => request(why), debounceMs);
  };

  const reported = new Map<string, string>();
  function logOutcome(report: ConvergeReport) {
    for (const item of [
      ...report.images.map((i) => ({ key: `image ${i.ref}`, ...i })),
      ...report.containers.map((c) => ({ key: `container ${c.name}`, ...c })),
    ]) {
      const bad = ['failed', 'blocked', 'foreign', 'pending'].includes(item.status);
      const text = bad ? `${item.status}: ${item.message ?? ''}` : '';
      const repeated = reported.get(item.key) === text;
      reported.set(item.key, text);
      // A change is news every time; a problem only when it first appears or changes.
      if (bad && !repeated) log.error({ item: item.key, status: item.status, reason: item.message }, 'Not converged');
      else if (!bad && item.status !== 'unchanged' && item.status !== 'present')
        log.info({ item: item.key, status: item.status, detail: item.message }, 'Converged');
    }
  }

  async function pass(): Promise<boolean> {
    const version = await engine.ping({ signal: stopping.signal });
    if (!snapshot.engine.reachable) log.info({ version: version.version }, 'Docker engine reachable');
    setSnapshot({ ...snapshot, engine: { reachable: true, version: version.version, apiVersion: version.apiVersion } });
    if (!config) return true;
    setSnapshot({ ...snapshot, reconcile: { ...snapshot.reconcile, state: 'running' } });
    const report = await converge(
      config,
      { engine, workDir: opts.workDir },
      {
        signal: stopping.signal,
        startStopped: false,
        ...(opts.readyTimeoutMs ? { readyTimeoutMs: opts.readyTimeoutMs } : {}),
        holdReplace: (name) => {
          const n = glue.attached(name);
          return n > 0 ? `${n} session(s) attached` : undefined;
        },
        onProgress: (event: ProgressEvent) => {
          setSnapshot(applyProgress(snapshot, event));
          for (const send of subscribers) send('progress', event);
          for (const w of watchers) w(event);
        },
      },
    );
    logOutcome(report);
    let next = applyReport(snapshot, report);
    next = { ...next, ...(await observeEngine(engine, config, next)) };
    setSnapshot({ ...next, reconcile: { state: 'idle', lastRunAt: new Date().toISOString(), lastOk: report.ok } });
    await syncUsers();
    return report.ok;
  }

  async function loop() {
    let delay = retry.initialMs;
    while (!stopping.signal.aborted) {
      if (!wanted) {
        await new Promise<void>((resolve) => (wake = resolve));
        wake = undefined;
        continue;
      }
      wanted = false;
      let ok: boolean;
      try {
        ok = await pass();
      } catch (err) {
        if (stopping.signal.aborted) break;
        ok = false;
        if (isSkiffError(err, 'ENGINE_UNREACHABLE')) {
          engineGone(err);
        } else {
          log.error({ err }, 'Converge pass failed');
          setSnapshot({ ...snapshot, reconcile: { ...snapshot.reconcile, lastError: errorMessage(err) } });
        }
      }
      for (const resolve of waiters.splice(0)) resolve();
      if (ok) {
        delay = retry.initialMs;
        continue;
      }
      // Back off, but any new reason to converge (edit, event, reload) cuts the wait short.
      const at = new Date(Date.now() + delay);
      setSnapshot({
        ...snapshot,
        reconcile: { ...snapshot.reconcile, state: 'waiting-retry', lastOk: false, nextRetryAt: at.toISOString() },
      });
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, delay);
        wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      wake = undefined;
      wanted = true;
      delay = Math.min(delay * 2, retry.maxMs);
    }
    setSnapshot({ ...snapshot, reconcile: { ...snapshot.reconcile, state: 'stopped' } });
  }

  // --- engine events --------------------------------------------------------------------------
  function engineGone(err: unknown) {
    if (snapshot.engine.reachable || snapshot.engine.error !== errorMessage(err))
      log.warn({ reason: errorMessage(err) }, 'Docker unavailable; will retry');
    setSnapshot({ ...snapshot, engine: { reachable: false, error: errorMessage(err) } });
  }

  // The event stream is also how the daemon learns at once that the engine went away or came
  // back: an idle daemon would otherwise wait for the periodic relist, and a converge loop backed
  // off after a long outage for up to retry.maxMs.
  async function followEvents() {
    let since: Date | undefined;
    let delay = retry.initialMs;
    let unreachable = false;
    while (!stopping.signal.aborted) {
      try {
        if (unreachable) {
          await engine.ping({ signal: stopping.signal });
          unreachable = false;
          request('Docker answers again');
        }
        for await (const event of engine.events({
          signal: stopping.signal,
          filters: { type: ['container'], label: [`${LABEL.managed}=true`] },
          ...(since ? { since } : {}),
        })) {
          since = event.time;
          delay = retry.initialMs;
          if (event.action.startsWith('exec_')) continue;
          // A removed container is recreated; a stop or crash only changes what status shows.
          requestSoon(`engine event ${event.action} ${event.name ?? event.id}`);
        }
        // The stream ended: the engine restarted or went away. Converge once it answers again.
        requestSoon('engine event stream ended');
      } catch (err) {
        if (stopping.signal.aborted) return;
        log.debug({ reason: errorMessage(err) }, 'Engine event stream failed');
        if (isSkiffError(err, 'ENGINE_UNREACHABLE')) {
          // Asking a missing socket costs nothing: look again every second, not with back-off.
          if (!unreachable) engineGone(err);
          unreachable = true;
          await sleep(ENGINE_POLL_MS, stopping.signal);
          continue;
        }
      }
      await sleep(delay, stopping.signal);
      delay = Math.min(delay * 2, retry.maxMs);
    }
  }

  // --- start ------------------------------------------------------------------------------------
  await loadConfig();
  // Logins can connect (and see "waiting for …") before the first pass has finished.
  await syncUsers().catch((err: unknown) => log.error({ reason: errorMessage(err) }, 'Cannot set up host users'));
  // The sockets are open: clients of sessions an earlier daemon handed off can come back now.
  void glue
    .endUnclaimed(RESUME_GRACE_MS)
    .catch((err: unknown) => log.warn({ err: errorMessage(err) }, 'Cannot check the sessions an earlier daemon left'));
  const loopDone = loop();
  const eventsDone = followEvents();
  const relist = setInterval(() => request('periodic relist'), opts.relistIntervalMs ?? 60_000);

  let watcher: FSWatcher | undefined;
  try {
    // The directory, not the file: editors save by writing a temp file and renaming it over.
    watcher = watch(dirname(opts.configPath), (_type, name) => {
      if (name === null || name.toString() === basename(opts.configPath)) configChanged();
    });
  } catch (err) {
    log.warn({ err }, 'Cannot watch the config directory; edits apply on SIGHUP, reload, or the periodic relist');
  }
  let configTimer: NodeJS.Timeout | undefined;
  function configChanged() {
    clearTimeout(configTimer);
    configTimer = setTimeout(() => {
      void loadConfig().then((r) => r.ok && request('config changed'));
    }, debounceMs);
  }

  const server: ControlServer = await startControlServer(
    controlSocketPath(opts.runDir),
    {
      status: () => snapshot,
      reload: async () => {
        const result = await loadConfig();
        if (result.ok) {
          const done = settled();
          request('reload');
          await done;
        }
        return result;
      },
      subscribe: (send) => {
        subscribers.add(send);
        send('status', snapshot);
        return () => subscribers.delete(send);
      },
    },
    log,
  );
  log.info({ config: opts.configPath, socket: controlSocketPath(opts.runDir) }, 'skiff-core daemon started');
  opts.onReady?.();

  function settled(): Promise<void> {
    return new Promise((resolve) => waiters.push(resolve));
  }

  return {
    status: () => snapshot,
    config: () => config,
    sessions: glue.handler,
    setGatewayStatus: (gateway) => setSnapshot({ ...snapshot, gateway }),
    reload: async () => {
      const result = await loadConfig();
      if (result.ok) request('reload');
      return result;
    },
    settled,
    async stop() {
      clearInterval(relist);
      clearTimeout(debounceTimer);
      clearTimeout(configTimer);
      clearTimeout(statusTimer);
      watcher?.close();
      stopping.abort();
      wake?.();
      await server.close();
      await sessionServers.close();
      glue.close();
      await Promise.allSettled([loopDone, eventsDone]);
      for (const resolve of waiters.splice(0)) resolve();
      log.info('skiff-core daemon stopped; containers keep running');
    },
  };
}

/** First start on a device: the persist layout and a config to work from. */
async function prepareLayout(opts: DaemonOptions, log: Logger): Promise<void> {
  const dir = dirname(opts.configPath);
  // The config may hold passwords: a directory made here is root's alone.
  await mkdir(dir, { recursive: true, mode: 0o700 });
  await mkdir(opts.workDir, { recursive: true });
  const stale = await cleanStaleTemps(dir);
  if (stale.length) log.info({ files: stale }, 'Removed temp files left by an interrupted write');
  if (await exists(opts.configPath)) return;
  if (await exists(opts.defconfigPath)) {
    const text = await readFile(opts.defconfigPath);
    await writeFileAtomic(opts.configPath, text, { exclusive: true, mode: 0o600 }).catch(ignoreExists);
    log.info({ from: opts.defconfigPath, to: opts.configPath }, 'No config: installed the packaged default');
  } else {
    await writeFileAtomic(opts.configPath, DEFAULT_CONFIG_TEXT, { exclusive: true, mode: 0o600 }).catch(ignoreExists);
    log.info({ to: opts.configPath }, 'No config: wrote the built-in default');
  }
  faultPoint('config-written');
}

function ignoreExists(err: NodeJS.ErrnoException): void {
  if (err.code !== 'EEXIST') throw err;
}

async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
}

function withUsers(
  snapshot: StatusSnapshot,
  config: Config | undefined,
  sessions: (container: string) => number,
  problems: Map<string, string>,
): StatusSnapshot {
  if (!config) return snapshot;
  const gatewayServes = (snapshot.gateway?.listening.length ?? 0) > 0;
  const users = Object.entries(config.users).map(([name, u]) => {
    const c = snapshot.containers.find((x) => x.name === u.container);
    const missing = problems.get(name);
    // The built-in SSH server needs no host account: then a missing one is not a problem.
    const problem = gatewayServes && missing?.startsWith('no host account') ? undefined : missing;
    return {
      name,
      container: u.container,
      ready: !problem && Boolean(c?.readiness.startsWith('ready') || c?.readiness === 'running'),
      sessions: sessions(u.container),
      ...(problem ? { problem } : {}),
    };
  });
  return { ...snapshot, users };
}

/** How often an unreachable engine is asked again. */
const ENGINE_POLL_MS = 1000;

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal.addEventListener(
      'abort',
      () => {
        clearTimeout(timer);
        resolve();
      },
      { once: true },
    );
  });
}
