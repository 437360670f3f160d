// Settings shared by every command: where the config lives, and the process's I/O.
import { DEFAULT_CONFIG_PATH } from '../config/load.js';
import type { Io } from './io.js';

export interface Context {
  io: Io;
  /** From --config, else SKIFF_CORE_CONFIG, else the device path. */
  configPath: string;
  configFromFlag: boolean;
}

export function configPathFrom(flag: string | undefined, env: NodeJS.ProcessEnv): { path: string; fromFlag: boolean } {
  if (flag) return { path: flag, fromFlag: true };
  if (env.SKIFF_CORE_CONFIG) return { path: env.SKIFF_CORE_CONFIG, fromFlag: true };
  return { path: DEFAULT_CONFIG_PATH, fromFlag: false };
}
