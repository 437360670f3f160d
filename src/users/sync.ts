// Host accounts for every configured user, in one pass: what the daemon does after each
// converge and what `setup` does once. `lookup` only reads /etc/passwd and changes nothing.
import { readFile } from 'node:fs/promises';
import type { Config } from '../config/schema.js';
import { errorMessage } from '../errors.js';
import { detectAccountTools, type AccountTools } from './account-tools.js';
import { removeStaleKeyFiles } from './authorized-keys.js';
import { createCommandRunner } from './command-runner.js';
import { describeHostUserChange, ensureHostUser } from './host-user.js';
import { findPasswdEntry } from './passwd-files.js';

export type UsersMode = 'manage' | 'lookup';

export interface UserSyncOptions {
  mode: UsersMode;
  createUsers: boolean;
  /** The login shell mapped users get: the launcher's absolute path. */
  launcherPath: string;
  /** Reused across passes: detecting the tools probes PATH. */
  tools?: () => Promise<AccountTools>;
}

export interface UserSyncResult {
  name: string;
  /** uid/gid when the account exists (the session socket is handed to it). */
  account?: { uid: number; gid: number };
  /** What changed, one line each, for logs and the setup summary. */
  changes: string[];
  warnings: string[];
  /** Why the user cannot log in yet. */
  problem?: string;
}

export function accountToolsOnce(): () => Promise<AccountTools> {
  let tools: Promise<AccountTools> | undefined;
  return () => (tools ??= detectAccountTools({ runner: createCommandRunner() }));
}

export async function syncHostUsers(config: Config, options: UserSyncOptions): Promise<UserSyncResult[]> {
  const results: UserSyncResult[] = [];
  const passwd = options.mode === 'lookup' ? await readFile('/etc/passwd', 'utf8').catch(() => '') : '';
  const tools = options.tools ?? accountToolsOnce();
  // One at a time: the account tools lock and rewrite the same files.
  for (const [name, user] of Object.entries(config.users)) {
    try {
      if (options.mode === 'lookup') {
        const entry = findPasswdEntry(passwd, name);
        results.push(
          entry
            ? { name, account: { uid: entry.uid, gid: entry.gid }, changes: [], warnings: [] }
            : { name, changes: [], warnings: [], problem: 'no host account' },
        );
        continue;
      }
      const outcome = await ensureHostUser(
        { name, shell: options.launcherPath, ...(user.auth ? { auth: user.auth } : {}), createUsers: options.createUsers },
        { tools: await tools() },
      );
      const ready = outcome.state === 'ready' && outcome.uid !== undefined && outcome.gid !== undefined;
      results.push({
        name,
        ...(ready ? { account: { uid: outcome.uid!, gid: outcome.gid! } } : { problem: 'no host account (created with --create-users)' }),
        changes: outcome.changes.map((c) => describeHostUserChange(name, c)),
        warnings: outcome.warnings,
      });
    } catch (err) {
      results.push({ name, changes: [], warnings: [], problem: errorMessage(err) });
    }
  }
  if (options.mode === 'manage') await removeStaleKeyFiles(Object.keys(config.users)).catch(() => undefined);
  return results;
}
