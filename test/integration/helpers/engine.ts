// Helpers for integration tests that talk to the real Docker engine provisioned by
// scripts/provision.sh. Keep this file free of top-level test-runner calls: it is also
// imported by test/integration/global-setup.ts, which runs outside the test workers.
import { SNAPSHOT_REPO_PREFIX } from '../../../src/reconcile/labels.js';
import { randomBytes } from 'node:crypto';
import Docker from 'dockerode';
import { inject } from 'vitest';
import { removeRegistryRepositories } from './registry.js';

/** Local base images built by scripts/provision.sh (no public registry is reachable). */
export const BUSYBOX_IMAGE = 'skiff-core-test/busybox:latest';
export const DEBIAN_SYSTEMD_IMAGE = 'skiff-core-test/debian-systemd:bookworm';
export const DEBIAN_SSHD_IMAGE = 'skiff-core-test/debian-sshd:bookworm';
export const BASE_IMAGES: readonly string[] = [BUSYBOX_IMAGE, DEBIAN_SYSTEMD_IMAGE, DEBIAN_SSHD_IMAGE];

/** Plain-HTTP loopback registry started by provision.sh; override with SKIFF_TEST_REGISTRY. */
export const TEST_REGISTRY: string = process.env['SKIFF_TEST_REGISTRY'] || '127.0.0.1:5000';

export const PROVISION_COMMAND = 'bash scripts/provision.sh';
export const SKIP_ENV = 'SKIFF_CORE_SKIP_INTEGRATION';

declare module 'vitest' {
  export interface ProvidedContext {
    /** Non-empty when global-setup decided to skip the integration suite (the reason). */
    skiffIntegrationSkip: string;
  }
}

/**
 * Why the integration suite is skipped, or '' when it runs. Only meaningful inside test files
 * (global-setup provides the value). Use as `describe.skipIf(integrationSkipReason())(...)`.
 */
export function integrationSkipReason(): string {
  return inject('skiffIntegrationSkip') ?? '';
}

/** The engine address the tests use, as a human-readable string for messages. */
export function engineAddress(): string {
  return process.env['DOCKER_HOST'] || 'unix:///var/run/docker.sock';
}

let cachedDocker: Docker | undefined;

/** A dockerode client for the engine on DOCKER_HOST (default /var/run/docker.sock). */
export function testDocker(): Docker {
  cachedDocker ??= new Docker();
  return cachedDocker;
}

/** A fresh lowercase prefix such as `skt-3f9a0c` for naming this test's containers/images. */
export function uniquePrefix(): string {
  return `skt-${randomBytes(3).toString('hex')}`;
}

/** Status code of a dockerode error (404, 409, ...), if any. */
export function dockerStatus(err: unknown): number | undefined {
  if (typeof err === 'object' && err !== null && 'statusCode' in err) {
    const code = (err as { statusCode: unknown }).statusCode;
    return typeof code === 'number' ? code : undefined;
  }
  return undefined;
}

function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/**
 * The repository path of an image reference without its registry host:
 * `127.0.0.1:5000/skt-ab12cd/app:1` -> `skt-ab12cd/app:1`, `skt-ab12cd:1` -> `skt-ab12cd:1`.
 */
export function referencePath(ref: string): string {
  const slash = ref.indexOf('/');
  if (slash < 0) return ref;
  const first = ref.slice(0, slash);
  const isRegistryHost = first === 'localhost' || first.includes('.') || first.includes(':');
  return isRegistryHost ? ref.slice(slash + 1) : ref;
}

const PREFIX_RE = /^[a-z0-9][a-z0-9_.-]{3,}$/;

export interface CleanupResult {
  containers: string[];
  images: string[];
  networks: string[];
  volumes: string[];
  registryRepositories?: string[];
}

/**
 * Force-removes the test resources whose names start with `prefix`, and nothing else:
 * containers (by name), image references (tags and digest references, compared after stripping a
 * registry host, so `127.0.0.1:5000/<prefix>...` counts; removing a reference only untags an image
 * that has other names, such as a base image re-tagged for a test), then networks, volumes and
 * the registry repositories `TEST_REGISTRY/<prefix>/…`.
 * Missing resources are fine; any other failure is reported after everything else was tried.
 */
