// A started exec kept waiting per (container, user), so a command login does not pay for the
// engine creating and starting a process (most of `docker exec`'s time). The waiting process
// is a shell that reads one line from stdin and runs it with `exec`, so the command takes over
// its PID, stdin, stdout, stderr and exit code. Only for sessions without a TTY: a terminal's
// line discipline would echo the line and cap its length.
import { createHash } from 'node:crypto';
import type { Engine, ExecSession } from '../engine/engine.js';
import { stopReading } from '../engine/socket-reading.js';
import type { Logger } from '../log.js';
import type { ExecPlan } from './route.js';

/**
 * Waiting execs kept per (container, user): two, so that commands run back to back (rsync, git,
 * an editor's save) each find one while the next is being started.
 */
export const WARM_PER_KEY = 2;

/** Reads the command line; EOF (the daemon went away) just ends it. */
const WAITER = 'IFS= read -r line || exit 0; eval "$line"';

export interface WarmExecs {
  /** A waiting exec for this plan, already told what to run; undefined if none is ready. */
  take(containerId: string, plan: ExecPlan): ExecSession | undefined;
  /** Start a waiting exec for the next login like this one (in the background). */
  refill(containerId: string, plan: ExecPlan): void;
  close(): void;
}

/** POSIX single quotes: the only character that needs care is the quote itself. */
export function shellQuote(word: string): string {
  return `'${word.replace(/'/g, `'\\''`)}'`;
}

/** The line the waiting shell runs: the client's variables, then the command in its place. */
export function commandLine(plan: ExecPlan): string {
  const exports = plan.clientEnv.map(([k, v]) => `export ${k}=${shellQuote(v)}; `).join('');
  // A newline inside would end the line early: such commands take the ordinary path.
  return `${exports}exec ${plan.cmd.map(shellQuote).join(' ')}\n`;
}

interface Waiting {
  session: ExecSession;
  /** Keeps the connection read while idle, so its end is noticed at once. */
  idle: (chunk: Buffer) => void;
  early: Buffer[];
}

export function createWarmExecs(engine: Engine, log: Logger): WarmExecs {
  const ready = new Map<string, Waiting[]>();
  const starting = new Map<string, number>();
  const failed = new Map<string, number>();

  const keyOf = (containerId: string, plan: ExecPlan) =>
    createHash('sha256')
      .update(JSON.stringify([containerId, plan.user, plan.workingDir, plan.identityEnv]))
      .digest('hex');

  function start(key: string, containerId: string, plan: ExecPlan): void {
    const done = () => {
      const n = (starting.get(key) ?? 1) - 1;
      if (n > 0) starting.set(key, n);
      else starting.delete(key);
    };
    starting.set(key, (starting.get(key) ?? 0) + 1);
    engine
      .execSession(containerId, ['/bin/sh', '-c', WAITER], {
        tty: false,
        env: plan.identityEnv,
        ...(plan.user ? { user: plan.user } : {}),
        ...(plan.workingDir ? { workingDir: plan.workingDir } : {}),
      })
      .then(
        (session) => {
          done();
          const waiting: Waiting = { session, early: [], idle: (chunk) => waiting.early.push(chunk) };
          // Gone while waiting (container stopped or replaced): forget it.
          const forget = () => {
            const list = ready.get(key);
            const at = list?.indexOf(waiting) ?? -1;
            if (list && at >= 0) list.splice(at, 1);
          };
          session.stream.once('end', forget);
          session.stream.once('close', forget);
          session.stream.on('error', () => undefined);
          session.stream.on('data', waiting.idle);
          ready.set(key, [...(ready.get(key) ?? []), waiting]);
        },
        (err: unknown) => {
          done();
          failed.set(key, Date.now() + 60_000);
          log.debug({ err, container: containerId }, 'Cannot keep an exec waiting; logins use the ordinary path');
        },
      );
  }

  return {
    take(containerId, plan) {
      const line = commandLine(plan);
      if (line.indexOf('\n') !== line.length - 1 || line.length > 64 * 1024) return undefined;
      const key = keyOf(containerId, plan);
      let waiting = ready.get(key)?.shift();
      // One that ended while waiting (its container stopped) is skipped.
      while (waiting && (waiting.session.stream.destroyed || waiting.session.stream.readableEnded)) waiting = ready.get(key)?.shift();
      if (!waiting) return undefined;
      const { session } = waiting;
      session.stream.off('data', waiting.idle);
      // Its answer stays unread until the session reads it (or hands it to its client).
      stopReading(session.stream);
      if (waiting.early.length) session.stream.unshift(Buffer.concat(waiting.early));
      session.stream.write(line);
      return session;
    },
    refill(containerId, plan) {
      const key = keyOf(containerId, plan);
      // A container without /bin/sh (or a failing exec) is not retried for a while.
      if ((failed.get(key) ?? 0) > Date.now()) return;
      // All that are missing at once: commands back to back come faster than one exec starts.
      for (let n = (ready.get(key)?.length ?? 0) + (starting.get(key) ?? 0); n < WARM_PER_KEY; n++) start(key, containerId, plan);
    },
    close() {
      // EOF on their stdin ends the waiting shells.
      for (const list of ready.values()) for (const { session } of list) session.stream.end();
      ready.clear();
    },
  };
}
