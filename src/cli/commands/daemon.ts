import { spawn } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { checkListenAddress } from '../../config/checks.js';
import { startDaemon } from '../../daemon/daemon.js';
import { createDockerEngine } from '../../engine/docker-engine.js';
import { createLogger, LOG_LEVELS, type LogLevel, type Logger } from '../../log.js';
import { envFlag, HELP_OPTION, parse, UsageError } from '../args.js';
import type { Command } from '../command.js';
import { VERSION } from '../version.js';
import { EXIT, writeLine } from '../io.js';
import { defconfigFrom, launcherFrom, runDirFrom, usersModeFrom, workDirFrom } from '../paths.js';

export const daemon: Command = {
  path: ['daemon'],
  summary: 'Keep the engine converged with the config for the life of the system',
  help: `Usage: skiff-core daemon [--work-dir DIR] [--run-dir DIR] [--defconfig FILE] [--log-level LEVEL]
                        [--ssh-listen HOST:PORT] [--host-key FILE]

Runs in the foreground (systemd starts it after Docker). On first start it creates the config's
directory and a work dir, and installs the default config if there is none. Then it converges on
start, when the config file changes (editors that save by renaming are seen), on SIGHUP or
"skiff-core reload", on engine events, and every minute as a safety net. An invalid edit changes
nothing: the last good config stays in force and "skiff-core status" shows the error. Docker being
down is waited out. SIGTERM stops the daemon; containers keep running.

Options:
  --work-dir DIR     builds and clones ($SKIFF_CORE_WORK_DIR; default: tmp/ beside the config)
  --run-dir DIR      control socket directory ($SKIFF_CORE_RUN_DIR; default /run/skiff-core)
  --defconfig FILE   config installed when none exists ($SKIFF_CORE_DEFCONFIG;
                     default /opt/skiff/coreenv/defconfig.yaml, else the built-in default)
  --log-level LEVEL  ${LOG_LEVELS.join(', ')} (default info; $SKIFF_CORE_LOG_LEVEL)
  --ready-timeout S  how long a container may take to boot (default 120)
  --create-users     create missing host users ($SKIFF_CORE_CREATE_USERS)
  --users MODE       manage: create/fix host accounts (default); lookup: only read /etc/passwd
                     for the session sockets, change nothing ($SKIFF_CORE_USERS)
  --launcher PATH    login shell given to mapped users (default /usr/bin/skiff-core;
                     $SKIFF_CORE_LAUNCHER)
  --ssh-listen ADDR  serve SSH itself on HOST:PORT (e.g. 0.0.0.0:2222; repeat or separate with
                     commas; $SKIFF_CORE_SSH_LISTEN). Replaces the config's gateway.listen, which
                     is followed across reloads otherwise. Users log in with their configured
                     keys and need no host account.
  --host-key FILE    the gateway's host key, created on first start with mode 600
                     ($SKIFF_CORE_SSH_HOST_KEY; default gateway.hostKey, else
                     ssh_host_ed25519_key beside the config)
  -h, --help         show this help`,
  async run(argv, ctx) {
    const { values } = parse(
      argv,
      {
        ...HELP_OPTION,
        'work-dir': { type: 'string' },
        'run-dir': { type: 'string' },
        defconfig: { type: 'string' },
        'log-level': { type: 'string' },
        'ready-timeout': { type: 'string' },
        'create-users': { type: 'boolean' },
        users: { type: 'string' },
        launcher: { type: 'string' },
        'ssh-listen': { type: 'string', multiple: true },
        'host-key': { type: 'string' },
      },
      0,
    );
    if (values.help) {
      writeLine(ctx.io.stdout, this.help);
      return EXIT.ok;
    }
    const level = (values['log-level'] ?? ctx.io.env.SKIFF_CORE_LOG_LEVEL ?? 'info') as LogLevel;
    if (!LOG_LEVELS.includes(level)) throw new UsageError(`--log-level must be one of ${LOG_LEVELS.join(', ')}`);
    const readyTimeout = values['ready-timeout'] === undefined ? undefined : Number(values['ready-timeout']);
    if (readyTimeout !== undefined && !(readyTimeout > 0)) throw new UsageError('--ready-timeout takes a number of seconds');
    const log = createLogger({ level, stream: ctx.io.stderr });
    const users = usersModeFrom(values.users, ctx.io.env);
    const launcherPath = launcherFrom(values.launcher, ctx.io.env);

    const sshListen = (values['ssh-listen'] ?? [ctx.io.env.SKIFF_CORE_SSH_LISTEN ?? ''])
      .flatMap((v) => v.split(','))
      .map((v) => v.trim())
      .filter((v) => v !== '');
    for (const address of sshListen) {
      const problem = checkListenAddress(address);
      if (problem) throw new UsageError(`--ssh-listen: ${problem}`);
    }
    const hostKey = values['host-key'] ?? ctx.io.env.SKIFF_CORE_SSH_HOST_KEY;

    const configPath = resolve(ctx.configPath);
    const runDir = runDirFrom(values['run-dir'], ctx.io.env);
    const helper = handoffHelper(ctx.io.env, log);
    const d = await startDaemon({
      configPath,
      workDir: workDirFrom(values['work-dir'], ctx.io.env, configPath),
      runDir,
      defconfigPath: defconfigFrom(values.defconfig, ctx.io.env),
      engine: createDockerEngine({ log }),
      log,
      version: VERSION,
      ...(readyTimeout ? { readyTimeoutMs: readyTimeout * 1000 } : {}),
      onReady: () => notifySystemd(ctx.io.env, log),
      users,
      createUsers: values['create-users'] ?? envFlag(ctx.io.env.SKIFF_CORE_CREATE_USERS),
      launcherPath,
      ...helper,
    });
    // The built-in SSH server: idle until an address is given here or in gateway.listen. It
    // follows the config in force (looked at every 2 s), so a reload that changes gateway.listen
    // opens and closes listeners. Loaded here, not at the top: other commands never need ssh2.
    const { startGatewayService } = await import('../../ssh/service.js');
    const gateway = await startGatewayService({
      configPath,
      listen: sshListen,
      hostKeyPath: hostKey,
      daemon: d,
      log,
      ...(helper.handoffHelper ? { agentRelay: { launcher: helper.handoffHelper, runDir } } : {}),
      onStatus: (s) =>
        d.setGatewayStatus({
          listening: s.listening,
          ...(s.hostKeyFingerprint ? { hostKeyFingerprint: s.hostKeyFingerprint } : {}),
          ...(s.hostKeyPath ? { hostKeyPath: s.hostKeyPath } : {}),
        }),
    });

    return new Promise<number>((resolveExit) => {
      const onHup = () => {
        log.info('SIGHUP: reloading the config');
        void d.reload();
      };
      const onStop = (signal: NodeJS.Signals) => {
        log.info({ signal }, 'Stopping');
        process.off('SIGHUP', onHup);
        process.off('SIGTERM', onStop);
        process.off('SIGINT', onStop);
        // New logins stop first; then the daemon (containers keep running).
        void gateway
          .close()
          .then(() => d.stop())
          .then(() => resolveExit(EXIT.ok));
      };
      process.on('SIGHUP', onHup);
      process.on('SIGTERM', onStop);
      process.on('SIGINT', onStop);
    });
  },
};

/**
 * The compiled launcher that passes a session's connection to its client: the one that started
 * this daemon (it says so in SKIFF_CORE_LAUNCHER), or the one built beside the bundle (dist/).
 */
function handoffHelper(env: NodeJS.ProcessEnv, log: Logger): { handoffHelper?: string } {
  const candidates = [env.SKIFF_CORE_LAUNCHER, process.argv[1] ? join(dirname(process.argv[1]), 'skiff-core-launcher') : undefined];
  for (const path of candidates) {
    if (!path) continue;
    try {
      accessSync(path, constants.X_OK);
      return { handoffHelper: path };
    } catch {
      // the next candidate
    }
  }
  log.warn('The compiled launcher is missing: sessions are relayed by the daemon and end when it restarts (install with "make install")');
  return {};
}

/** Type=notify readiness: Node cannot send datagrams, so systemd-notify does it for us. */
function notifySystemd(env: NodeJS.ProcessEnv, log: Logger): void {
  if (!env.NOTIFY_SOCKET) return;
  const child = spawn('systemd-notify', ['--ready', `--pid=${process.pid}`, '--status=converging'], { stdio: 'ignore' });
  child.on('error', (err) => log.warn({ err }, 'systemd-notify failed; systemd will not see readiness'));
}
