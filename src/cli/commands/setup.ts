import { mkdir } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import type { Config } from '../../config/schema.js';
import { formatDiagnostic } from '../../config/diagnostics.js';
import { loadConfigFile } from '../../config/load.js';
import { createDockerEngine } from '../../engine/docker-engine.js';
import { errorMessage, isSkiffError } from '../../errors.js';
import { converge, type ConvergeReport } from '../../reconcile/converge.js';
import { envFlag, HELP_OPTION, parse, UsageError } from '../args.js';
import type { Command } from '../command.js';
import type { Context } from '../context.js';
import { EXIT, paint, useColor, writeLine } from '../io.js';
import { lineProgress, liveProgress } from '../render/progress.js';
import { launcherFrom, usersModeFrom } from '../paths.js';
import { syncHostUsers, type UserSyncResult, type UsersMode } from '../../users/sync.js';
import { ensureContainerUser } from '../../users/container-user.js';

const SETUP_OPTIONS = {
  ...HELP_OPTION,
  'work-dir': { type: 'string' },
  'create-users': { type: 'boolean' },
  'ready-timeout': { type: 'string' },
  users: { type: 'string' },
  launcher: { type: 'string' },
} as const;

export const setup: Command = {
  path: ['setup'],
  summary: 'Make the engine match the config once: images, containers, then exit',
  help: `Usage: skiff-core setup [--work-dir DIR] [--create-users] [--ready-timeout SECONDS]

Pulls or builds every image, creates every container with exactly the configured options and
starts it, waits until it is ready (systemd: "running"), then prints a summary. A container whose
options or image changed is recreated from a snapshot of itself, so nothing installed in it is
lost. Running setup again with nothing changed changes nothing.

Exit status: 0 when everything is in place, 1 when anything failed (the summary says why).

Options:
  --work-dir DIR          where builds unpack and clone sources ($SKIFF_CORE_WORK_DIR;
                          default: tmp/ beside the config file)
  --create-users          create missing host users ($SKIFF_CORE_CREATE_USERS); existing
                          ones are always fixed (login shell, keys, never the docker group)
  --users MODE            manage (default) or lookup: change no host account ($SKIFF_CORE_USERS)
  --launcher PATH         login shell for mapped users (default /usr/bin/skiff-core)
  --ready-timeout SECONDS how long a container may take to boot (default 120)
  -h, --help              show this help`,
  async run(argv, ctx) {
    const { values } = parse(argv, SETUP_OPTIONS, 0);
    if (values.help) {
      writeLine(ctx.io.stdout, this.help);
      return EXIT.ok;
    }
    const users = usersModeFrom(values.users, ctx.io.env);
    const launcherPath = launcherFrom(values.launcher, ctx.io.env);
    return runConverge(ctx, {
      workDir: values['work-dir'],
      createUsers: values['create-users'] ?? envFlag(ctx.io.env.SKIFF_CORE_CREATE_USERS),
      readyTimeout: values['ready-timeout'],
      adopt: new Set(),
      users,
      launcherPath,
    });
  },
};

export const adopt: Command = {
  path: ['adopt'],
  summary: 'Take over a container made by the Go skiff-core, keeping its files',
  help: `Usage: skiff-core adopt NAME... [--work-dir DIR]

A device upgraded from the Go skiff-core has containers that carry no skiff-core labels; setup
leaves such containers alone. adopt takes over the named ones: it commits each to a snapshot
image, recreates it from that snapshot with the configured options and skiff-core's labels, and
starts it. Everything installed inside is kept; the snapshot stays as a restore point
(docker images skiff-core-snapshot/NAME). Then it converges the rest like setup.

Options:
  --work-dir DIR   as for setup
  -h, --help       show this help`,
  async run(argv, ctx) {
    const { values, positionals } = parse(argv, { ...HELP_OPTION, 'work-dir': { type: 'string' } });
    if (values.help) {
      writeLine(ctx.io.stdout, this.help);
      return EXIT.ok;
    }
    if (positionals.length === 0) throw new UsageError('name the container(s) to adopt');
    return runConverge(ctx, {
      workDir: values['work-dir'],
      createUsers: false,
      adopt: new Set(positionals),
      users: 'lookup',
      launcherPath: '/usr/bin/skiff-core',
    });
  },
};

interface ConvergeCommandOptions {
  workDir: string | undefined;
  createUsers: boolean;
  users: UsersMode;
  launcherPath: string;
  readyTimeout?: string | undefined;
  adopt: ReadonlySet<string>;
}

