// Ends a process and all its descendants by host PID. The engine cannot kill an exec'd process,
// but the root daemon sees container processes in /proc like any other.
import { readdir, readFile } from 'node:fs/promises';

/** PID → parent PID for every process visible in `proc`. */
export async function readParents(proc = '/proc'): Promise<Map<number, number>> {
  const parents = new Map<number, number>();
  for (const entry of await readdir(proc)) {
    if (!/^\d+$/.test(entry)) continue;
    const stat = await readFile(`${proc}/${entry}/stat`, 'utf8').catch(() => '');
    // The command name (field 2) may contain spaces and parentheses: parse after the last ')'.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const ppid = Number(fields[1]);
    if (Number.isFinite(ppid)) parents.set(Number(entry), ppid);
  }
  return parents;
}

/** `root` and every process below it, deepest first (children die before their parents). */
export function descendants(root: number, parents: Map<number, number>): number[] {
  const children = new Map<number, number[]>();
  for (const [pid, ppid] of parents) children.set(ppid, [...(children.get(ppid) ?? []), pid]);
  const out: number[] = [];
  const visit = (pid: number) => {
    for (const child of children.get(pid) ?? []) visit(child);
    out.push(pid);
  };
  visit(root);
  return out;
}

/**
 * SIGHUP first (what a hung-up terminal sends: shells pass it to their jobs and exit), then
 * SIGKILL for whatever is still there after `graceMs`.
 */
export async function killTree(root: number, graceMs = 1000, proc = '/proc'): Promise<void> {
  const send = (pids: number[], signal: NodeJS.Signals) => {
    for (const pid of pids) {
      try {
        process.kill(pid, signal);
      } catch {
        // already gone
      }
    }
  };
  const first = descendants(root, await readParents(proc));
  send(first, 'SIGHUP');
  await new Promise((r) => setTimeout(r, graceMs));
  // Look again from every process we saw: when the shell exits its children are reparented to
  // the container's init, out of reach of a walk from `root` alone.
  const parents = await readParents(proc);
  const left = new Set<number>();
  for (const pid of first) if (parents.has(pid)) for (const p of descendants(pid, parents)) left.add(p);
  send([...left], 'SIGKILL');
}
