// What the benchmark runs against and how much of it: paths, images, and the knobs (BENCH_*).
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { MB } from './proc.js';

export const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const BUNDLE = join(REPO, 'dist', 'skiff-core.mjs');
/** The compiled launcher: the login client (`-c CMD`) every mapped user's login runs. */
export const LAUNCHER = join(REPO, 'dist', 'skiff-core-launcher');
export const DEBIAN_IMAGE = 'skiff-core-test/debian-systemd:bookworm';
export const BUSYBOX_IMAGE = 'skiff-core-test/busybox:latest';
export const GiB = 1024 * 1024 * 1024;

// --- knobs ------------------------------------------------------------------------------------
export const QUICK = process.env.BENCH_QUICK === '1';
function int(name: string, quick: number, full: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return QUICK ? quick : full;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < 0) throw new Error(`${name} must be a non-negative integer, not ${raw}`);
  return value;
}
export const CFG = {
  quick: QUICK,
  latencyPairs: int('BENCH_LATENCY_PAIRS', 10, 40),
  streamBytes: int('BENCH_STREAM_BYTES', 128 * MB, GiB),
  streamPairs: int('BENCH_STREAM_PAIRS', 2, 3),
  concurrency: int('BENCH_CONCURRENCY', 30, 100),
  concurrencyRounds: int('BENCH_CONCURRENCY_ROUNDS', 2, 3),
  memoryPairs: int('BENCH_MEMORY_PAIRS', 3, 5),
  sshPairs: int('BENCH_SSH_PAIRS', 5, 20),
  reconcileContainers: int('BENCH_RECONCILE_CONTAINERS', 20, 20),
  reconcileStarts: int('BENCH_RECONCILE_STARTS', 3, 10),
  slowSeconds: int('BENCH_SLOW_SECONDS', 5, 20),
  slowRate: int('BENCH_SLOW_RATE', 10_000, 10_000),
  warmup: int('BENCH_WARMUP', 2, 3),
  /** Idle time before each measured command of measure 1 (both sides), as between real logins. */
  gapMs: int('BENCH_GAP_MS', 300, 300),
  restartSessions: int('BENCH_RESTART_SESSIONS', 10, 20),
  backupPairs: int('BENCH_BACKUP_PAIRS', 1, 3),
  /** Written into the container before measure 10, so the snapshot holds more than the image. */
  backupBytes: int('BENCH_BACKUP_BYTES', 16 * MB, 128 * MB),
};
export const ONLY = new Set((process.env.BENCH_ONLY ?? '1,2,3,4,5,6,7,8,9,10').split(',').map((s) => Number(s.trim())));
export const OUT = resolve(process.env.BENCH_OUT ?? join(REPO, 'bench', 'results.json'));
