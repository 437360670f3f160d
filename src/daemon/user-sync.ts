// Host accounts for the configured users, then a session socket for each that exists. What keeps
// a user from logging in is remembered (for status) and logged when it first appears or changes.
import type { Config } from '../config/schema.js';
import type { Logger } from '../log.js';
import type { SessionAccount, SessionServers } from '../session/session-server.js';
import { accountToolsOnce, syncHostUsers } from '../users/sync.js';
import type { DaemonOptions } from './daemon.js';

export interface UserSync {
  /** Why a user cannot log in, by user name. */
  readonly problems: Map<string, string>;
  sync(config: Config): Promise<void>;
}

export function createUserSync(
  opts: Pick<DaemonOptions, 'users' | 'createUsers' | 'launcherPath'>,
  log: Logger,
  sessionServers: Pick<SessionServers, 'update'>,
): UserSync {
  const problems = new Map<string, string>();
  const tools = accountToolsOnce();
  return {
    problems,
    async sync(config) {
      const results = await syncHostUsers(config, {
        mode: opts.users ?? 'manage',
        createUsers: opts.createUsers ?? false,
        launcherPath: opts.launcherPath ?? '/usr/bin/skiff-core',
        tools,
      });
      const accounts: SessionAccount[] = [];
      for (const r of results) {
        for (const change of r.changes) log.info({ user: r.name }, change);
        for (const warning of r.warnings) log.warn({ user: r.name }, warning);
        if (r.account) accounts.push({ name: r.name, ...r.account });
        if (!r.problem) {
          problems.delete(r.name);
          continue;
        }
        if (problems.get(r.name) !== r.problem) {
          // Without an account only OpenSSH logins are impossible; the built-in gateway needs none.
          if (r.account === undefined && r.problem.startsWith('no host account'))
            log.warn(
              { user: r.name, reason: r.problem },
              'User has no host account: OpenSSH logins need one, the built-in SSH server does not',
            );
          else log.error({ user: r.name, reason: r.problem }, 'User cannot log in');
        }
        problems.set(r.name, r.problem);
      }
      await sessionServers.update(accounts);
    },
  };
}
