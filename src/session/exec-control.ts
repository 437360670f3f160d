// What the daemon does with a running exec whatever carries its bytes: the exit status,
// forwarded signals, and a word to the user when the container goes away under the session.
import type { Engine, ExecControl } from '../engine/engine.js';
import { poll } from '../time.js';
import type { ExitInfo } from './frames.js';
import type { SessionDeps, SessionIo } from './relay.js';

/** The output ends when the process exits; the engine records the code a moment later. */
export async function exitStatus(exec: ExecControl): Promise<ExitInfo> {
  const code = await poll(
    async () => {
      const state = await exec.inspect();
      return state.running ? undefined : (state.exitCode ?? 255);
    },
    { attempts: 100, intervalMs: (attempt) => (attempt < 10 ? 5 : 50) },
  );
  return { code: code ?? 255 };
}

export function forwardSignals(deps: SessionDeps, exec: ExecControl, containerId: string, io: SessionIo): void {
  io.onSignal?.((name) => {
    if (!FORWARDED_SIGNALS.has(name)) return;
    void exec
      .inspect()
      .then((state) => (state.running && state.pid > 0 ? deps.signal?.(state.pid, containerId, `SIG${name}` as NodeJS.Signals) : undefined))
      .catch(() => undefined);
  });
}

export async function sayWhyKilled(
  engine: Engine,
  exit: ExitInfo,
  containerId: string,
  name: string,
  tty: boolean,
  io: SessionIo,
): Promise<void> {
  if ((exit.code === 137 || exit.code === 143) && !io.closed.aborted) {
    const why = await containerGoing(engine, containerId, name);
    if (why) io.stderr.write(`${tty ? '\r\n' : ''}skiff-core: your session ended: ${why}${tty ? '\r\n' : '\n'}`);
  }
}

/** Why the container is stopping within `withinMs`, or undefined if it stays up. */
function containerGoing(engine: Engine, id: string, name: string, withinMs = 1500): Promise<string | undefined> {
  return poll(
    async () => {
      const container = await engine.inspectContainer(id).catch(() => null);
      if (container === null) return 'Docker is not answering (restarting?)';
      return container?.state.running ? undefined : `container ${name} stopped`;
    },
    { intervalMs: 100, timeoutMs: withinMs },
  );
}

/** What a client may send to the session's process (as OpenSSH's RFC 4254 names them). */
const FORWARDED_SIGNALS = new Set(['HUP', 'INT', 'QUIT', 'TERM', 'KILL', 'USR1', 'USR2', 'ALRM']);
