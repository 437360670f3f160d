// The benchmark's own leftovers: its daemons, containers, images and temp folder go at the end,
// on a failure, and on Ctrl-C.
import { rmSync } from 'node:fs';
import type { DaemonHandle } from './daemon.js';
import { liveChildren, restrictSpawning, timed } from './proc.js';
import { say } from './report.js';

// --- cleanup ------------------------------------------------------------------------------------
export const daemons = new Set<DaemonHandle>();
/** This run's name run.prefix and temp folder, set once main() has them. */
export const run = { prefix: '', tmp: '' };
let cleaning: Promise<void> | undefined;
export const isCleaning = () => cleaning !== undefined;

export async function cleanup(): Promise<void> {
  cleaning ??= (async () => {
    // Whatever the measures were doing, nothing new starts now but the removals below.
    restrictSpawning((cmd, args) => cmd === 'docker' && ['rm', 'ps', 'image', 'rmi'].includes(args[0] ?? ''));
    for (const d of daemons) await d.stop().catch(() => undefined);
    for (const child of liveChildren()) {
      if (child.pid !== undefined && child.exitCode === null) {
        try {
          process.kill(child.pid, 'SIGKILL');
        } catch {
          // already gone
        }
      }
    }
    if (run.prefix) {
      // The device first: its daemon would recreate the containers removed below.
      await timed('docker', ['rm', '-f', `${run.prefix}-device`]).catch(() => undefined);
      const names = await timed('docker', ['ps', '-a', '--format', '{{.Names}}']).catch(() => undefined);
      const ours = (names?.stdout.toString() ?? '').split('\n').filter((n) => n.startsWith(`${run.prefix}-`));
      if (ours.length) {
        say(`cleanup: removing ${ours.length} container(s)`);
        await timed('docker', ['rm', '-f', ...ours], { timeoutMs: 300_000 }).catch(() => undefined);
      }
      const images = await timed('docker', ['image', 'ls', '--format', '{{.Repository}}:{{.Tag}}']).catch(() => undefined);
      // Also the snapshots the daemon took of our containers, and what a restore left loaded.
      const repos = ['', 'skiff-core-snapshot/', 'skiff-core-restore/'].map((repo) => `${repo}${run.prefix}-`);
      const ourImages = (images?.stdout.toString() ?? '').split('\n').filter((n) => repos.some((r) => n.startsWith(r)));
      if (ourImages.length) await timed('docker', ['rmi', '-f', ...ourImages]).catch(() => undefined);
    }
    if (run.tmp) rmSync(run.tmp, { recursive: true, force: true });
  })();
  return cleaning;
}

// `on`, not `once`: Ctrl-C reaches npm, tsx and us, and tsx relays it again; a second signal
// without a listener would end the process in the middle of the cleanup.
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
  process.on(signal, () => {
    if (cleaning) return;
    say(`${signal}: cleaning up (containers and images named ${run.prefix || 'skb-…'}-*)`);
    void cleanup().finally(() => process.exit(130));
  });
}
process.once('exit', () => {
  // Last resort (an exit without cleanup): no daemon of ours may outlive the benchmark.
  for (const d of daemons) {
    try {
      process.kill(d.pid, 'SIGKILL');
    } catch {
      // gone
    }
  }
});
