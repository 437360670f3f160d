// A second Docker engine of the test's own, so a test can stop and restart "Docker" without
// touching the engine the rest of the machine (and the other tests) use.
import { spawn, type ChildProcess, execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { waitFor } from './engine.js';

export interface PrivateEngine {
  host: string;
  start(): Promise<void>;
  stop(): Promise<void>;
  /** Copies an image from the main engine into this one. */
  load(image: string): void;
  /** A registry on 127.0.0.1:5000 inside the engine's network namespace; it outlives engine restarts. */
  registry(): Promise<PrivateRegistry>;
  destroy(): Promise<void>;
}

export interface PrivateRegistry {
  /** Pushes IMAGE of the main engine into this registry as NAME; returns the ref to pull. */
  pushFromMain(image: string, name: string): Promise<string>;
  /** Builds DOCKERFILE on the main engine (no context), pushes it as NAME and drops the build. */
  pushBuilt(dockerfile: string, name: string): Promise<string>;
  /** Slows the namespace's loopback (and so every pull) to about `kbit` kbit/s. */
  throttle(kbit: number): void;
}

/** Waits until a registry answers at `url`; `via` runs curl elsewhere (nsenter into a namespace). */
async function untilAnswers(url: string, what: string, via: string[] = []): Promise<void> {
  const [cmd, ...args] = [...via, 'curl', '-fsS', '--max-time', '2', url];
  await waitFor(
    () => {
      try {
        execFileSync(cmd!, args, { stdio: 'ignore' });
        return true;
      } catch {
        return false;
      }
    },
    { what, timeoutMs: 30_000, intervalMs: 200 },
  );
}

const registryConfig = (storage: string, addr: string) =>
  `version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: ${storage}\n  cache:\n    blobdescriptor: ""\nhttp:\n  addr: ${addr}\n`;

export async function privateEngine(dir: string): Promise<PrivateEngine> {
  await mkdir(dir, { recursive: true });
  const socket = join(dir, 'docker.sock');
  const host = `unix://${socket}`;
  let child: ChildProcess | undefined;
  let registryChild: ChildProcess | undefined;
  const env = { ...process.env, DOCKER_HOST: host };
  // A named network namespace, not unshare's anonymous one, so that a registry in it stays
  // reachable across restarts of the engine.
  const netns = basename(dir);
  execFileSync('ip', ['netns', 'add', netns]);
  // nsenter, not `ip netns exec`: that one remounts /sys, and dockerd then finds no cgroups.
  const inNetns = (...cmd: string[]) => [`--net=/run/netns/${netns}`, ...cmd];
  // A small MTU: a token bucket (throttle()) drops any packet bigger than its burst.
  execFileSync('nsenter', inNetns('ip', 'link', 'set', 'lo', 'mtu', '1500', 'up'));
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
        'nsenter',
        [
          ...inNetns('dockerd'),
          '--host',
          host,
          '--data-root',
          join(dir, 'data'),
          '--exec-root',
          join(dir, 'exec'),
          '--pidfile',
          join(dir, 'docker.pid'),
          '--bridge',
          'none',
          '--iptables=false',
          '--ip-masq=false',
          '--containerd-namespace',
          `${dir.split('/').pop()}-moby`,
          '--containerd-plugins-namespace',
          `${dir.split('/').pop()}-plugins`,
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
    async registry() {
      const storage = join(dir, 'registry');
      await mkdir(storage, { recursive: true });
      await writeFile(join(dir, 'registry.yml'), registryConfig(storage, '127.0.0.1:5000'));
      registryChild = spawn('nsenter', inNetns('docker-registry', 'serve', join(dir, 'registry.yml')), { stdio: 'ignore' });
      await untilAnswers('http://127.0.0.1:5000/v2/', 'the private registry', ['nsenter', ...inNetns()]);
      const registry: PrivateRegistry = {
        async pushFromMain(image, name) {
          // The main engine cannot reach this namespace, so a second registry process serves the
          // same storage on the main loopback for the push, then goes away.
          const port = 5000 + 1 + Math.floor(Math.random() * 900);
          const config = join(dir, 'registry-push.yml');
          await writeFile(config, registryConfig(storage, `127.0.0.1:${port}`));
          const pusher = spawn('docker-registry', ['serve', config], { stdio: 'ignore' });
          try {
            await untilAnswers(`http://127.0.0.1:${port}/v2/`, 'the push registry');
            const tagged = `127.0.0.1:${port}/${name}`;
            execFileSync('docker', ['tag', image, tagged]);
            try {
              execFileSync('docker', ['push', tagged], { stdio: 'ignore' });
            } finally {
              execFileSync('docker', ['rmi', tagged], { stdio: 'ignore' });
            }
          } finally {
            pusher.kill('SIGKILL');
          }
          return `127.0.0.1:5000/${name}`;
        },
        async pushBuilt(dockerfile, name) {
          const local = `${name.replace(/[/:]/g, '-')}-build:1`;
          execFileSync('docker', ['build', '-q', '-t', local, '-'], { input: dockerfile, stdio: ['pipe', 'ignore', 'inherit'] });
          try {
            return await registry.pushFromMain(local, name);
          } finally {
            execFileSync('docker', ['rmi', '-f', local], { stdio: 'ignore' });
          }
        },
        throttle(kbit) {
          execFileSync(
            'nsenter',
            inNetns('tc', 'qdisc', 'replace', 'dev', 'lo', 'root', 'tbf', 'rate', `${kbit}kbit`, 'burst', '256kb', 'latency', '1s'),
          );
        },
      };
      return registry;
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
      registryChild?.kill('SIGKILL');
      execFileSync('ip', ['netns', 'delete', netns]);
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
