// The users part of status: each configured user, their container's readiness, their sessions
// and what keeps them from logging in.
import type { Config } from '../config/schema.js';
import type { StatusSnapshot } from './status.js';

export function withUsers(
  snapshot: StatusSnapshot,
  config: Config | undefined,
  sessions: (container: string) => number,
  problems: Map<string, string>,
): StatusSnapshot {
  if (!config) return snapshot;
  const gatewayServes = (snapshot.gateway?.listening.length ?? 0) > 0;
  const users = Object.entries(config.users).map(([name, u]) => {
    const c = snapshot.containers.find((x) => x.name === u.container);
    const missing = problems.get(name);
    // The built-in SSH server needs no host account: then a missing one is not a problem.
    const problem = gatewayServes && missing?.startsWith('no host account') ? undefined : missing;
    return {
      name,
      container: u.container,
      ready: !problem && Boolean(c?.readiness.startsWith('ready') || c?.readiness === 'running'),
      sessions: sessions(u.container),
      ...(problem ? { problem } : {}),
    };
  });
  return { ...snapshot, users };
}
