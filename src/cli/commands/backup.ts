import { randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { open, rename, rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { packBackup } from '../../backup/archive.js';
import type { BackupManifest } from '../../backup/manifest.js';
import { connectControl } from '../../daemon/control-client.js';
import { controlSocketPath } from '../../daemon/control-protocol.js';
import { createDockerEngine } from '../../engine/docker-engine.js';
import { errorMessage } from '../../errors.js';
import { formatBytes } from '../../reconcile/disk-space.js';
import { HELP_OPTION, parse } from '../args.js';
import type { Command } from '../command.js';
import { EXIT, writeLine } from '../io.js';
import { runDirFrom } from '../paths.js';
import { transferMeter } from '../render/transfer.js';

export const backup: Command = {
  path: ['backup'],
  summary: "Write one file holding a container's files, its config entry and its image",
  help: `Usage: skiff-core backup NAME FILE [--run-dir DIR]

Asks the daemon for a fresh snapshot of container NAME (paused for the moment of the commit),
then writes FILE: a tar holding skiff-core-backup.json (the container's config entry, the
platform), the snapshot and the image it descends from. "skiff-core restore FILE" brings it back,
here or on another device of the same architecture. FILE "-" writes to standard output:

  ssh root@device skiff-core backup core - > core.tar

The file appears complete or not at all. The snapshot is kept like any other, so it is also a
point to roll back to ("skiff-core snapshots NAME").`,
  async run(argv, ctx) {
    const { values, positionals } = parse(argv, { ...HELP_OPTION, 'run-dir': { type: 'string' } }, 2);
    if (values.help) {
      writeLine(ctx.io.stdout, this.help);
      return EXIT.ok;
    }
    const [name, file] = positionals;
    if (!name || !file) {
      writeLine(ctx.io.stderr, 'skiff-core: backup needs a container name and a file (skiff-core backup NAME FILE, "-" for stdout)');
      return EXIT.usage;
    }
    if (file === '-' && ctx.io.stdout.isTTY) {
      writeLine(ctx.io.stderr, 'skiff-core: not writing a backup to a terminal; redirect standard output or give a FILE');
      return EXIT.usage;
    }
    // The summary goes where it does not mix with the backup's bytes.
    const report = file === '-' ? ctx.io.stderr : ctx.io.stdout;
    try {
      const manifest = await askForSnapshot(name, runDirFrom(values['run-dir'], ctx.io.env));
      const saved = await createDockerEngine().saveImages([manifest.snapshot, manifest.image]);
      const meter = transferMeter(ctx.io, `backing up ${name}`);
      try {
        const bytes = packBackup(manifest, saved);
        if (file === '-') await pipeline(bytes, meter.counter, ctx.io.stdout, { end: false });
        else await writeWhole(file, (out) => pipeline(bytes, meter.counter, out));
      } finally {
        meter.close();
      }
      const where = file === '-' ? 'standard output' : file;
      writeLine(report, `${name}: backed up to ${where} (${formatBytes(meter.bytes())}; snapshot ${manifest.snapshot})`);
      return EXIT.ok;
    } catch (err) {
      writeLine(ctx.io.stderr, `skiff-core: backup of ${name}: ${errorMessage(err)}`);
      return EXIT.failure;
    }
  },
};

async function askForSnapshot(name: string, runDir: string): Promise<BackupManifest> {
  const client = await connectControl(controlSocketPath(runDir));
  try {
    return (await client.call('backup', { name })) as BackupManifest;
  } finally {
    client.close();
  }
}

/** Writes `file` through a temp file beside it, synced and renamed: complete or absent. */
async function writeWhole(file: string, write: (out: NodeJS.WritableStream) => Promise<void>): Promise<void> {
  const temp = join(dirname(file), `.${basename(file)}.partial-${randomBytes(4).toString('hex')}`);
  try {
    // Large writes: with the default 16 KiB buffer, writing took a third longer than docker save.
    await write(createWriteStream(temp, { flags: 'wx', mode: 0o600, highWaterMark: 1 << 20 }));
    const handle = await open(temp, 'r');
    await handle.sync().finally(() => handle.close());
    await rename(temp, file);
  } catch (err) {
    await rm(temp, { force: true });
    throw err;
  }
}
