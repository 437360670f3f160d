// Measure 10: `skiff-core backup` and `restore` of a container with data in it, next to what a
// person would type without skiff-core: docker commit + docker save, and docker load + create +
// start.
import { stat, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { BUNDLE, CFG, DEBIAN_IMAGE } from '../lib/config.js';
import type { BenchContext } from '../lib/context.js';
import { check, mb } from '../lib/helpers.js';
import { timed } from '../lib/proc.js';
import { noteLoad, raw, rows, say, side } from '../lib/report.js';
import { median, round } from '../lib/stats.js';

export async function measureBackup(ctx: BenchContext): Promise<void> {
  const { c0, paths, daemonEnv, prefix, tmp, dexec } = ctx;
  const n = CFG.backupPairs;
  say(`10 backup/restore: ${n} pairs of skiff-core backup | docker commit + save, then restore --as | docker load + create + start`);
  noteLoad('10');
  check(await dexec([c0, 'sh', '-c', `head -c ${CFG.backupBytes} /dev/urandom > /root/skb-blob`]), 'writing the data to back up');
  const cli = (args: string[]) =>
    timed(process.execPath, [BUNDLE, '--config', paths.config, ...args, '--run-dir', paths.runDir], { env: daemonEnv, timeoutMs: 600_000 });
  const sh = (script: string) => timed('sh', ['-c', script], { timeoutMs: 600_000 });
  const samples = { backup: [] as number[], save: [] as number[], restore: [] as number[], load: [] as number[] };
  const sizes = { backup: [] as number[], save: [] as number[] };
  for (let i = 0; i < n; i++) {
    const file = join(tmp, `backup-${i}.tar`);
    const saved = join(tmp, `save-${i}.tar`);
    const image = `${prefix}-bk:${i}`;
    const restored = `${prefix}-r${i}`;
    const loaded = `${prefix}-l${i}`;

    const b = await cli(['backup', c0, file]);
    check(b, 'skiff-core backup');
    samples.backup.push(b.ms);
    sizes.backup.push((await stat(file)).size);
    const s = await sh(`docker commit ${c0} ${image} >/dev/null && docker save -o ${saved} ${image} ${DEBIAN_IMAGE}`);
    check(s, 'docker commit + save');
    samples.save.push(s.ms);
    sizes.save.push((await stat(saved)).size);

    const r = await cli(['restore', file, '--as', restored]);
    check(r, 'skiff-core restore');
    samples.restore.push(r.ms);
    const l = await sh(
      `docker load -q -i ${saved} >/dev/null && docker create --name ${loaded} ${image} >/dev/null && docker start ${loaded} >/dev/null`,
    );
    check(l, 'docker load + create + start');
    samples.load.push(l.ms);
    check(await dexec([restored, 'test', '-s', '/root/skb-blob']), 'the restored container has the data');

    // Out of the config first, or the daemon would make the container again.
    await rm(join(dirname(paths.config), 'config.d', `restored-${restored}.yaml`), { force: true });
    check(await cli(['reload']), 'reload after removing the drop-in');
    await sh(`docker rm -f ${restored} ${loaded} >/dev/null; docker rmi ${image} >/dev/null`);
    await rm(file, { force: true });
    await rm(saved, { force: true });
  }
  raw.backup = { samplesMs: samples, bytes: sizes };
  const note = `file ${mb(median(sizes.backup))} MB vs docker save ${mb(median(sizes.save))} MB, ${mb(CFG.backupBytes)} MB written in the container`;
  /** A row comparing medians, with the target this measure sets for both. */
  const row = (id: string, measure: string, skiff: number[], baseline: number[], extra: { note?: string } = {}) => {
    const ratio = median(skiff) / median(baseline);
    rows.push({
      id,
      measure,
      unit: 'ms',
      skiff: side(skiff),
      baseline: side(baseline),
      ratio: round(ratio, 2),
      ratioOf: 'median',
      target: 'ratio ≤ 1.2',
      met: ratio <= 1.2,
      ...extra,
    });
  };
  row('10a', 'backup of a container (snapshot + image + config entry) vs docker commit + docker save', samples.backup, samples.save, {
    note,
  });
  row(
    '10b',
    'restore under a new name (load, container made and started, config entry) vs docker load + create + start',
    samples.restore,
    samples.load,
  );
  say(
    `10 backup ${round(median(samples.backup))} ms vs ${round(median(samples.save))} ms; restore ${round(median(samples.restore))} ms vs ${round(median(samples.load))} ms`,
  );
}
