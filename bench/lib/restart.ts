// Measure 9: `-c cat` sessions across `kill -9` of the daemon and a new start. Each session
// echoes a line before the kill, one while no daemon runs, and one after the new start; then its
// stdin ends and its exit status must come back (through the new daemon). A session is lost if
// any line is missing, it hangs, or its exit status is not 0.
import type { ChildProcess } from 'node:child_process';
import { start } from './proc.js';

export interface RestartResult {
  sessions: number;
  lost: number;
  /** Median time for a line to come back while no daemon ran. */
  echoWhileDownMs: number;
  /** From the new daemon's start to the last exit status delivered. */
  exitsAfterRestartMs: number;
  failures: string[];
}

interface Session {
  child: ChildProcess;
  out: string;
  code: Promise<number | null>;
}

function waitFor(check: () => boolean, timeoutMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    const deadline = Date.now() + timeoutMs;
    const tick = () => {
      if (check()) return resolve(true);
      if (Date.now() > deadline) return resolve(false);
      setTimeout(tick, 5);
    };
    tick();
  });
}

export async function measureRestart(o: {
  launcher: string;
  env: NodeJS.ProcessEnv;
  sessions: number;
  /** Kills the running daemon with SIGKILL. */
  kill(): Promise<void>;
  /** Starts a daemon again on the same config and run directory; resolves when it serves. */
  restart(): Promise<void>;
}): Promise<RestartResult> {
  const failures: string[] = [];
  const sessions: Session[] = Array.from({ length: o.sessions }, () => {
    const child = start(o.launcher, ['-c', 'cat'], { stdio: ['pipe', 'pipe', 'pipe'], env: o.env });
    const s: Session = { child, out: '', code: new Promise((r) => child.once('exit', (code) => r(code))) };
    child.stdout!.on('data', (c: Buffer) => (s.out += c.toString()));
    child.stdin!.on('error', () => undefined);
    return s;
  });
  const say = async (line: (i: number) => string, timeoutMs: number): Promise<number[]> => {
    const times: number[] = [];
    await Promise.all(
      sessions.map(async (s, i) => {
        const want = s.out + line(i);
        const t0 = performance.now();
        s.child.stdin!.write(line(i));
        if (await waitFor(() => s.out === want, timeoutMs)) times.push(performance.now() - t0);
        else if (failures.length < 5)
          failures.push(`session ${i}: ${JSON.stringify(line(i))} did not come back (got ${JSON.stringify(s.out.slice(-80))})`);
      }),
    );
    return times;
  };
  try {
    await say((i) => `before ${i}\n`, 30_000);
    await o.kill();
    const down = await say((i) => `while down ${i}\n`, 10_000);
    const restarted = performance.now();
    await o.restart();
    await say((i) => `after ${i}\n`, 30_000);
    for (const s of sessions) s.child.stdin!.end();
    const codes = await Promise.all(
      sessions.map((s) => Promise.race([s.code, new Promise<'hung'>((r) => setTimeout(() => r('hung'), 60_000))])),
    );
    const exitsAfterRestartMs = performance.now() - restarted;
    let lost = 0;
    codes.forEach((code, i) => {
      const s = sessions[i]!;
      const ok = code === 0 && s.out === `before ${i}\nwhile down ${i}\nafter ${i}\n`;
      if (!ok) {
        lost++;
        if (failures.length < 5) failures.push(`session ${i}: exit ${String(code)}, output ${JSON.stringify(s.out.slice(-120))}`);
      }
    });
    const sorted = [...down].sort((a, b) => a - b);
    return {
      sessions: sessions.length,
      lost,
      echoWhileDownMs: sorted[Math.floor(sorted.length / 2)] ?? NaN,
      exitsAfterRestartMs,
      failures,
    };
  } finally {
    for (const s of sessions) s.child.kill('SIGKILL');
  }
}
