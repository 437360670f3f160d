// A second Docker engine of the test's own, so a test can stop and restart "Docker" without
// touching the engine the rest of the machine (and the other tests) use.
import { spawn, type ChildProcess, execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { waitFor } from './engine.js';

export interface PrivateEngine {
  host: string;
  start(): Promise<void>;
  stop(): Promise<void>;
  /** Copies an image from the main engine into this one. */
  load(image: string): void;
  destroy(): Promise<void>;
}

export async function privateEngine(dir: string): Promise<PrivateEngine> {
  await mkdir(dir, { recursive: true });
  const socket = join(dir, 'docker.sock');
  const host = `unix://${socket}`;
  let child: ChildProcess | undefined;
  const env = { ...process.env, DOCKER_HOST: host };
  const ping = () => {
    try {
      execFileSync('docker', ['version', '--format', '{{.Server.Version}}'], { env, stdio: 'ignore', timeout: 5000 });
      return true;
    } catch {
      return false;
    }
  };
  const engine: PrivateEngine = {
    host,
    async start() {
      // In a network namespace of its own with no bridge: dockerd with --bridge=none deletes
      // an existing docker0, which must only ever be this namespace's (there is none). A
      // containerd namespace of its own keeps its containers apart from the main engine's.
      child = spawn(
        'unshare',
        [
          '--net', 'dockerd',
          '--host', host, '--data-root', join(dir, 'data'), '--exec-root', join(dir, 'exec'), '--pidfile', join(dir, 'docker.pid'),
          '--bridge', 'none', '--iptables=false', '--ip-masq=false',
          '--containerd-namespace', `${dir.split('/').pop()}-moby`, '--containerd-plugins-namespace', `${dir.split('/').pop()}-plugins`,
        ],
        { stdio: ['ignore', 'ignore', 'ignore'], detached: true },
      );
      await waitFor(() => ping(), { what: `private dockerd on ${socket}`, timeoutMs: 60_000, intervalMs: 200 });
    },
    async stop() {
      const c = child;
      if (!c || c.exitCode !== null) return;
      const exited = new Promise((r) => c.once('exit', r));
      c.kill('SIGTERM');
      await exited;
      child = undefined;
    },
    load(image) {
      const saved = execFileSync('docker', ['save', image], { maxBuffer: 1 << 30 });
      execFileSync('docker', ['load'], { env, input: saved, stdio: ['pipe', 'ignore', 'inherit'] });
    },
    async destroy() {
      if (child && child.exitCode === null) {
        // Remove its containers first so nothing keeps running after the test.
        try {
          const ids = execFileSync('docker', ['ps', '-aq'], { env }).toString().split('\n').filter(Boolean);
          if (ids.length) execFileSync('docker', ['rm', '-f', ...ids], { env, stdio: 'ignore' });
        } catch {
          // the engine may already be gone
        }
      }
      await engine.stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
  return engine;
}

/**
 * Ends an engine that `scripts/provision.sh engine` started on DIR/docker.sock (as `npm start`
 * does when no engine answers): its containers, then dockerd (DIR/docker.pid), then DIR.
 */
export async function removeProvisionedEngine(dir: string): Promise<void> {
  const env = { ...process.env, DOCKER_HOST: `unix://${join(dir, 'docker.sock')}` };
  try {
    const ids = execFileSync('docker', ['ps', '-aq'], { env, timeout: 10_000 }).toString().split('\n').filter(Boolean);
    if (ids.length) execFileSync('docker', ['rm', '-f', ...ids], { env, stdio: 'ignore', timeout: 60_000 });
  } catch {
    // no engine answers there (any more)
  }
  const pid = Number((await readFile(join(dir, 'docker.pid'), 'utf8').catch(() => '')).trim());
  if (pid > 0) {
    try {
      process.kill(pid, 'SIGTERM');
      await waitFor(() => !existsSync(`/proc/${pid}`), { what: `dockerd ${pid} to exit`, timeoutMs: 30_000, intervalMs: 200 });
    } catch {
      // already gone
    }
  }
  await rm(dir, { recursive: true, force: true });
}
