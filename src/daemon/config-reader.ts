// Reads the config file for the daemon: what status shows of it, its errors said once (not on
// every retry), and a config holding plain-text passwords made root's alone.
import { watch, type FSWatcher } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { formatDiagnostic } from '../config/diagnostics.js';
import { DROP_IN_DIR, loadConfigFile } from '../config/load.js';
import type { Config } from '../config/schema.js';
import { protectPlainPasswords } from '../config/secrets.js';
import { errorMessage } from '../errors.js';
import type { Logger } from '../log.js';
import { plainDiagnostics, type StatusSnapshot } from './status.js';

type ConfigStatus = StatusSnapshot['config'];
export type ConfigRead = { ok: true; config: Config; status: ConfigStatus } | { ok: false; errors: string[]; status: ConfigStatus };

/** `read(hasGoodConfig)`: the second argument only changes what the log says on an error. */
export function createConfigReader(path: string, log: Logger): (hasGoodConfig: boolean) => Promise<ConfigRead> {
  let lastError = '';
  return async (hasGoodConfig) => {
    const result = await loadConfigFile(path);
    const status: ConfigStatus = {
      path,
      ok: result.ok,
      errors: plainDiagnostics(result.diagnostics, 'error'),
      warnings: plainDiagnostics(result.diagnostics, 'warning'),
    };
    if (!result.ok) {
      const errors = result.diagnostics.filter((d) => d.severity === 'error').map(formatDiagnostic);
      const text = errors.join('\n');
      if (text !== lastError) {
        log.error(
          { file: path, errors },
          hasGoodConfig
            ? 'Config has errors; keeping the last good config'
            : 'Config has errors; nothing will be changed until it is fixed',
        );
        lastError = text;
      }
      return { ok: false, errors, status };
    }
    lastError = '';
    for (const w of result.diagnostics) log.warn({ file: path }, formatDiagnostic(w));
    const config = result.config;
    // Any of the files may hold the passwords (a drop-in too): each is made root's alone.
    for (const file of result.files ?? [path]) {
      const exposed = await protectPlainPasswords(file, config).catch((err: unknown) => {
        log.error({ file, err: errorMessage(err) }, 'The config holds plain-text passwords and others can read it; cannot change its mode');
        return undefined;
      });
      if (exposed)
        log.warn(
          { file, users: exposed },
          'The config holds plain-text passwords: made it readable by root only (auth.passwordHash stores none)',
        );
    }
    log.info({ file: path, containers: Object.keys(config.containers).length, users: Object.keys(config.users).length }, 'Config loaded');
    return { ok: true, config, status };
  };
}

/**
 * Calls `onChange` once edits of the file or of its drop-ins (config.d/) settle; returns the
 * function that stops watching.
 */
export function watchConfigFile(path: string, debounceMs: number, log: Logger, onChange: () => void): () => void {
  let timer: NodeJS.Timeout | undefined;
  const changed = () => {
    clearTimeout(timer);
    timer = setTimeout(onChange, debounceMs);
  };
  let dropIns: FSWatcher | undefined;
  // (Re)watch config.d: it may be created, removed or replaced while the daemon runs.
  const watchDropIns = () => {
    dropIns?.close();
    dropIns = undefined;
    try {
      dropIns = watch(join(dirname(path), DROP_IN_DIR), changed);
      dropIns.on('error', () => dropIns?.close());
    } catch {
      // no config.d (yet): the directory watch below sees it appear
    }
  };
  let watcher: FSWatcher | undefined;
  try {
    // The directory, not the file: editors save by writing a temp file and renaming it over.
    watcher = watch(dirname(path), (_type, name) => {
      const changedName = name?.toString();
      if (changedName === DROP_IN_DIR) watchDropIns();
      if (changedName === undefined || changedName === basename(path) || changedName === DROP_IN_DIR) changed();
    });
  } catch (err) {
    log.warn({ err }, 'Cannot watch the config directory; edits apply on SIGHUP, reload, or the periodic relist');
  }
  watchDropIns();
  return () => {
    clearTimeout(timer);
    watcher?.close();
    dropIns?.close();
  };
}
