// Measure 7: an idle converge pass over many containers (the periodic relist's cost).
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { configYaml, startDaemon, waitConverged, type ContainerDef, type DaemonPaths } from '../lib/daemon.js';
import { sleep } from '../lib/proc.js';
import { median, p95, round } from '../lib/stats.js';
import { BUSYBOX_IMAGE, CFG } from '../lib/config.js';
import type { BenchContext } from '../lib/context.js';
import { daemons } from '../lib/lifecycle.js';
import { noteLoad, raw, rows, say, side } from '../lib/report.js';

export async function measureReconcile(ctx: BenchContext) {
  const { prefix, tmp, containers, userDefs, paths, daemonEnv } = ctx;
  const count = Math.max(CFG.reconcileContainers, 1);
  say(`7 idle reconcile: ${count} containers in place, ${CFG.reconcileStarts} daemon starts`);
  noteLoad('7');
  const all: ContainerDef[] = Array.from({ length: count }, (_, i) =>
    i < containers.length ? containers[i]! : { name: `${prefix}-c${i}`, image: BUSYBOX_IMAGE, cmd: ['sleep', '1000000'] },
  );
  const mapped = userDefs.filter((u) => all.some((c) => c.name === u.container));
  const p7: DaemonPaths = { ...paths, config: join(tmp, 'persist7', 'config.yaml'), runDir: join(tmp, 'run7') };
  await mkdir(dirname(p7.config), { recursive: true });
  await writeFile(p7.config, configYaml(all, mapped));
  const names = all.map((c) => c.name);
  const userNames = mapped.map((u) => u.name);
  // Put them in place (the first start creates what is missing).
  {
    const d = await startDaemon(p7, daemonEnv);
    daemons.add(d);
    await waitConverged(d, names, userNames, 300_000, 100);
    await d.stop();
    daemons.delete(d);
  }
  const afterEngine: number[] = [];
  const fromSpawn: number[] = [];
  const engineAfterSpawn: number[] = [];
  const changed: string[] = [];
  for (let i = 0; i < CFG.reconcileStarts; i++) {
    await sleep(500);
    const d = await startDaemon(p7, daemonEnv);
    daemons.add(d);
    const snap = await waitConverged(d, names, userNames, 120_000, 10);
    const reachable = await d.logged('Docker engine reachable', 5000);
    const engineAt = Date.parse(reachable.time ?? '');
    const convAt = Date.parse(snap.reconcile.lastRunAt ?? '');
    afterEngine.push(convAt - engineAt);
    fromSpawn.push(convAt - d.spawnedAt);
    engineAfterSpawn.push(engineAt - d.spawnedAt);
    // An idle pass changes nothing; anything logged as converged means it did work.
    for (const e of d.logs) if (e.msg === 'Converged' || e.msg === 'Not converged') changed.push(`${String(e.item)}: ${String(e.status)}`);
    await d.stop();
    daemons.delete(d);
  }
  raw.reconcile = {
    containers: count,
    afterEngineMs: afterEngine,
    fromSpawnMs: fromSpawn,
    engineReachableAfterSpawnMs: engineAfterSpawn,
    changesSeen: changed,
  };
  rows.push({
    id: '7',
    measure: `idle reconcile, ${count} containers in place: engine answered → converged`,
    unit: 'ms',
    skiff: side(afterEngine),
    target: '≤ 300 ms',
    met: p95(afterEngine) <= 300,
    note: `process spawn → converged ${round(median(fromSpawn))} ms median (engine answered ${round(median(engineAfterSpawn))} ms after spawn)${changed.length ? `; NOT idle: ${changed.slice(0, 3).join(', ')}` : ''}`,
  });
  say(`7 converge after engine ${round(median(afterEngine))} ms median, spawn→converged ${round(median(fromSpawn))} ms`);
}
