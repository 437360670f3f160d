import { resolve } from 'node:path';
import { loadConfigFile } from '../../config/load.js';
import { connectControl, DaemonNotRunning, type ControlClient } from '../../daemon/control-client.js';
import { controlSocketPath } from '../../daemon/control-protocol.js';
import { observeEngine } from '../../daemon/observe.js';
import { unhealthyReasons } from '../../daemon/health.js';
import { plainDiagnostics, type StatusSnapshot } from '../../daemon/status.js';
import { createDockerEngine } from '../../engine/docker-engine.js';
import { errorMessage } from '../../errors.js';
import { HELP_OPTION, parse } from '../args.js';
import type { Command } from '../command.js';
import type { Context } from '../context.js';
import { EXIT, paint, useColor, writeLine } from '../io.js';
import { runDirFrom } from '../paths.js';
import { formatStatus } from '../render/status.js';
import { VERSION } from '../version.js';

export const status: Command = {
  path: ['status'],
  summary: 'Show images, containers and users: what exists, what is in progress, what failed',
  help: `Usage: skiff-core status [--json] [--watch] [--run-dir DIR]

Asks the daemon (root only) for its view: config (loaded when, errors with line and column),
engine, every image (present / pulling n% / building step n/m / failed: reason), container
(state, uptime, readiness, restarts, pending changes, last log lines when it fails) and user.
When the daemon is not running it says so and shows what it can read from the engine.

Exit status: 0 when everything is as configured and healthy; 1 when something is wrong or
missing, with a line for each such row saying why. A container the engine restarted is in a
crash loop until it has stayed up for a minute.

Options:
  --json          print the status as JSON (for scripts)
  --watch         keep redrawing with live progress (Ctrl-C to stop)
  --run-dir DIR   where the daemon's socket is ($SKIFF_CORE_RUN_DIR; default /run/skiff-core)
  -h, --help      show this help`,
  async run(argv, ctx) {
    const { values } = parse(
      argv,
      { ...HELP_OPTION, json: { type: 'boolean' }, watch: { type: 'boolean' }, 'run-dir': { type: 'string' } },
      0,
    );
    if (values.help) {
      writeLine(ctx.io.stdout, this.help);
      return EXIT.ok;
    }
    const socket = controlSocketPath(runDirFrom(values['run-dir'], ctx.io.env));
    let client: ControlClient | undefined;
    try {
      client = await connectControl(socket);
    } catch (err) {
      if (!(err instanceof DaemonNotRunning)) {
        writeLine(ctx.io.stderr, `skiff-core: ${errorMessage(err)}`);
        return EXIT.failure;
      }
      if (!values.json) writeLine(ctx.io.stderr, `skiff-core: ${err.message}; showing what the engine reports.`);
      return report(ctx, await offlineStatus(ctx), Boolean(values.json));
    }
    try {
      if (values.watch) return await watch(ctx, client, Boolean(values.json));
      const snapshot = (await client.call('status')) as StatusSnapshot;
      return report(ctx, snapshot, Boolean(values.json));
    } finally {
      client.close();
    }
  },
};

export const reload: Command = {
  path: ['reload'],
  summary: 'Make the daemon re-read the config now (like SIGHUP) and wait for the result',
  help: `Usage: skiff-core reload [--run-dir DIR]

Asks the daemon to re-read its config file and converge. Prints the config's errors and exits 1
when it is invalid (the daemon keeps the last good config).`,
  async run(argv, ctx) {
    const { values } = parse(argv, { ...HELP_OPTION, 'run-dir': { type: 'string' } }, 0);
    if (values.help) {
      writeLine(ctx.io.stdout, this.help);
      return EXIT.ok;
    }
    let client: ControlClient;
    try {
      client = await connectControl(controlSocketPath(runDirFrom(values['run-dir'], ctx.io.env)));
    } catch (err) {
      writeLine(ctx.io.stderr, `skiff-core: ${errorMessage(err)}`);
      return EXIT.failure;
    }
    try {
      const result = (await client.call('reload')) as { ok: boolean; errors: string[] };
      for (const e of result.errors) writeLine(ctx.io.stderr, e);
      writeLine(ctx.io.stderr, result.ok ? 'reloaded' : 'the config has errors; the daemon keeps the last good one');
      return result.ok ? EXIT.ok : EXIT.failure;
    } finally {
      client.close();
    }
  },
};

/** Prints the snapshot (with `health` added in JSON) and the unhealthy rows; returns the exit code. */
function report(ctx: Context, snapshot: StatusSnapshot, json: boolean): number {
  const reasons = unhealthyReasons(snapshot);
  if (json) writeLine(ctx.io.stdout, JSON.stringify({ ...snapshot, health: { ok: reasons.length === 0, reasons } }, null, 2));
  else {
    const color = paint(useColor(ctx.io, 'stdout'));
    writeLine(ctx.io.stdout, formatStatus(snapshot, color));
    if (reasons.length) writeLine(ctx.io.stdout, `\n${color.red('not healthy:')}\n${reasons.map((r) => `  ${r}`).join('\n')}`);
  }
  return reasons.length ? EXIT.failure : EXIT.ok;
}

async function watch(ctx: Context, client: ControlClient, json: boolean): Promise<number> {
  const color = paint(useColor(ctx.io, 'stdout'));
  const tty = Boolean(ctx.io.stdout.isTTY);
  return new Promise((resolveExit) => {
    client.onEvent((event, data) => {
      if (event !== 'status') return;
      const snapshot = data as StatusSnapshot;
      if (json) writeLine(ctx.io.stdout, JSON.stringify(snapshot));
      else if (tty) ctx.io.stdout.write(`\u001b[H\u001b[2J${formatStatus(snapshot, color)}\n`);
      else writeLine(ctx.io.stdout, `${formatStatus(snapshot, color)}\n`);
    });
    void client.call('subscribe').catch(() => resolveExit(EXIT.failure));
    process.once('SIGINT', () => resolveExit(EXIT.ok));
  });
}

/** What can be known without the daemon: the config as it is on disk, and the engine's view. */
async function offlineStatus(ctx: Context): Promise<StatusSnapshot> {
  const path = resolve(ctx.configPath);
  const loaded = await loadConfigFile(path);
  const snapshot: StatusSnapshot = {
    daemon: { running: false, version: VERSION },
    config: {
      path,
      ok: loaded.ok,
      errors: plainDiagnostics(loaded.diagnostics, 'error'),
      warnings: plainDiagnostics(loaded.diagnostics, 'warning'),
    },
    engine: { reachable: false },
    reconcile: { state: 'stopped' },
    images: [],
    containers: [],
    users: [],
  };
  const engine = createDockerEngine();
  try {
    const version = await engine.ping();
    snapshot.engine = { reachable: true, version: version.version, apiVersion: version.apiVersion };
  } catch (err) {
    snapshot.engine = { reachable: false, error: errorMessage(err) };
    return snapshot;
  }
  if (!loaded.ok) return snapshot;
  const seen = await observeEngine(engine, loaded.config, { images: [], containers: [] });
  snapshot.images = seen.images;
  snapshot.containers = seen.containers;
  snapshot.users = Object.entries(loaded.config.users).map(([name, u]) => {
    const c = seen.containers.find((x) => x.name === u.container);
    return { name, container: u.container, ready: c?.state === 'running', sessions: 0 };
  });
  return snapshot;
}
