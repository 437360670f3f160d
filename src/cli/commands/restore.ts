import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { openBackup } from '../../backup/archive.js';
import { platformMismatch, type BackupManifest } from '../../backup/manifest.js';
import { renameFor } from '../../backup/retag.js';
import { checkContainerName } from '../../config/checks.js';
import { connectControl, type ControlClient } from '../../daemon/control-client.js';
import { controlSocketPath } from '../../daemon/control-protocol.js';
import { createDockerEngine } from '../../engine/docker-engine.js';
import type { Engine } from '../../engine/engine.js';
import { errorMessage, SkiffError } from '../../errors.js';
import { foreignName } from '../../reconcile/backup.js';
import { isManaged, SNAPSHOT_REPO_PREFIX, snapshotRef } from '../../reconcile/labels.js';
import { HELP_OPTION, parse } from '../args.js';
import type { Command } from '../command.js';
import { EXIT, writeLine } from '../io.js';
import { runDirFrom } from '../paths.js';
import { transferMeter } from '../render/transfer.js';

export const restore: Command = {
  path: ['restore'],
  summary: 'Bring a container back from a backup file, with its files and its config entry',
  help: `Usage: skiff-core restore FILE [--as NAME] [--run-dir DIR]

Loads a file "skiff-core backup" wrote (FILE "-" reads standard input), then asks the daemon to
make the container from its snapshot and to write its config entry as the drop-in
config.d/restored-NAME.yaml beside the config (which overrides an entry of that name in the main
file). A container of that name that skiff-core made is replaced, and what it held becomes a
snapshot ("skiff-core rollback NAME" goes back to it).

Refused, with nothing changed, when the backup is of another architecture, when a container of
that name exists that skiff-core did not make, or when the entry does not fit the config.

Options:
  --as NAME   restore under another container name
  -h, --help  show this help`,
  async run(argv, ctx) {
    const { values, positionals } = parse(argv, { ...HELP_OPTION, as: { type: 'string' }, 'run-dir': { type: 'string' } }, 1);
    if (values.help) {
      writeLine(ctx.io.stdout, this.help);
      return EXIT.ok;
    }
    const [file] = positionals;
    if (!file) {
      writeLine(ctx.io.stderr, 'skiff-core: restore needs a backup file (skiff-core restore FILE, "-" for stdin)');
      return EXIT.usage;
    }
    if (file === '-' && process.stdin.isTTY) {
      writeLine(ctx.io.stderr, 'skiff-core: restore - reads the backup from standard input; pipe or redirect it in');
      return EXIT.usage;
    }
    const badName = values.as === undefined ? undefined : checkContainerName(values.as);
    if (badName) {
      writeLine(ctx.io.stderr, `skiff-core: --as: ${badName}`);
      return EXIT.usage;
    }
    const source = file === '-' ? 'standard input' : file;
    let client: ControlClient | undefined;
    try {
      // Before reading gigabytes: is there a daemon to hand the container to?
      client = await connectControl(controlSocketPath(runDirFrom(values['run-dir'], ctx.io.env)));
      const total = file === '-' ? undefined : (await stat(file)).size;
      const input = file === '-' ? process.stdin : createReadStream(file, { highWaterMark: 1 << 20 });
      const meter = transferMeter(ctx.io, `restoring from ${source}`, total);
      input.on('error', (err: Error) => meter.counter.destroy(err));
      try {
        const { manifest, images } = await openBackup(input.pipe(meter.counter), source, (m) =>
          renameFor({ snapshot: m.snapshot, image: m.image, snapshotAs: staged(m).snapshot, imageAs: staged(m).image }),
        );
        const name = values.as ?? manifest.container;
        const engine = createDockerEngine();
        const refusal = await refuse(engine, manifest, name);
        if (refusal) {
          images.destroy();
          throw new SkiffError('USAGE', refusal);
        }
        await engine.loadImages(images);
        const snapshot = await nameLoaded(engine, manifest, name, source);
        meter.close();
        const result = (await client.call('restore', { name, snapshot, entry: manifest.entry })) as { message: string; dropIn: string };
        writeLine(ctx.io.stdout, `${name}: ${result.message}; its config entry is ${result.dropIn}`);
        return EXIT.ok;
      } finally {
        meter.close();
      }
    } catch (err) {
      writeLine(ctx.io.stderr, `skiff-core: restore from ${source}: ${errorMessage(err)}`);
      return EXIT.failure;
    } finally {
      client?.close();
    }
  },
};

/** The names a backup's images are loaded under, in use by nothing else (see backup/retag.ts). */
function staged(manifest: BackupManifest): { snapshot: string; image: string } {
  const repo = `skiff-core-restore/${manifest.container.toLowerCase()}`;
  const stamp = manifest.snapshot.split(':').pop();
  return { snapshot: `${repo}:${stamp}-files`, image: `${repo}:${stamp}-image` };
}

/**
 * Gives the loaded images their names and returns the snapshot's. The image keeps its local
 * version if there is one (other containers may run from it; the restored container counts as up
 * to date with it, as after a rollback). The snapshot is named for container `name`, with the
 * backup's time, or the time now if a different snapshot has that name.
 */
async function nameLoaded(engine: Engine, manifest: BackupManifest, name: string, source: string): Promise<string> {
  const loaded = staged(manifest);
  const files = await engine.inspectImage(loaded.snapshot);
  const base = await engine.inspectImage(loaded.image);
  if (!files || !base) throw new SkiffError('BACKUP_INVALID', `${source} did not hold ${files ? manifest.image : manifest.snapshot}`);
  if (!(await engine.inspectImage(manifest.image))) await engine.tagImage(loaded.image, manifest.image);
  let snapshot = `${SNAPSHOT_REPO_PREFIX}${name.toLowerCase()}:${manifest.snapshot.split(':').pop()}`;
  const taken = await engine.inspectImage(snapshot);
  if (taken && taken.id !== files.id) {
    const fresh = snapshotRef(name, new Date());
    snapshot = `${fresh.repo}:${fresh.tag}`;
  }
  if (taken?.id !== files.id) await engine.tagImage(loaded.snapshot, snapshot);
  for (const ref of [loaded.snapshot, loaded.image]) await engine.removeImage(ref).catch(() => undefined);
  return snapshot;
}

/** Why this backup must not be restored here as `name`, checked before anything is loaded. */
async function refuse(engine: Engine, manifest: Parameters<typeof platformMismatch>[0], name: string): Promise<string | undefined> {
  const badName = checkContainerName(name);
  if (badName) return `the backup names its container ${badName}`;
  const mismatch = platformMismatch(manifest, await engine.ping());
  if (mismatch) return mismatch;
  const existing = await engine.inspectContainer(name);
  if (existing && !isManaged(existing.labels)) return foreignName(name);
  return undefined;
}
