// `skiff-core backup` and `restore` against the real engine and a running daemon: a container's
// files survive the loss of the container and its images, through a file and through a pipe,
// and a restore refuses, changing nothing, what it must not do.
import { execFileSync, spawnSync } from 'node:child_process';
import { createReadStream, createWriteStream, existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { openBackup, packBackup } from '../../src/backup/archive.js';
import type { StatusSnapshot } from '../../src/daemon/status.js';
import { CLI, runCli } from './helpers/cli.js';
import { daemonPaths, startDaemonProcess, type DaemonPaths, type DaemonProcess } from './helpers/daemon.js';
import { BUSYBOX_IMAGE, cleanupByPrefix, integrationSkipReason, testDocker, uniquePrefix } from './helpers/engine.js';

const running = (s: StatusSnapshot, name: string) => s.containers.some((c) => c.name === name && c.state === 'running');
const docker = (...args: string[]) => execFileSync('docker', args, { encoding: 'utf8' }).trim();
const inside = (name: string, cmd: string) => docker('exec', name, 'sh', '-c', cmd);

describe.skipIf(integrationSkipReason())('backup and restore (real engine, daemon)', () => {
  const prefix = uniquePrefix();
  const name = `${prefix}-core`;
  const image = `${prefix}-base:1`;
  let dir: string;
  let paths: DaemonPaths;
  let daemon: DaemonProcess | undefined;
  const cli = (...args: string[]) => runCli(['--config', paths.config, ...args, '--run-dir', paths.runDir]);
  const entry = (n: string) =>
    `  ${n}:\n    image: ${image}\n    cmd: ["sleep", "1000000"]\n    startAfterCreate: true\n    restartPolicy: always\n`;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), `${prefix}-`));
    execFileSync('docker', ['build', '-q', '-t', image, '-'], { input: `FROM ${BUSYBOX_IMAGE}\nRUN echo base > /base\n` });
    paths = daemonPaths(dir);
    await mkdir(join(dir, 'persist'), { recursive: true });
  });
  afterEach(async () => {
    await daemon?.stop('SIGKILL');
    daemon = undefined;
  });
  afterAll(async () => {
    await cleanupByPrefix(prefix, testDocker());
    await rm(dir, { recursive: true, force: true });
  });

  /** As on a new device: no container, none of its images, a config without it. */
  async function loseEverything() {
    await daemon?.stop();
    daemon = undefined;
    docker('rm', '-f', name);
    const snapshots = docker('images', '--format', '{{.Repository}}:{{.Tag}}', `skiff-core-snapshot/${name}`).split('\n').filter(Boolean);
    docker('rmi', image, ...snapshots);
    await rm(join(dir, 'persist', 'config.d'), { recursive: true, force: true });
    await writeFile(paths.config, 'containers: {}\n');
    daemon = await startDaemonProcess(paths);
  }

  it('brings a container back with its files after the container and its images are gone, from a file and from a pipe', async () => {
    await writeFile(paths.defconfig, `containers:\n${entry(name)}`);
    daemon = await startDaemonProcess(paths);
    await daemon.until((s) => running(s, name), `${name} running`);
    inside(name, 'echo mine > /root/mine');

    const file = join(dir, 'core.tar');
    const backedUp = await cli('backup', name, file);
    expect(backedUp, JSON.stringify(backedUp)).toMatchObject({ code: 0 });
    expect(backedUp.stdout).toMatch(
      new RegExp(`^${name}: backed up to ${file} \\(\\d+ [KMG]B; snapshot skiff-core-snapshot/${name}:\\S+\\)`),
    );
    // A pipe, as `ssh root@device skiff-core backup core - > core.tar` makes it.
    const piped = join(dir, 'piped.tar');
    const viaPipe = spawnSync(
      'sh',
      [
        '-c',
        `"${process.execPath}" "${CLI}" --config "$1" backup "$2" - --run-dir "$3" | cat > "$4"`,
        'sh',
        paths.config,
        name,
        paths.runDir,
        piped,
      ],
      {
        encoding: 'utf8',
        env: { ...process.env, NO_COLOR: '1', SKIFF_CORE_USERS: 'lookup' },
      },
    );
    expect(viaPipe.status, viaPipe.stderr).toBe(0);
    expect(viaPipe.stderr).toContain(`${name}: backed up to standard output`);
    expect((await readFile(piped)).subarray(0, 22).toString()).toBe('skiff-core-backup.json');

    const original = docker('inspect', '-f', '{{.Id}}', image);
    await loseEverything();
    expect(spawnSync('docker', ['image', 'inspect', image]).status).not.toBe(0);
    const restored = await cli('restore', file);
    expect(restored, JSON.stringify(restored)).toMatchObject({ code: 0 });
    expect(restored.stdout).toContain(`${name}: restored from snapshot skiff-core-snapshot/${name}:`);
    expect(restored.stdout).toContain(join(dir, 'persist', 'config.d', `restored-${name}.yaml`));
    await daemon!.until((s) => running(s, name) && s.config.ok, `${name} running after the restore`);
    expect(inside(name, 'cat /root/mine /base')).toBe('mine\nbase');
    expect(docker('inspect', '-f', '{{.Id}}', image)).toBe(original);
    // The daemon keeps it: a pass changes nothing.
    const id = docker('inspect', '-f', '{{.Id}}', name);
    expect((await cli('reload')).code).toBe(0);
    expect(docker('inspect', '-f', '{{.Id}}', name)).toBe(id);

    // Restoring over a container skiff-core made replaces it; what it held is a snapshot to go back to.
    inside(name, 'echo later > /root/later');
    const again = await cli('restore', file);
    expect(again, JSON.stringify(again)).toMatchObject({ code: 0 });
    expect(again.stdout).toContain('restoring a backup: recreated from snapshot');
    expect(inside(name, 'cat /root/later 2>/dev/null || echo gone')).toBe('gone');
    const back = await cli('rollback', name);
    expect(back, JSON.stringify(back)).toMatchObject({ code: 0 });
    expect(inside(name, 'cat /root/later /root/mine')).toBe('later\nmine');

    // From a pipe, under another name. A newer local version of the image keeps its name (other
    // containers may run from it), and no name of the restore's own is left behind.
    execFileSync('docker', ['build', '-q', '-t', image, '-'], { input: `FROM ${BUSYBOX_IMAGE}\nRUN echo newer > /base\n` });
    const newer = docker('inspect', '-f', '{{.Id}}', image);
    const other = `${prefix}-copy`;
    const fromPipe = spawnSync(
      'sh',
      [
        '-c',
        `cat "$1" | "${process.execPath}" "${CLI}" --config "$2" restore - --as "$3" --run-dir "$4"`,
        'sh',
        piped,
        paths.config,
        other,
        paths.runDir,
      ],
      {
        encoding: 'utf8',
        env: { ...process.env, NO_COLOR: '1', SKIFF_CORE_USERS: 'lookup' },
      },
    );
    expect(fromPipe.status, fromPipe.stderr).toBe(0);
    await daemon!.until((s) => running(s, other), `${other} running`);
    expect(inside(other, 'cat /root/mine /base')).toBe('mine\nbase');
    expect(docker('inspect', '-f', '{{.Id}}', image)).toBe(newer);
    expect(docker('images', '-q', `skiff-core-restore/${name}`)).toBe('');
  }, 300_000);

  it('refuses, changing nothing, a backup of another architecture, a name skiff-core did not make, and a file that is not a backup', async () => {
    await rm(join(dir, 'persist', 'config.d'), { recursive: true, force: true });
    spawnSync('docker', ['rm', '-f', `${prefix}-copy`]);
    await writeFile(paths.config, `containers:\n${entry(name)}`);
    daemon = await startDaemonProcess(paths);
    await daemon.until((s) => running(s, name), `${name} running`);
    const file = join(dir, 'refuse.tar');
    expect((await cli('backup', name, file)).code).toBe(0);

    // The same backup, claiming another architecture.
    const { manifest, images } = await openBackup(createReadStream(file), file);
    const foreignArch = join(dir, 'arm.tar');
    const arch = docker('version', '-f', '{{.Server.Arch}}') === 'arm64' ? 'amd64' : 'arm64';
    await pipeline(
      packBackup({ ...manifest, platform: { ...manifest.platform, architecture: arch } }, images),
      createWriteStream(foreignArch),
    );
    const wrongArch = await cli('restore', foreignArch, '--as', `${prefix}-arch`);
    expect(wrongArch.code).toBe(1);
    expect(wrongArch.stderr).toContain(`holds linux/${arch} files and this device runs linux/`);

    // An entry that does not fit this device's config: named by the drop-in it would be, line and column.
    const badEntry = join(dir, 'bad-entry.tar');
    const again = await openBackup(createReadStream(file), file);
    await pipeline(
      packBackup({ ...again.manifest, entry: { ...again.manifest.entry, memory: 'lots' } }, again.images),
      createWriteStream(badEntry),
    );
    const misfit = await cli('restore', badEntry, '--as', `${prefix}-misfit`);
    expect(misfit.code).toBe(1);
    expect(misfit.stderr).toMatch(
      new RegExp(`does not fit this device's config:\\n.*config\\.d/restored-${prefix}-misfit\\.yaml:\\d+:\\d+`),
    );
    expect(docker('ps', '-a', '--format', '{{.Names}}', '--filter', `name=${prefix}-misfit`)).toBe('');

    const foreign = `${prefix}-foreign`;
    docker('run', '-d', '--name', foreign, BUSYBOX_IMAGE, 'sleep', '1000000');
    const taken = await cli('restore', file, '--as', foreign);
    expect(taken.code).toBe(1);
    expect(taken.stderr).toContain(`a container named "${foreign}" exists and skiff-core did not create it`);
    expect(docker('inspect', '-f', '{{.Config.Image}}', foreign)).toBe(BUSYBOX_IMAGE);

    const notBackup = join(dir, 'not.tar');
    await writeFile(notBackup, 'hello\n');
    const junk = await cli('restore', notBackup);
    expect(junk.code).toBe(1);
    expect(junk.stderr).toContain(`${notBackup} is not a skiff-core backup`);

    expect(existsSync(join(dir, 'persist', 'config.d'))).toBe(false);
    expect(docker('ps', '-a', '--format', '{{.Names}}', '--filter', `name=${prefix}-arch`)).toBe('');
  }, 180_000);
});
