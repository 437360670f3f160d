// killTree and signalInContainer against real processes, described by a /proc of the test's own:
// the PIDs are real (so the signals are), the start times and cgroups are what the test says.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { killTree, signalInContainer } from '../../../src/session/kill-tree.js';

const CONTAINER = 'ab'.repeat(32);
let proc: string;
const children: ChildProcess[] = [];

beforeEach(async () => {
  proc = await mkdtemp(join(tmpdir(), 'skt-proc-'));
});
afterEach(async () => {
  for (const c of children.splice(0)) c.kill('SIGKILL');
  await rm(proc, { recursive: true, force: true });
});

/** A real process that ignores SIGHUP (as a shell's background job may), described in `proc`. */
async function target(start: number, cgroup: string): Promise<ChildProcess> {
  const child = spawn('sh', ['-c', 'trap "" HUP; exec sleep 100'], { stdio: 'ignore' });
  children.push(child);
  await new Promise((r) => setTimeout(r, 50));
  await describe_(child.pid!, start, cgroup);
  return child;
}

async function describe_(pid: number, start: number, cgroup: string): Promise<void> {
  await mkdir(join(proc, String(pid)), { recursive: true });
  // Fields after the command: state ppid … start is field 22 (index 19 after the name).
  const rest = ['S', '1', ...Array.from({ length: 17 }, () => '0'), String(start), '0'];
  await writeFile(join(proc, String(pid), 'stat'), `${pid} (sleep) ${rest.join(' ')}\n`);
  await writeFile(join(proc, String(pid), 'cgroup'), cgroup);
}

const exited = (c: ChildProcess) =>
  new Promise<NodeJS.Signals | null>((r) =>
    c.exitCode !== null || c.signalCode !== null ? r(c.signalCode) : c.once('exit', (_code, sig) => r(sig)),
  );
const alive = (c: ChildProcess) => c.exitCode === null && c.signalCode === null;

describe('killTree', () => {
  it('ends a process of the container that ignores SIGHUP with SIGKILL', async () => {
    const child = await target(1000, `9:pids:/docker/${CONTAINER}\n`);
    await killTree(child.pid!, CONTAINER, 50, proc);
    expect(await exited(child)).toBe('SIGKILL');
  });

  it('leaves alone a process outside the container', async () => {
    const child = await target(1000, '9:pids:/user.slice\n');
    await killTree(child.pid!, CONTAINER, 50, proc);
    await signalInContainer(child.pid!, CONTAINER, 'SIGKILL', proc);
    await new Promise((r) => setTimeout(r, 100));
    expect(alive(child)).toBe(true);
  });

  it('does not SIGKILL a PID that meanwhile belongs to another process (a new start time)', async () => {
    const child = await target(1000, `9:pids:/docker/${CONTAINER}\n`);
    const killing = killTree(child.pid!, CONTAINER, 300, proc);
    await new Promise((r) => setTimeout(r, 100));
    await describe_(child.pid!, 2000, `9:pids:/docker/${CONTAINER}\n`); // the PID was reused
    await killing;
    await new Promise((r) => setTimeout(r, 100));
    expect(alive(child)).toBe(true);
  });
});

describe('signalInContainer', () => {
  it('signals the process of the container, and never throws for one that is gone', async () => {
    const child = await target(1000, `0::/system.slice/docker-${CONTAINER}.scope\n`);
    await signalInContainer(child.pid!, CONTAINER, 'SIGTERM', proc);
    expect(await exited(child)).toBe('SIGTERM');
    await expect(signalInContainer(999_999, CONTAINER, 'SIGTERM', proc)).resolves.toBeUndefined();
  });
});
