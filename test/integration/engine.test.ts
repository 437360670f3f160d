// Smoke test of the real engine the integration suite runs against (see scripts/provision.sh),
// and of the helpers in ./helpers/engine.ts.
import Docker from 'dockerode';
import { afterAll, describe, expect, it } from 'vitest';
import {
  BASE_IMAGES,
  BUSYBOX_IMAGE,
  DEBIAN_SYSTEMD_IMAGE,
  cleanupByPrefix,
  dockerStatus,
  integrationSkipReason,
  referencePath,
  runOnce,
  testDocker,
  uniquePrefix,
  waitFor,
} from './helpers/engine.js';

function apiAtLeast(version: string, min: [number, number]): boolean {
  const [major = 0, minor = 0] = version.split('.').map((n) => Number.parseInt(n, 10));
  return major > min[0] || (major === min[0] && minor >= min[1]);
}

async function exists(what: Promise<unknown>): Promise<boolean> {
  try {
    await what;
    return true;
  } catch (err) {
    if (dockerStatus(err) === 404) return false;
    throw err;
  }
}

describe.skipIf(integrationSkipReason())('real Docker engine', () => {
  const docker: Docker = testDocker();
  const prefix = uniquePrefix();

  afterAll(async () => {
    await cleanupByPrefix(prefix, docker);
  });

  it('answers ping', async () => {
    const answer: unknown = await docker.ping();
    expect(Buffer.isBuffer(answer) ? answer.toString('utf8') : String(answer)).toBe('OK');
  });

  it('reports API version >= 1.41', async () => {
    const version = await docker.version();
    expect(version.ApiVersion, `engine ${version.Version} API ${version.ApiVersion}`).toSatisfy((v: string) => apiAtLeast(v, [1, 41]));
  });

  it('has the base images built by provision.sh', async () => {
    const tags = (await docker.listImages()).flatMap((img) => img.RepoTags ?? []);
    expect(tags).toEqual(expect.arrayContaining([BUSYBOX_IMAGE, DEBIAN_SYSTEMD_IMAGE]));
  });

  it('runs a throwaway busybox container and removes it', async () => {
    const name = `${prefix}-echo`;
    const result = await runOnce({ name, image: BUSYBOX_IMAGE, cmd: ['sh', '-c', 'echo hello; echo oops >&2; exit 3'] });
    expect(result).toEqual({ exitCode: 3, stdout: 'hello\n', stderr: 'oops\n' });
    expect(await exists(docker.getContainer(name).inspect())).toBe(false);
  });

  it('busybox image has root in /etc/passwd and a writable /tmp', async () => {
    const result = await runOnce({
      name: `${prefix}-id`,
      image: BUSYBOX_IMAGE,
      cmd: ['sh', '-c', 'whoami && touch /tmp/x && echo ok'],
    });
    expect(result).toEqual({ exitCode: 0, stdout: 'root\nok\n', stderr: '' });
  });

  it('cleanupByPrefix removes prefixed containers and image tags, and nothing else', async () => {
    const other = uniquePrefix();
    const mine = await docker.createContainer({ name: `${prefix}-idle`, Image: BUSYBOX_IMAGE, Cmd: ['sleep', '600'] });
    await mine.start();
    const sentinel = await docker.createContainer({ name: `${other}-sentinel`, Image: BUSYBOX_IMAGE, Cmd: ['true'] });
    try {
      await docker.getImage(BUSYBOX_IMAGE).tag({ repo: `${prefix}/bb`, tag: '1' });
      await docker.getImage(BUSYBOX_IMAGE).tag({ repo: `127.0.0.1:5000/${prefix}/bb`, tag: '1' });

      const removed = await cleanupByPrefix(prefix, docker);

      expect(removed.containers).toEqual([`${prefix}-idle`]);
      expect([...removed.images].sort()).toEqual([`${prefix}/bb:1`, `127.0.0.1:5000/${prefix}/bb:1`].sort());
      expect(await exists(mine.inspect())).toBe(false);
      expect(await exists(sentinel.inspect())).toBe(true);
      for (const image of BASE_IMAGES) {
        expect(await exists(docker.getImage(image).inspect()), image).toBe(true);
      }
    } finally {
      await sentinel.remove({ force: true });
    }
  });

  it('cleanupByPrefix refuses prefixes that could hit unrelated resources', async () => {
    await expect(cleanupByPrefix('', docker)).rejects.toThrow(/unsafe prefix/);
    await expect(cleanupByPrefix('sk', docker)).rejects.toThrow(/unsafe prefix/);
    await expect(cleanupByPrefix('skiff-core', docker)).rejects.toThrow(/base image/);
  });

  it('waitFor returns the first usable value and names what it waited for on timeout', async () => {
    let n = 0;
    await expect(waitFor(() => (++n >= 3 ? `done after ${n}` : false), { what: 'three tries', intervalMs: 10 })).resolves.toBe(
      'done after 3',
    );
    await expect(
      waitFor(
        () => {
          throw new Error('not yet');
        },
        { what: 'the impossible', timeoutMs: 200, intervalMs: 20 },
      ),
    ).rejects.toThrow(/waiting for the impossible .*last error: not yet/);
    await expect(waitFor(() => new Promise<never>(() => {}), { what: 'a hung probe', timeoutMs: 100 })).rejects.toThrow(
      /waiting for a hung probe .*still pending/,
    );
  });

  it('referencePath strips only a registry host', () => {
    expect(referencePath('127.0.0.1:5000/skt-abc/x:1')).toBe('skt-abc/x:1');
    expect(referencePath('localhost/skt-abc:1')).toBe('skt-abc:1');
    expect(referencePath('skt-abc/x:1')).toBe('skt-abc/x:1');
    expect(referencePath('skt-abc:1')).toBe('skt-abc:1');
  });
});