async function runConverge(ctx: Context, opts: ConvergeCommandOptions): Promise<number> {
  const { io } = ctx;
  const loaded = await loadConfigFile(ctx.configPath);
  for (const d of loaded.diagnostics) writeLine(io.stderr, formatDiagnostic(d));
  if (!loaded.ok) {
    writeLine(io.stderr, `skiff-core: ${ctx.configPath} has errors; nothing was changed. Fix them and run setup again.`);
    return EXIT.failure;
  }
  const config = loaded.config;
  for (const name of opts.adopt) {
    if (!config.containers[name]) throw new UsageError(`"${name}" is not a container in ${ctx.configPath}`);
  }
  let readyTimeoutMs: number | undefined;
  if (opts.readyTimeout !== undefined) {
    const seconds = Number(opts.readyTimeout);
    if (!Number.isFinite(seconds) || seconds <= 0) throw new UsageError('--ready-timeout takes a number of seconds');
    readyTimeoutMs = seconds * 1000;
  }

  const workDir = resolve(opts.workDir ?? io.env.SKIFF_CORE_WORK_DIR ?? join(dirname(resolve(ctx.configPath)), 'tmp'));
  await mkdir(workDir, { recursive: true });

  const view = io.stderr.isTTY && !io.env.NO_COLOR ? liveProgress(io.stderr) : lineProgress((line) => writeLine(io.stderr, line));
  const abort = new AbortController();
  const onSignal = () => abort.abort();
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  let report: ConvergeReport;
  const engine = createDockerEngine();
  try {
    report = await converge(
      config,
      { engine, workDir },
      {
        onProgress: (e) => view.onEvent(e),
        signal: abort.signal,
        adopt: opts.adopt,
        ...(readyTimeoutMs ? { readyTimeoutMs } : {}),
      },
    );
  } catch (err) {
    view.close();
    if (isSkiffError(err, 'ENGINE_UNREACHABLE') || isSkiffError(err, 'CANCELLED')) {
      writeLine(io.stderr, `skiff-core: ${errorMessage(err)}`);
      return EXIT.failure;
    }
    throw err;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
  view.close();
  const users = await syncHostUsers(config, { mode: opts.users, createUsers: opts.createUsers, launcherPath: opts.launcherPath });
  // Container users, where asked for, once their container runs.
  for (const [name, spec] of Object.entries(config.users)) {
    const target = report.containers.find((c) => c.name === spec.container);
    if (!spec.createContainerUser || !spec.containerUser || !target || !GOOD.has(target.status)) continue;
    try {
      const made = await ensureContainerUser(engine, spec.container, {
        user: spec.containerUser,
        ...(spec.containerShell ? { shell: spec.containerShell } : {}),
      });
      if (made.created) writeLine(io.stderr, `user ${name}: created ${made.name} in container ${spec.container}`);
    } catch (err) {
      users.find((u) => u.name === name)!.problem = errorMessage(err);
    }
  }
  for (const u of users) for (const line of [...u.changes, ...u.warnings]) writeLine(io.stderr, `user ${u.name}: ${line}`);
  writeLine(io.stdout, formatSummary(report, config, users, paint(useColor(io, 'stdout'))));
  return report.ok && users.every((u) => !u.problem || opts.users === 'lookup') ? EXIT.ok : EXIT.failure;
}

const GOOD = new Set(['present', 'obtained', 'unchanged', 'created', 'started', 'replaced', 'ready']);

export function formatSummary(report: ConvergeReport, config: Config, users: UserSyncResult[], color: ReturnType<typeof paint>): string {
  const rows: [string, string, string, string][] = [];
  for (const i of report.images) rows.push(['image', i.ref, i.status, i.message ?? '']);
  for (const c of report.containers) rows.push(['container', c.name, c.status, c.message ?? '']);
  const byName = new Map(report.containers.map((c) => [c.name, c]));
  for (const [user, spec] of Object.entries(config.users)) {
    const target = byName.get(spec.container);
    const containerOk = target && GOOD.has(target.status);
    const host = users.find((u) => u.name === user);
    const status = host?.problem ? 'no-login' : containerOk ? 'mapped' : 'waiting';
    const detail = [`→ container ${spec.container}${containerOk ? '' : ` (${target?.status ?? 'missing'})`}`, host?.problem]
      .filter(Boolean)
      .join('; ');
    rows.push(['user', user, status, detail]);
  }
  const w0 = Math.max(4, ...rows.map((r) => r[0].length));
  const w1 = Math.max(4, ...rows.map((r) => r[1].length));
  const w2 = Math.max(6, ...rows.map((r) => r[2].length));
  const lines = [`${'KIND'.padEnd(w0)}  ${'NAME'.padEnd(w1)}  ${'STATUS'.padEnd(w2)}  DETAIL`];
  for (const [kind, name, status, detail] of rows) {
    const [first = '', ...more] = detail.split('\n');
    const paintStatus = GOOD.has(status) || status === 'mapped' ? color.green : color.red;
    lines.push(`${kind.padEnd(w0)}  ${name.padEnd(w1)}  ${paintStatus(status.padEnd(w2))}  ${first}`);
    for (const line of more) lines.push(`${' '.repeat(w0 + w1 + w2 + 6)}${line}`);
  }
  lines.push('', report.ok ? color.green('setup complete') : color.red('setup incomplete: see the rows above'));
  return lines.join('\n');
}
