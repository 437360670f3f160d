// Where the daemon and its clients keep things. Flags win over environment variables, which win
// over the device defaults, so tests and development never need /mnt/persist or /run.
import { dirname, join, resolve } from 'node:path';
import { DEFAULT_RUN_DIR } from '../daemon/control-protocol.js';

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
