// Who the gateway lets in, decided before any cryptography is spent: addresses with too many
// failed logins, too many connections still authenticating (from one address, or in all, as
// sshd's MaxStartups), and sessions per user. Plain state and a clock: no sockets, no ssh2.
import { createFailureLimiter } from './auth.js';

/**
 * Connections still authenticating, like sshd's MaxStartups 16:30:64: from 16 on, new ones are
 * dropped at random (30 %, rising to 100 % at 64), so a flood cannot hold every slot.
 */
export const PREAUTH = { start: 16, rate: 0.3, full: 64, perSource: 8 } as const;

/** sshd's MaxStartups rule: whether to drop a new connection when `n` are authenticating. */
export function earlyDrop(n: number, random: () => number): boolean {
  if (n < PREAUTH.start) return false;
  if (n >= PREAUTH.full) return true;
  const p = PREAUTH.rate + ((1 - PREAUTH.rate) * (n - PREAUTH.start)) / (PREAUTH.full - PREAUTH.start);
  return random() < p;
}

export type ConnectionVerdict =
  /** `authenticated()` frees the slot (call it on login or close; twice is harmless). */
  | { admitted: true; authenticated: () => void }
  /** `log` is true once a minute per kind of refusal, so a flood is not logged line by line. */
  | {
      admitted: false;
      why: 'too many failed logins' | 'too many authenticating from this address' | 'too many authenticating in all';
      log: boolean;
    };

export type SessionVerdict = { admitted: true; release: () => void } | { admitted: false; count: number };

export interface Admission {
  connection(source: string): ConnectionVerdict;
  /** A failed login from `source`; returns how many it made in the last minute. */
  failed(source: string): number;
  blocked(source: string): boolean;
  session(user: string, limit: number): SessionVerdict;
  /** Sessions open now. */
  sessions(): number;
  /** Resolves when no session is open. */
  idle(): Promise<void>;
  /** Connections still authenticating, in all. */
  authenticating(): number;
}

export function createAdmission(options: { maxAuthFailures: () => number; now?: () => number; random?: () => number }): Admission {
  const now = options.now ?? Date.now;
  const random = options.random ?? Math.random;
  const limiter = createFailureLimiter({ max: options.maxAuthFailures, now });
  const blockedLoggedAt = new Map<string, number>();
  let floodLoggedAt: number | undefined;
  const bySource = new Map<string, number>();
  let pending = 0;
  const perUser = new Map<string, number>();
  let open = 0;
  const idleWaiters: (() => void)[] = [];

  const minuteSince = (at: number | undefined) => at === undefined || now() - at > 60_000;

  return {
    connection(source) {
      if (limiter.blocked(source)) {
        const log = minuteSince(blockedLoggedAt.get(source));
        if (log) {
          if (blockedLoggedAt.size > 10_000) blockedLoggedAt.clear();
          blockedLoggedAt.set(source, now());
        }
        return { admitted: false, why: 'too many failed logins', log };
      }
      blockedLoggedAt.delete(source);
      const fromSource = bySource.get(source) ?? 0;
      const why =
        fromSource >= PREAUTH.perSource
          ? ('too many authenticating from this address' as const)
          : earlyDrop(pending, random)
            ? ('too many authenticating in all' as const)
            : undefined;
      if (why) {
        const log = minuteSince(floodLoggedAt);
        if (log) floodLoggedAt = now();
        return { admitted: false, why, log };
      }
      pending++;
      bySource.set(source, fromSource + 1);
      let waiting = true;
      return {
        admitted: true,
        authenticated() {
          if (!waiting) return;
          waiting = false;
          pending--;
          const left = (bySource.get(source) ?? 1) - 1;
          if (left > 0) bySource.set(source, left);
          else bySource.delete(source);
        },
      };
    },
    failed: (source) => limiter.fail(source),
    blocked: (source) => limiter.blocked(source),
    session(user, limit) {
      const count = perUser.get(user) ?? 0;
      if (count >= limit) return { admitted: false, count };
      perUser.set(user, count + 1);
      open++;
      let released = false;
      return {
        admitted: true,
        release() {
          if (released) return;
          released = true;
          if (--open === 0) for (const wake of idleWaiters.splice(0)) wake();
          const left = (perUser.get(user) ?? 1) - 1;
          if (left > 0) perUser.set(user, left);
          else perUser.delete(user);
        },
      };
    },
    sessions: () => open,
    idle: () => (open === 0 ? Promise.resolve() : new Promise((resolve) => idleWaiters.push(resolve))),
    authenticating: () => pending,
  };
}
