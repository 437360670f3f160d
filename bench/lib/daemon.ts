// The skiff-core daemon as a child process of the benchmark (`--users lookup`: it only reads
// /etc/passwd to find the uid of each session socket; nothing on the machine changes), its JSON
// log, and its control socket (status polled directly, without starting a CLI process each time).
import type { ChildProcess } from 'node:child_process';
import { connect, type Socket } from 'node:net';
import { join } from 'node:path';
import { writeFile } from 'node:fs/promises';
import { procMemory, sleep, start } from './proc.js';

export interface ContainerDef {
  name: string;
  image: string;
  cmd: string[];
}

export interface UserDef {
  name: string;
  container: string;
  extra?: string;
}

/** A config with these containers (started after create) and user → container mappings. */
export function configYaml(containers: readonly ContainerDef[], users: readonly UserDef[]): string {
  const lines = ['containers:'];
  for (const c of containers) {
    lines.push(`  ${c.name}:`, `    image: ${c.image}`, `    cmd: ${JSON.stringify(c.cmd)}`, '    startAfterCreate: true');
  }
  lines.push('users:');
  for (const u of users) {
    lines.push(`  ${u.name}:`, `    container: ${u.container}`);
    if (u.extra) lines.push(...u.extra.split('\n').map((l) => `    ${l}`));
  }
  return `${lines.join('\n')}\n`;
}

export interface LogEntry {
  level?: string;
  time?: string;
  msg?: string;
  [key: string]: unknown;
}

export interface DaemonHandle {
  child: ChildProcess;
  pid: number;
  spawnedAt: number;
  logs: LogEntry[];
  /** Resolves with the first log entry whose msg is `msg` (already seen, or when it comes). */
  logged(msg: string, timeoutMs?: number): Promise<LogEntry>;
  exited: Promise<number | null>;
  control: ControlConnection;
  rss(): number;
  /** SIGTERM, then SIGKILL after a grace period; resolves when it has exited. */
  stop(): Promise<void>;
}

export interface DaemonPaths {
  bundle: string;
  config: string;
  runDir: string;
  workDir: string;
}

export async function startDaemon(paths: DaemonPaths, env: NodeJS.ProcessEnv, extraArgs: string[] = []): Promise<DaemonHandle> {
  const spawnedAt = Date.now();
  const child = start(
    process.execPath,
    // As the installed launcher runs it (launcher/skiff-core.c: NODE_FLAG, MALLOC_ENTRY).
    [
      '--max-semi-space-size=1',
      paths.bundle,
      '--config',
      paths.config,
      'daemon',
      '--run-dir',
      paths.runDir,
      '--defconfig',
      paths.config,
      '--work-dir',
      paths.workDir,
      '--users',
      'lookup',
      '--log-level',
      'info',
      ...extraArgs,
    ],
    // Its own process group: the benchmark decides when it stops (after the measures, before
    // the containers are removed), not a Ctrl-C sent to the terminal's group.
    { stdio: ['ignore', 'ignore', 'pipe'], env: { ...env, MALLOC_ARENA_MAX: '2' }, detached: true },
  );
  const pid = child.pid;
  if (pid === undefined) throw new Error('cannot start the daemon');
  const logs: LogEntry[] = [];
  const waiters: { msg: string; resolve: (e: LogEntry) => void }[] = [];
  let pending = '';
  let tail = '';
  child.stderr!.on('data', (chunk: Buffer) => {
    pending += chunk.toString();
    let nl: number;
    while ((nl = pending.indexOf('\n')) >= 0) {
      const line = pending.slice(0, nl);
      pending = pending.slice(nl + 1);
      tail = `${tail}${line}\n`.slice(-8000);
      let entry: LogEntry;
      try {
        entry = JSON.parse(line) as LogEntry;
      } catch {
        continue;
      }
      logs.push(entry);
      for (const w of waiters.splice(0)) {
        if (entry.msg === w.msg) w.resolve(entry);
        else waiters.push(w);
      }
    }
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  let gone = false;
  void exited.then(() => (gone = true));

  const control = await connectControl(join(paths.runDir, 'control.sock'), exited, () => tail);
  return {
    child,
    pid,
    spawnedAt,
    logs,
    exited,
    control,
    logged(msg, timeoutMs = 60_000) {
      const seen = logs.find((e) => e.msg === msg);
      if (seen) return Promise.resolve(seen);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(
          () => reject(new Error(`daemon did not log "${msg}" within ${timeoutMs} ms; log tail:\n${tail}`)),
          timeoutMs,
        );
        waiters.push({
          msg,
          resolve: (e) => {
            clearTimeout(timer);
            resolve(e);
          },
        });
      });
    },
    rss: () => procMemory(pid)?.rss ?? 0,
    async stop() {
      control.close();
      if (gone) return;
      process.kill(pid, 'SIGTERM');
      const timer = setTimeout(() => {
        if (!gone) process.kill(pid, 'SIGKILL');
      }, 10_000);
      await exited;
      clearTimeout(timer);
    },
  };
}