export async function cleanupByPrefix(prefix: string, docker: Docker = testDocker()): Promise<CleanupResult> {
  if (!PREFIX_RE.test(prefix)) {
    throw new Error(`cleanupByPrefix: refusing unsafe prefix ${JSON.stringify(prefix)} (want e.g. uniquePrefix())`);
  }
  const protectedRef = BASE_IMAGES.find((ref) => referencePath(ref).startsWith(prefix));
  if (protectedRef !== undefined) {
    throw new Error(`cleanupByPrefix: prefix ${JSON.stringify(prefix)} would match base image ${protectedRef}`);
  }

  const result: CleanupResult = { containers: [], images: [], networks: [], volumes: [] };
  const failures: string[] = [];
  const attempt = async (what: string, fn: () => Promise<unknown>): Promise<boolean> => {
    for (let i = 0; ; i++) {
      try {
        await fn();
        return true;
      } catch (err) {
        const status = dockerStatus(err);
        if (status === 404) return false;
        // 409: e.g. "removal of container ... is already in progress"; give the engine a moment.
        if (status === 409 && i < 5) {
          await new Promise((r) => setTimeout(r, 200 * (i + 1)));
          continue;
        }
        failures.push(`${what}: ${errorMessage(err)}`);
        return false;
      }
    }
  };

  const containers = await docker.listContainers({ all: true });
  for (const c of containers) {
    const name = (c.Names ?? []).map((n) => n.replace(/^\//, '')).find((n) => n.startsWith(prefix));
    if (name === undefined) continue;
    if (await attempt(`container ${name}`, () => docker.getContainer(c.Id).remove({ force: true, v: true }))) {
      result.containers.push(name);
    }
  }

  const images = await docker.listImages({ all: false });
  for (const img of images) {
    // Also the snapshots the daemon took of the test's containers (skiff-core-snapshot/<prefix>…)
    // and what a restore cut short left loaded (skiff-core-restore/<prefix>…).
    const ours = [SNAPSHOT_REPO_PREFIX, 'skiff-core-restore/'].map((repo) => `${repo}${prefix}`);
    const refs = [...(img.RepoTags ?? []), ...(img.RepoDigests ?? [])].filter(
      (ref) => !ref.startsWith('<none>') && (referencePath(ref).startsWith(prefix) || ours.some((p) => ref.startsWith(p))),
    );
    for (const ref of refs) {
      if (await attempt(`image ${ref}`, () => docker.getImage(ref).remove({ force: true }))) {
        result.images.push(ref);
      }
    }
  }

  const networks = await docker.listNetworks();
  for (const n of networks) {
    if (!n.Name.startsWith(prefix)) continue;
    if (await attempt(`network ${n.Name}`, () => docker.getNetwork(n.Id).remove())) {
      result.networks.push(n.Name);
    }
  }

  const volumes = (await docker.listVolumes()).Volumes ?? [];
  for (const v of volumes) {
    if (!v.Name.startsWith(prefix)) continue;
    if (await attempt(`volume ${v.Name}`, () => docker.getVolume(v.Name).remove({ force: true }))) {
      result.volumes.push(v.Name);
    }
  }

  // What the test pushed to the registry, under TEST_REGISTRY/<prefix>/….
  try {
    result.registryRepositories = await removeRegistryRepositories(TEST_REGISTRY, prefix);
  } catch (err) {
    failures.push(`registry repositories ${TEST_REGISTRY}/${prefix}/…: ${errorMessage(err)}`);
  }

  if (failures.length > 0) {
    throw new Error(`cleanupByPrefix(${prefix}) could not remove:\n  ${failures.join('\n  ')}`);
  }
  return result;
}

const EXPIRED: unique symbol = Symbol('expired');

export interface WaitForOptions {
  /** Give up after this long (default 30 s). */
  timeoutMs?: number;
  /** Pause between attempts (default 250 ms). */
  intervalMs?: number;
  /** What is awaited, for the timeout message ("container skt-ab12cd-a to be running"). */
  what: string;
}

/**
 * Polls `fn` until it returns something other than `false`, `null` or `undefined`, and returns
 * that value. A throwing attempt counts as "not yet"; its error is quoted if time runs out. An
 * attempt that hangs is abandoned when the overall timeout expires.
 */
export async function waitFor<T>(
  fn: () => T | Promise<T>,
  { timeoutMs = 30_000, intervalMs = 250, what }: WaitForOptions,
): Promise<Exclude<T, false | null | undefined>> {
  const started = Date.now();
  const deadline = started + timeoutMs;
  let last: string;
  let attempts = 0;
  for (;;) {
    const remaining = deadline - Date.now();
    let timer: NodeJS.Timeout | undefined;
    const expired = new Promise<typeof EXPIRED>((resolve) => {
      timer = setTimeout(() => resolve(EXPIRED), Math.max(remaining, 0));
    });
    try {
      attempts++;
      const value = await Promise.race([Promise.resolve().then(fn), expired]);
      if (value === EXPIRED) {
        last = 'last attempt still pending';
        break;
      }
      if (value !== false && value !== null && value !== undefined) {
        return value as Exclude<T, false | null | undefined>;
      }
      last = `last result: ${String(value)}`;
    } catch (err) {
      last = `last error: ${errorMessage(err)}`;
    } finally {
      clearTimeout(timer);
    }
    if (Date.now() + intervalMs > deadline) break;
    await new Promise((r) => setTimeout(r, intervalMs));
  }
  throw new Error(`Timed out after ${Date.now() - started} ms waiting for ${what} (${attempts} attempts; ${last})`);
}

/** Splits a non-TTY container log buffer (8-byte frame headers) into stdout and stderr. */
export function demuxLogs(buf: Buffer): { stdout: string; stderr: string } {
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  let off = 0;
  while (off + 8 <= buf.length) {
    const stream = buf[off];
    const size = buf.readUInt32BE(off + 4);
    const payload = buf.subarray(off + 8, off + 8 + size);
    (stream === 2 ? err : out).push(payload);
    off += 8 + size;
  }
  return { stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8') };
}

export interface RunOnceOptions {
  /** Container name; use the test's uniquePrefix() so cleanupByPrefix catches leftovers. */
  name: string;
  image: string;
  cmd: string[];
  /** Extra fields for the create call (Env, User, HostConfig, ...). Networking is off by default. */
  create?: Partial<Docker.ContainerCreateOptions>;
  timeoutMs?: number;
}

/** Creates, starts and waits for a container, collects its output, then removes it. */
export async function runOnce(
  { name, image, cmd, create = {}, timeoutMs = 60_000 }: RunOnceOptions,
  docker: Docker = testDocker(),
): Promise<{ exitCode: number; stdout: string; stderr: string }> {
  const container = await docker.createContainer({
    ...create,
    name,
    Image: image,
    Cmd: cmd,
    Tty: false,
    HostConfig: { NetworkMode: 'none', ...create.HostConfig },
  });
  try {
    await container.start();
    let timer: NodeJS.Timeout | undefined;
    const waited = (await Promise.race([
      container.wait(),
      new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error(`container ${name} still running after ${timeoutMs} ms`)), timeoutMs);
      }),
    ]).finally(() => clearTimeout(timer))) as { StatusCode: number };
    const logs = await container.logs({ stdout: true, stderr: true, follow: false });
    return { exitCode: waited.StatusCode, ...demuxLogs(logs) };
  } finally {
    await container.remove({ force: true }).catch((err: unknown) => {
      if (dockerStatus(err) !== 404) throw err;
    });
  }
}

/** Runs `cmd` in a container with a TTY (one stream, no stdout/stderr framing); returns its output. */
export async function execIn(docker: Docker, name: string, cmd: string[]): Promise<string> {
  const ex = await docker.getContainer(name).exec({ Cmd: cmd, AttachStdout: true, AttachStderr: true, Tty: true });
  const stream = await ex.start({ hijack: true, stdin: false, Tty: true });
  const chunks: Buffer[] = [];
  stream.on('data', (c: Buffer) => chunks.push(c));
  await new Promise((r) => stream.on('end', r));
  return Buffer.concat(chunks).toString().replace(/\r/g, '');
}
