// First start on a device: the persist layout, temp files an interrupted write left, and a config
// to work from (the packaged default, or the built-in one).
import { mkdir, readFile, stat } from 'node:fs/promises';
import { dirname } from 'node:path';
import { DEFAULT_CONFIG_TEXT } from '../config/default-config.js';
import { faultPoint } from '../faults.js';
import { cleanStaleTemps, writeFileAtomic } from '../fs/atomic.js';
import type { Logger } from '../log.js';
import type { DaemonOptions } from './daemon.js';

/** First start on a device: the persist layout and a config to work from. */
export async function prepareLayout(opts: Pick<DaemonOptions, 'configPath' | 'workDir' | 'defconfigPath'>, log: Logger): Promise<void> {
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