export interface StatusSnapshot {
  engine: { reachable: boolean };
  reconcile: { state: string; lastRunAt?: string; lastOk?: boolean; lastError?: string };
  containers: { name: string; state: string; readiness: string; problem?: string }[];
  users: { name: string; container: string; ready: boolean; problem?: string }[];
}

export interface ControlConnection {
  status(): Promise<StatusSnapshot>;
  close(): void;
}

/** Connects to the control socket, retrying every 5 ms until it answers (the daemon is starting). */
async function connectControl(path: string, exited: Promise<unknown>, tail: () => string): Promise<ControlConnection> {
  let dead = false;
  void exited.then(() => (dead = true));
  const deadline = Date.now() + 60_000;
  let socket: Socket | undefined;
  while (!socket) {
    if (dead) throw new Error(`the daemon exited while starting; log tail:\n${tail()}`);
    if (Date.now() > deadline) throw new Error(`the daemon's control socket ${path} did not answer within 60 s; log tail:\n${tail()}`);
    socket = await new Promise<Socket | undefined>((resolve) => {
      const s = connect(path);
      s.once('connect', () => resolve(s));
      s.once('error', () => resolve(undefined));
    });
    if (!socket) await sleep(5);
  }
  const conn = socket;
  let next = 1;
  const waiting = new Map<number, (value: unknown) => void>();
  let pending = '';
  conn.on('data', (chunk: Buffer) => {
    pending += chunk.toString();
    let nl: number;
    while ((nl = pending.indexOf('\n')) >= 0) {
      const line = pending.slice(0, nl);
      pending = pending.slice(nl + 1);
      try {
        const msg = JSON.parse(line) as { id?: number; result?: unknown; error?: { message: string } };
        const w = msg.id !== undefined ? waiting.get(msg.id) : undefined;
        if (w) {
          waiting.delete(msg.id!);
          w(msg.error ? new Error(msg.error.message) : msg.result);
        }
      } catch {
        // not a response line
      }
    }
  });
  conn.on('error', () => undefined);
  conn.on('close', () => {
    for (const w of waiting.values()) w(new Error('the daemon closed the control connection'));
    waiting.clear();
  });
  return {
    async status() {
      const id = next++;
      const value = await new Promise<unknown>((resolve) => {
        waiting.set(id, resolve);
        conn.write(`${JSON.stringify({ id, method: 'status' })}\n`);
      });
      if (value instanceof Error) throw value;
      return value as StatusSnapshot;
    },
    close: () => conn.destroy(),
  };
}

/** Every container running, every user ready, a finished converge pass. */
export function converged(s: StatusSnapshot, containers: readonly string[], users: readonly string[]): boolean {
  if (!s.reconcile.lastRunAt) return false;
  for (const name of containers) if (s.containers.find((c) => c.name === name)?.state !== 'running') return false;
  for (const name of users) if (!s.users.find((u) => u.name === name)?.ready) return false;
  return true;
}

/** Polls the status every `intervalMs` until converged; returns the snapshot that showed it. */
export async function waitConverged(
  d: DaemonHandle,
  containers: readonly string[],
  users: readonly string[],
  timeoutMs = 180_000,
  intervalMs = 20,
): Promise<StatusSnapshot> {
  const deadline = Date.now() + timeoutMs;
  let last: StatusSnapshot | undefined;
  for (;;) {
    last = await d.control.status();
    if (converged(last, containers, users)) return last;
    if (Date.now() > deadline) {
      const problems = last.containers.filter((c) => c.problem).map((c) => `${c.name}: ${c.problem}`);
      throw new Error(`not converged within ${timeoutMs} ms: reconcile=${JSON.stringify(last.reconcile)} ${problems.join('; ')}`);
    }
    await sleep(intervalMs);
  }
}

export async function writeConfig(path: string, yaml: string): Promise<void> {
  await writeFile(path, yaml);
}
