// `skiff-core backup` and `restore` as the daemon serves them. The daemon does the parts that
// touch containers and the config, one at a time with converge passes; the CLI moves the bytes.
// A restore writes its entry as the drop-in config.d/restored-NAME.yaml: an edit like any
// other, checked merged with the rest before the container is touched, and undone by deleting it.
import { mkdir } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { stringify } from 'yaml';
import { formatDiagnostic } from '../config/diagnostics.js';
import { DROP_IN_DIR, loadConfigFile } from '../config/load.js';
import { DEFAULT_STORAGE, type Config } from '../config/schema.js';
import type { BackupManifest } from '../backup/manifest.js';
import type { Engine } from '../engine/engine.js';
import { errorMessage, SkiffError } from '../errors.js';
import { writeFileAtomic } from '../fs/atomic.js';
import type { Logger } from '../log.js';
import { restoreContainer, snapshotForBackup } from '../reconcile/backup.js';
import { spaceGuard } from '../reconcile/disk-space.js';
import { pruneSnapshots } from '../reconcile/snapshots.js';
import type { ProgressEvent } from '../reconcile/events.js';

export interface BackupDeps {
  engine: Engine;
  log: Logger;
  configPath: string;
  config(): Config | undefined;
  /** Reads the config files again and puts them in force. */
  reloadConfig(): Promise<{ ok: boolean; errors: string[] }>;
  attached(name: string): number;
  serialized<T>(fn: () => Promise<T>): Promise<T>;
  signal: AbortSignal;
  onProgress(event: ProgressEvent): void;
  converge(): void;
}

export interface RestoreRequest {
  name: string;
  /** The loaded snapshot to make the container from. */
  snapshot: string;
  /** The container's config entry, from the backup's manifest. */
  entry: Record<string, unknown>;
}

export function restoredDropIn(configPath: string, name: string): string {
  return join(dirname(configPath), DROP_IN_DIR, `restored-${name}.yaml`);
}

export function createBackupHandlers(deps: BackupDeps) {
  const inForce = () => {
    const config = deps.config();
    if (!config) throw new SkiffError('USAGE', 'no valid config is loaded; fix it first (skiff-core status says what is wrong)');
    return config;
  };
  const containerDeps = (config: Config) => ({
    engine: deps.engine,
    ensureSpace: spaceGuard(deps.engine, (config.storage ?? DEFAULT_STORAGE).minFree),
  });

  async function backup(name: string): Promise<BackupManifest> {
    const config = inForce();
    const manifest = await deps.serialized(async () => {
      const made = await snapshotForBackup(containerDeps(config), name, config.containers[name]);
      // Backups must not pile snapshots up beyond storage.keepSnapshots (the new one is the newest).
      await pruneSnapshots(deps.engine, name, (config.storage ?? DEFAULT_STORAGE).keepSnapshots).catch((err: unknown) =>
        deps.log.warn({ container: name, err: errorMessage(err) }, 'Old snapshots not pruned'),
      );
      return made;
    });
    deps.log.info({ container: name, snapshot: manifest.snapshot }, 'Snapshot taken for a backup');
    return manifest;
  }

  async function restore(request: RestoreRequest): Promise<{ message: string; dropIn: string }> {
    const { name, snapshot, entry } = request;
    const dropIn = restoredDropIn(deps.configPath, name);
    const text =
      `# Written by "skiff-core restore" from a backup of ${name}. Delete this file to go back to the\n` +
      `# entry in the main config (if it has one); edit it like any other part of the config.\n` +
      stringify({ containers: { [name]: entry } });
    inForce();
    const attached = deps.attached(name);
    if (attached > 0) throw new SkiffError('USAGE', `${name} has ${attached} session(s) attached; a restore would end them: log out first`);
    return deps.serialized(async () => {
      // The entry must make a valid config together with everything else, or nothing changes.
      const candidate = await loadConfigFile(deps.configPath, { file: dropIn, input: text });
      if (!candidate.ok) {
        const errors = candidate.diagnostics.filter((d) => d.severity === 'error').map(formatDiagnostic);
        throw new SkiffError('CONFIG_INVALID', `the backup's config entry does not fit this device's config:\n${errors.join('\n')}`);
      }
      const desired = candidate.config.containers[name];
      if (!desired) throw new SkiffError('CONFIG_INVALID', `the merged config has no container ${name}`);
      // The container first: a daemon killed before the drop-in is written leaves a container
      // the config does not name (kept, not removed), never a config entry without its files.
      const outcome = await restoreContainer(containerDeps(candidate.config), name, desired, snapshot, {
        signal: deps.signal,
        onProgress: deps.onProgress,
      });
      await mkdir(dirname(dropIn), { recursive: true, mode: 0o755 });
      await writeFileAtomic(dropIn, text, { mode: 0o600 });
      const reloaded = await deps.reloadConfig();
      if (!reloaded.ok) deps.log.warn({ errors: reloaded.errors }, 'The config changed during the restore and has errors');
      deps.log.info({ container: name, snapshot, dropIn }, 'Restored from a backup');
      deps.converge();
      return { message: outcome.message ?? 'restored', dropIn };
    });
  }

  return { backup, restore };
}
