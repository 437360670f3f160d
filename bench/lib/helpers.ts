// Small helpers the measures share: environments, checks, users to log in as, byte pumps and the
// CPU time of what a command made the daemon and dockerd do.
import type { ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { followCpu, MB, procCpu, type TimedResult } from './proc.js';
import { round } from './stats.js';

// --- helpers ------------------------------------------------------------------------------------
export function cleanEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (k === 'NODE_OPTIONS' || k.startsWith('npm_')) continue;
    env[k] = v;
  }
  return { ...env, ...extra };
}

export function check(r: TimedResult, what: string, expectOut?: string): void {
  if (r.code !== 0) throw new Error(`${what}: exit ${r.code ?? r.signal}; stderr: ${r.stderr.trim().slice(-1000)}`);
  if (expectOut !== undefined && r.stdout.toString() !== expectOut) {
    throw new Error(`${what}: stdout ${JSON.stringify(r.stdout.toString().slice(0, 200))}, expected ${JSON.stringify(expectOut)}`);
  }
}

export function pickUsers(count: number): string[] {
  const names = readFileSync('/etc/passwd', 'utf8')
    .split('\n')
    .map((l) => l.split(':')[0] ?? '')
    .filter((n) => /^[a-z_][a-z0-9_-]*$/.test(n) && n.length <= 32);
  const preferred = ['root', 'daemon', 'bin', 'sys', 'sync', 'games', 'man', 'lp', 'mail', 'news'];
  const ordered = [...preferred.filter((n) => names.includes(n)), ...names.filter((n) => !preferred.includes(n))];
  if (ordered[0] !== 'root') throw new Error('/etc/passwd has no root entry');
  return ordered.slice(0, count);
}

export function mb(bytes: number): number {
  return round(bytes / MB, 1);
}

export function zeros(total: number): (stdin: NodeJS.WritableStream) => void {
  const buf = Buffer.alloc(1024 * 1024);
  return (stdin) => {
    let left = total;
    const pump = () => {
      while (left > 0) {
        const n = Math.min(left, buf.length);
        left -= n;
        if (!stdin.write(n === buf.length ? buf : buf.subarray(0, n))) {
          stdin.once('drain', pump);
          return;
        }
      }
      stdin.end();
    };
    pump();
  };
}

/** dockerd's pid (for its memory and CPU), when this machine runs the engine. */
export function dockerdPid(): number | undefined {
  try {
    const pid = Number(readFileSync('/var/run/docker.pid', 'utf8').trim());
    return pid > 0 && procCpu(pid) !== undefined ? pid : undefined;
  } catch {
    return undefined;
  }
}

export interface CpuUse {
  /** The client process (login shell or docker CLI), CPU seconds. */
  client: number;
  daemon: number;
  dockerd: number;
}

/** Runs `run`, following the CPU time of its child, the daemon and dockerd. */
export async function withCpu(
  daemonPid: number,
  run: (onSpawn: (c: ChildProcess) => void) => Promise<TimedResult>,
): Promise<{ r: TimedResult; cpu: CpuUse }> {
  const engine = dockerdPid();
  const d0 = procCpu(daemonPid) ?? 0;
  const e0 = engine ? (procCpu(engine) ?? 0) : 0;
  let follower: { stop(): number } | undefined;
  const r = await run((c) => {
    if (c.pid !== undefined) follower = followCpu(c.pid, 50);
  });
  const client = follower?.stop() ?? 0;
  return {
    r,
    cpu: { client, daemon: (procCpu(daemonPid) ?? d0) - d0, dockerd: engine ? (procCpu(engine) ?? e0) - e0 : Number.NaN },
  };
}
