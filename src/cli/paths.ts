// Where the daemon and its clients keep things. Flags win over environment variables, which win
// over the device defaults, so tests and development never need /mnt/persist or /run.
import { dirname, join, resolve } from 'node:path';
import { DEFAULT_RUN_DIR } from '../daemon/control-protocol.js';
import type { UsersMode } from '../users/sync.js';
import { UsageError } from './args.js';

export const DEFAULT_DEFCONFIG = '/opt/skiff/coreenv/defconfig.yaml';

export function runDirFrom(flag: string | undefined, env: NodeJS.ProcessEnv): string {
  return resolve(flag ?? env.SKIFF_CORE_RUN_DIR ?? DEFAULT_RUN_DIR);
}

export function workDirFrom(flag: string | undefined, env: NodeJS.ProcessEnv, configPath: string): string {
  return resolve(flag ?? env.SKIFF_CORE_WORK_DIR ?? join(dirname(resolve(configPath)), 'tmp'));
}

export function defconfigFrom(flag: string | undefined, env: NodeJS.ProcessEnv): string {
  return resolve(flag ?? env.SKIFF_CORE_DEFCONFIG ?? DEFAULT_DEFCONFIG);
}

/** --users / SKIFF_CORE_USERS: manage host accounts (a device) or only look them up. */
export function usersModeFrom(flag: string | undefined, env: NodeJS.ProcessEnv): UsersMode {
  const mode = flag ?? env.SKIFF_CORE_USERS ?? 'manage';
  if (mode !== 'manage' && mode !== 'lookup') throw new UsageError('--users must be manage or lookup');
  return mode;
}

/** --launcher / SKIFF_CORE_LAUNCHER: the login shell mapped users get. */
export function launcherFrom(flag: string | undefined, env: NodeJS.ProcessEnv): string {
  const path = flag ?? env.SKIFF_CORE_LAUNCHER ?? '/usr/bin/skiff-core';
  if (!path.startsWith('/')) throw new UsageError('--launcher must be an absolute path (it becomes the login shell)');
  return path;
}
