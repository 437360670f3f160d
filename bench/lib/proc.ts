// Child processes for the benchmark: timed runs, output capture, RSS from /proc, and a registry of
// everything still running so that a failure or Ctrl-C can end it (by pid, never by name).
import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { closeSync, constants, openSync, readFileSync, writeSync } from 'node:fs';

const live = new Set<ChildProcess>();

/** Children started through this module and not yet exited. */
export function liveChildren(): ChildProcess[] {
  return [...live];
}

export function track(child: ChildProcess): ChildProcess {
  live.add(child);
  child.once('exit', () => live.delete(child));
  child.once('error', () => live.delete(child));
  return child;
}

let gate: ((cmd: string, args: readonly string[]) => boolean) | undefined;
/** From now on only commands `allow` accepts may start (the cleanup's own, once stopping). */
export function restrictSpawning(allow: (cmd: string, args: readonly string[]) => boolean): void {
  gate = allow;
}

export function start(cmd: string, args: readonly string[], options: SpawnOptions = {}): ChildProcess {
  if (gate && !gate(cmd, args)) throw new Error('the benchmark is stopping');
  return track(spawn(cmd, args, options));
}

export interface TimedResult {
  ms: number;
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: Buffer;
  stderr: string;
  /** Bytes read from stdout (also when not kept). */
  stdoutBytes: number;
}

export interface TimedOptions {
  env?: NodeJS.ProcessEnv;
  /** Written to stdin, which is then closed; without it stdin is /dev/null. */
  input?: Buffer | string;
  /** Keep stdout (default true); false only counts the bytes. */
  keepStdout?: boolean;
  timeoutMs?: number;
  /** Called with the child right after spawn (e.g. to sample its memory). */
  onSpawn?: (child: ChildProcess) => void;
  /** Feeds stdin itself (takes precedence over input); must end it. */
  feed?: (stdin: NodeJS.WritableStream) => void;
}

/** Runs a program to completion; `ms` is from just before spawn to the 'close' event. */
export function timed(cmd: string, args: readonly string[], options: TimedOptions = {}): Promise<TimedResult> {
  const timeoutMs = options.timeoutMs ?? 120_000;
  const keep = options.keepStdout ?? true;
  return new Promise((resolve, reject) => {
    const needStdin = options.input !== undefined || options.feed !== undefined;
    const t0 = performance.now();
    const child = start(cmd, args, {
      stdio: [needStdin ? 'pipe' : 'ignore', 'pipe', 'pipe'],
      env: options.env ?? process.env,
    });
    options.onSpawn?.(child);
    const out: Buffer[] = [];
    let bytes = 0;
    let err = '';
    child.stdout!.on('data', (c: Buffer) => {
      bytes += c.length;
      if (keep) out.push(c);
    });
    child.stderr!.on('data', (c: Buffer) => {
      if (err.length < 64 * 1024) err += c.toString();
    });
    if (needStdin) {
      child.stdin!.on('error', () => undefined); // the far side may exit before reading it all
      if (options.feed) options.feed(child.stdin!);
      else child.stdin!.end(options.input);
    }
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${cmd} ${args.join(' ')}: still running after ${timeoutMs} ms; stderr: ${err.slice(-1000)}`));
    }, timeoutMs);
    child.once('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.once('close', (code, signal) => {
      const ms = performance.now() - t0;
      clearTimeout(timer);
      resolve({ ms, code, signal, stdout: Buffer.concat(out), stderr: err, stdoutBytes: bytes });
    });
  });
}

/** Runs a command and returns its stdout as text; throws on a non-zero exit. */
export async function capture(cmd: string, args: readonly string[], options: TimedOptions = {}): Promise<string> {
  const r = await timed(cmd, args, options);
  if (r.code !== 0) throw new Error(`${cmd} ${args.join(' ')} exited ${r.code ?? r.signal}: ${r.stderr.trim().slice(-2000)}`);
  return r.stdout.toString();
}

export interface ProcMemory {
  /** Resident set size now, bytes. */
  rss: number;
  /** Peak resident set size (VmHWM), bytes. */
  hwm: number;
  /** Of the RSS: private memory (RssAnon), and mapped files such as node's own binary (RssFile). */
  anon: number;
  file: number;
}

/** VmRSS and VmHWM of a process from /proc/PID/status; undefined once it is gone. */
export function procMemory(pid: number): ProcMemory | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/status`, 'utf8');
  } catch {
    return undefined;
  }
  const field = (name: string) => {
    const m = new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(text);
    return m?.[1] ? Number(m[1]) * 1024 : 0;
  };
  return { rss: field('VmRSS'), hwm: field('VmHWM'), anon: field('RssAnon'), file: field('RssFile') };
}

/** Resets a process's VmHWM to its current RSS (writes 5 to /proc/PID/clear_refs); false if refused. */
export function resetPeak(pid: number): boolean {
  try {
    // Opened for writing only, without truncating (which /proc refuses).
    const fd = openSync(`/proc/${pid}/clear_refs`, constants.O_WRONLY);
    try {
      writeSync(fd, '5');
    } finally {
      closeSync(fd);
    }
    return true;
  } catch {
    return false;
  }
}

/** Samples a process's memory every `intervalMs` until stopped; keeps the max RSS and last HWM. */
export function sampleMemory(pid: number, intervalMs = 20): { stop(): { maxRss: number; hwm: number; samples: number[] } } {
  const samples: number[] = [];
  let hwm = 0;
  const take = () => {
    const m = procMemory(pid);
    if (!m) return;
    samples.push(m.rss);
    hwm = Math.max(hwm, m.hwm);
  };
  take();
  const timer = setInterval(take, intervalMs);
  return {
    stop() {
      take();
      clearInterval(timer);
      return { maxRss: samples.length ? Math.max(...samples) : 0, hwm, samples };
    },
  };
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export const MB = 1024 * 1024;

let clockTicks: number | undefined;
/** USER_HZ (clock ticks per second in /proc/PID/stat); 100 on Linux unless `getconf` says else. */
export function setClockTicks(hz: number): void {
  clockTicks = hz > 0 ? hz : 100;
}

/** CPU seconds (user + system) a process has used so far; undefined once it is gone. */
export function procCpu(pid: number): number | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  // The command name may hold spaces and parentheses: fields count from the last ')'.
  const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
  const utime = Number(fields[11] ?? 0);
  const stime = Number(fields[12] ?? 0);
  return (utime + stime) / (clockTicks ?? 100);
}

/** Follows a process's CPU time every `intervalMs`; `stop()` gives the last value seen. */
export function followCpu(pid: number, intervalMs = 50): { stop(): number } {
  let last = procCpu(pid) ?? 0;
  const timer = setInterval(() => {
    const v = procCpu(pid);
    if (v !== undefined) last = v;
  }, intervalMs);
  return {
    stop() {
      clearInterval(timer);
      const v = procCpu(pid);
      if (v !== undefined) last = v;
      return last;
    },
  };
}
