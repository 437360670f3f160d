// What the tests push to the loopback registry, removed again: a test's repositories (by the
// registry's own API, then their folder in the storage of the registry provision.sh runs), and
// once per run the registry's garbage collection for the blobs nothing refers to any more.
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { lstat, readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';

const MANAGED_REGISTRY = '127.0.0.1:5000';
/** Where scripts/provision.sh keeps the registry it runs on 127.0.0.1:5000. */
const REGISTRY_DIR = '/var/lib/skiff-core-test/registry';
const MANIFEST_TYPES = [
  'application/vnd.docker.distribution.manifest.v2+json',
  'application/vnd.docker.distribution.manifest.list.v2+json',
  'application/vnd.oci.image.manifest.v1+json',
  'application/vnd.oci.image.index.v1+json',
].join(', ');

/** The storage folder and config of the registry at `address`, when it is the one provision.sh runs. */
function localStorage(address: string): { config: string; repositories: string; data: string } | undefined {
  const config = join(REGISTRY_DIR, 'config.yml');
  if (address !== MANAGED_REGISTRY || !existsSync(config)) return undefined;
  const data = join(REGISTRY_DIR, 'data');
  return { config, data, repositories: join(data, 'docker/registry/v2/repositories') };
}

async function getJson(url: string): Promise<unknown> {
  const res = await fetch(url, { signal: AbortSignal.timeout(10_000) });
  if (res.status === 404) return undefined;
  if (!res.ok) throw new Error(`GET ${url}: HTTP ${res.status}`);
  return res.json();
}

/** The registry's repositories; none when no registry answers (then nothing can have been pushed). */
export async function registryRepositories(address: string): Promise<string[]> {
  let body: { repositories?: string[] } | undefined;
  try {
    body = (await getJson(`http://${address}/v2/_catalog?n=1000`)) as typeof body;
  } catch (err) {
    if (err instanceof TypeError) return []; // fetch failed: connection refused
    throw err;
  }
  return body?.repositories ?? [];
}

/** Deletes every tag of the repositories named `prefix/…` (or `prefix`), and their folders. */
export async function removeRegistryRepositories(address: string, prefix: string): Promise<string[]> {
  const ours = (await registryRepositories(address)).filter((r) => r === prefix || r.startsWith(`${prefix}/`));
  for (const repo of ours) {
    const tags = ((await getJson(`http://${address}/v2/${repo}/tags/list`)) as { tags?: string[] | null } | undefined)?.tags ?? [];
    for (const tag of tags) {
      const head = await fetch(`http://${address}/v2/${repo}/manifests/${tag}`, {
        method: 'HEAD',
        headers: { Accept: MANIFEST_TYPES },
        signal: AbortSignal.timeout(10_000),
      });
      const digest = head.headers.get('docker-content-digest');
      if (!digest) continue;
      const del = await fetch(`http://${address}/v2/${repo}/manifests/${digest}`, {
        method: 'DELETE',
        signal: AbortSignal.timeout(10_000),
      });
      if (!del.ok && del.status !== 404) throw new Error(`DELETE ${repo}@${digest}: HTTP ${del.status} (is storage.delete enabled?)`);
    }
    // The API leaves the repository listed; its folder goes too where we run the registry.
    const storage = localStorage(address);
    if (storage) await rm(join(storage.repositories, ...repo.split('/')), { recursive: true, force: true });
  }
  return ours;
}

/** Removes blobs that no manifest refers to any more (only for the registry provision.sh runs). */
export function collectRegistryGarbage(address: string): Promise<void> {
  const storage = localStorage(address);
  // A registry nothing was ever pushed to has no repositories folder, and nothing to collect.
  if (!storage || !existsSync(storage.repositories)) return Promise.resolve();
  return new Promise((resolve, reject) => {
    execFile('docker-registry', ['garbage-collect', '--delete-untagged', storage.config], { timeout: 120_000 }, (err, _out, stderr) =>
      err ? reject(new Error(`docker-registry garbage-collect failed: ${stderr.trim() || err.message}`)) : resolve(),
    );
  });
}

/** Bytes of the files in the registry's storage, and its repositories; undefined for a registry we do not run. */
export async function registryFootprint(address: string): Promise<{ bytes: number; repositories: string[] } | undefined> {
  const storage = localStorage(address);
  if (!storage) return undefined;
  let bytes = 0;
  const walk = async (dir: string): Promise<void> => {
    for (const entry of await readdir(dir, { withFileTypes: true }).catch(() => [])) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) await walk(path);
      else if (entry.isFile()) bytes += (await lstat(path)).size;
    }
  };
  await walk(storage.data);
  return { bytes, repositories: await registryRepositories(address) };
}
