// `skiff-core rollback` as the daemon serves it: refused without a valid config or while
// sessions are attached, run one at a time with converge passes, then a pass to settle.
import { DEFAULT_STORAGE, type Config } from '../config/schema.js';
import type { Engine } from '../engine/engine.js';
import { SkiffError } from '../errors.js';
import type { Logger } from '../log.js';
import { spaceGuard } from '../reconcile/disk-space.js';
import type { ProgressEvent } from '../reconcile/events.js';
import { rollbackContainer } from '../reconcile/rollback.js';

export interface RollbackDeps {
  engine: Engine;
  log: Logger;
  config(): Config | undefined;
  /** Sessions attached to a container. */
  attached(name: string): number;
  /** Runs `fn` when no converge pass runs. */
  serialized<T>(fn: () => Promise<T>): Promise<T>;
  signal: AbortSignal;
  onProgress(event: ProgressEvent): void;
  /** Asks for a converge pass afterwards. */
  converge(): void;
}

export function createRollbackHandler(deps: RollbackDeps): (name: string, snapshot: string | undefined) => Promise<{ message: string }> {
  return async (name, snapshot) => {
    const config = deps.config();
    if (!config) throw new SkiffError('USAGE', 'no valid config is loaded; fix it first (skiff-core status says what is wrong)');
    const attached = deps.attached(name);
    if (attached > 0)
      throw new SkiffError('USAGE', `${name} has ${attached} session(s) attached; a rollback would end them: log out first`);
    const outcome = await deps.serialized(() =>
      rollbackContainer(
        { engine: deps.engine, ensureSpace: spaceGuard(deps.engine, (config.storage ?? DEFAULT_STORAGE).minFree) },
        config,
        name,
        snapshot,
        { signal: deps.signal, onProgress: deps.onProgress },
      ),
    );
    deps.log.info({ container: name, detail: outcome.message }, 'Rolled back');
    deps.converge();
    return { message: outcome.message ?? 'rolled back' };
  };
}
