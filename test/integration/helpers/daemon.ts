// Runs `skiff-core daemon` from the built bundle as a separate process, as systemd would.
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import type { StatusSnapshot } from '../../../src/daemon/status.js';
import { CLI, runCli } from './cli.js';
import { waitFor } from './engine.js';

export interface DaemonProcess {
  child: ChildProcess;
  logs(): string;
  status(): Promise<StatusSnapshot>;
  /** Polls status until `check` holds; the last status is in the timeout message. */
  until(check: (s: StatusSnapshot) => boolean, what: string, timeoutMs?: number): Promise<StatusSnapshot>;
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

export interface DaemonPaths {
  config: string;
  runDir: string;
  defconfig: string;
  workDir: string;
}

/** The daemon's files under `base`, as a device lays them out. */
export function daemonPaths(base: string): DaemonPaths {
  return {
    config: join(base, 'persist', 'config.yaml'),
    runDir: join(base, 'run'),
    defconfig: join(base, 'defconfig.yaml'),
    workDir: join(base, 'persist', 'tmp'),
  };
}

/** `skiff-core daemon`'s arguments for `paths`. */
export function daemonArgs(paths: DaemonPaths): string[] {
  return ['--config', paths.config, 'daemon', '--run-dir', paths.runDir, '--defconfig', paths.defconfig, '--work-dir', paths.workDir];
}

export async function startDaemonProcess(
  paths: DaemonPaths,
  env: NodeJS.ProcessEnv = {},
  extraArgs: string[] = [],
): Promise<DaemonProcess> {
  const args = [...daemonArgs(paths), '--log-level', 'debug', ...extraArgs];
  // lookup: the daemon only reads /etc/passwd; tests must never change this machine's accounts.
  const child = spawn(process.execPath, [CLI, ...args], {
    env: { ...process.env, NO_COLOR: '1', SKIFF_CORE_USERS: 'lookup', ...env },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let logs = '';
  child.stderr!.on('data', (c: Buffer) => (logs += c.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const status = async (): Promise<StatusSnapshot> => {
    const r = await runCli(['--config', paths.config, 'status', '--json', '--run-dir', paths.runDir], { env });
    return JSON.parse(r.stdout) as StatusSnapshot;
  };
  const proc: DaemonProcess = {
    child,
    logs: () => logs,
    status,
    async until(check, what, timeoutMs = 60_000) {
      let last: StatusSnapshot | undefined;
      try {
        return await waitFor(
          async () => {
            last = await status();
            return check(last) ? last : undefined;
          },
          { what, timeoutMs, intervalMs: 300 },
        );
      } catch (err) {
        throw new Error(`${(err as Error).message}\nlast status: ${JSON.stringify(last)}\ndaemon log:\n${logs.slice(-4000)}`, {
          cause: err,
        });
      }
    },
    async stop(signal = 'SIGTERM') {
      if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
      child.kill(signal);
      return exited;
    },
  };
  await proc.until((s) => s.daemon.running, 'the daemon to answer on its control socket', 30_000);
  return proc;
}
