// Ends a process and all its descendants by host PID. The engine cannot kill an exec'd process,
// but the root daemon sees container processes in /proc like any other.
//
// A PID is only a name that the kernel hands out again (pid_max is 32768 on many 32-bit boards),
// so nothing is signalled on the strength of a PID seen earlier: each process is identified by
// its PID and start time, the start time is read again right before the signal, and the process
// a session names must be in its container's cgroup.
import { readdir, readFile } from 'node:fs/promises';
import { sleep } from '../time.js';

export interface ProcInfo {
  ppid: number;
  /** Start time in clock ticks since boot (/proc/PID/stat field 22): with the PID, an identity. */
  start: number;
}

/** PPID and start time of one process, or undefined when there is no such process. */
export async function procInfo(pid: number, proc = '/proc'): Promise<ProcInfo | undefined> {
  const stat = await readFile(`${proc}/${pid}/stat`, 'utf8').catch(() => '');
  if (!stat) return undefined;
  // The command name (field 2) may contain spaces and parentheses: parse after the last ')'.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const ppid = Number(fields[1]);
  const start = Number(fields[19]);
  return Number.isFinite(ppid) && Number.isFinite(start) ? { ppid, start } : undefined;
}

/** PID → PPID and start time for every process visible in `proc`. */
export async function readProcesses(proc = '/proc'): Promise<Map<number, ProcInfo>> {
  const out = new Map<number, ProcInfo>();
  for (const entry of await readdir(proc)) {
    if (!/^\d+$/.test(entry)) continue;
    const info = await procInfo(Number(entry), proc);
    if (info) out.set(Number(entry), info);
  }
  return out;
}

/** `root` and every process below it, deepest first (children die before their parents). */
export function descendants(root: number, processes: Map<number, { ppid: number }>): number[] {
  const children = new Map<number, number[]>();
  for (const [pid, { ppid }] of processes) children.set(ppid, [...(children.get(ppid) ?? []), pid]);
  const out: number[] = [];
  const visit = (pid: number) => {
    for (const child of children.get(pid) ?? []) visit(child);
    out.push(pid);
  };
  visit(root);
  return out;
}

/** Whether the process is in the cgroup of the container with this (full) id. */
export async function inContainer(pid: number, containerId: string, proc = '/proc'): Promise<boolean> {
  if (!/^[0-9a-f]{12,64}$/.test(containerId)) return false;
  const cgroup = await readFile(`${proc}/${pid}/cgroup`, 'utf8').catch(() => '');
  return cgroup.includes(containerId);
}

/** Signals `pid` only if it is still the process that started at `start`. */
async function signalSame(pid: number, start: number, signal: NodeJS.Signals, proc: string): Promise<void> {
  if ((await procInfo(pid, proc))?.start !== start) return;
  try {
    process.kill(pid, signal);
  } catch {
    // gone meanwhile
  }
}

/**
 * Sends `signal` to a session's process, named by the PID the engine reported, if it is in the
 * session's container. Never throws.
 */
export async function signalInContainer(pid: number, containerId: string, signal: NodeJS.Signals, proc = '/proc'): Promise<void> {
  const info = await procInfo(pid, proc);
  if (!info || !(await inContainer(pid, containerId, proc))) return;
  await signalSame(pid, info.start, signal, proc);
}

/**
 * SIGHUP first (what a hung-up terminal sends: shells pass it to their jobs and exit), then
 * SIGKILL for whatever is still there after `graceMs`. Only a `root` in the container's cgroup,
 * and only processes that are still the ones seen below it.
 */
export async function killTree(root: number, containerId: string, graceMs = 1000, proc = '/proc'): Promise<void> {
  if (!(await inContainer(root, containerId, proc))) return;
  const seen = await readProcesses(proc);
  const first = descendants(root, seen).filter((pid) => seen.has(pid));
  for (const pid of first) await signalSame(pid, seen.get(pid)!.start, 'SIGHUP', proc);
  await sleep(graceMs);
  // Look again from every process we saw: when the shell exits its children are reparented to
  // the container's init, out of reach of a walk from `root` alone.
  const now = await readProcesses(proc);
  const left = new Map<number, number>();
  for (const pid of first) {
    const was = seen.get(pid)!;
    if (now.get(pid)?.start !== was.start) continue; // gone, or its PID reused
    for (const p of descendants(pid, now)) if (now.has(p)) left.set(p, now.get(p)!.start);
  }
  for (const [pid, start] of left) await signalSame(pid, start, 'SIGKILL', proc);
}
