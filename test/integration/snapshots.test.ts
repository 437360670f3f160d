// Snapshots against the real engine: retention through many config changes, and a replacement
// whose new container cannot start puts the old one back with its files.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from './helpers/cli.js';
import { BUSYBOX_IMAGE, cleanupByPrefix, execIn, integrationSkipReason, testDocker, uniquePrefix } from './helpers/engine.js';

describe.skipIf(integrationSkipReason())('snapshots (real engine)', () => {
  const docker = testDocker();
  const prefix = uniquePrefix();
  const name = `${prefix}-snap`;
  const KEEP = 2;
  let dir: string;
  let configFile: string;

  const config = (extra: string) =>
    `containers:\n  ${name}:\n    image: ${BUSYBOX_IMAGE}\n    cmd: ["sleep", "1000000"]\n    startAfterCreate: true\n${extra}storage:\n  keepSnapshots: ${KEEP}\n`;
  const setup = async (yaml: string) => {
    await writeFile(configFile, yaml);
    return runCli(['--config', configFile, 'setup', '--work-dir', join(dir, 'work')]);
  };
  const exec = (cmd: string) => execIn(docker, name, ['sh', '-c', cmd]);
  const snapshotsOf = async (): Promise<{ ref: string; id: string }[]> => JSON.parse((await runCli(['snapshots', name, '--json'])).stdout);

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), `${prefix}-`));
    configFile = join(dir, 'config.yaml');
  });
  afterAll(async () => {
    await cleanupByPrefix(prefix, docker);
    for (const image of await docker.listImages({ filters: { reference: [`skiff-core-snapshot/${name}`] } }))
      await docker
        .getImage(image.Id)
        .remove({ force: true })
        .catch(() => undefined);
    await rm(dir, { recursive: true, force: true });
  });

  it(`keeps ${KEEP} snapshots through ${2 * KEEP + 1} config changes, the newest the current container's, and the files`, async () => {
    expect((await setup(config(''))).code).toBe(0);
    await exec('echo kept > /root/file');
    for (let i = 1; i <= 2 * KEEP + 1; i++) {
      const r = await setup(config(`    env: ["EDITION=${i}"]\n`));
      expect(r.code, r.stdout + r.stderr).toBe(0);
      const list = await snapshotsOf();
      expect(list).toHaveLength(Math.min(i, KEEP));
      if (i > KEEP) expect(r.stdout).toContain(`removed 1 old snapshot (storage.keepSnapshots: ${KEEP})`);
      // The container was recreated from the newest one: the way back is never pruned.
      const current = await docker.getContainer(name).inspect();
      expect(list[0]!.id).toBe(current.Image);
      expect(await exec('echo $EDITION; cat /root/file')).toBe(`${i}\nkept\n`);
    }
    const human = await runCli(['snapshots', name]);
    expect(human.stdout).toMatch(new RegExp(`^${name} +skiff-core-snapshot/${name}:\\d{8}-\\d{6}-\\d{3} +\\d+s ago +[\\d.]+ MiB$`, 'm'));
  }, 180_000);

  it('a replacement whose new container cannot start puts the old one back, running, with its files', async () => {
    const before = await docker.getContainer(name).inspect();
    await exec('echo precious > /root/precious');
    const r = await setup(config('    entrypoint: ["/no/such/program"]\n    env: ["EDITION=9"]\n'));
    expect(r.code).toBe(1);
    expect(r.stdout + r.stderr).toContain('the previous container was put back');
    const after = await docker.getContainer(name).inspect();
    expect(after.Id).toBe(before.Id);
    expect(after.State.Running).toBe(true);
    expect(await exec('cat /root/precious /root/file')).toBe('precious\nkept\n');
    // No parked or half-made container is left, and the failed attempt left no snapshot (the
    // daemon retries a failing change: each attempt would add one).
    const names = (await docker.listContainers({ all: true })).flatMap((c) => c.Names).filter((n) => n.includes(name));
    expect(names).toEqual([`/${name}`]);
    const kept = await snapshotsOf();
    expect((await setup(config('    entrypoint: ["/no/such/program"]\n    env: ["EDITION=9"]\n'))).code).toBe(1);
    expect(await snapshotsOf()).toEqual(kept);
  }, 120_000);
});
