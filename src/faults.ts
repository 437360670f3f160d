// Named points where the tests' fault bundle (dist/skiff-core-faults.mjs) kills its own process
// when SKIFF_CORE_FAULT names the point, to prove that a crash at any step of a create or a
// replacement loses nothing. In dist/skiff-core.mjs SKIFF_CORE_FAULTS is false and esbuild drops
// the body; run from source, the constant does not exist and nothing happens either.
export type FaultPoint =
  | 'config-written'
  | 'created'
  | 'started'
  | 'ready'
  | 'snapshot-committed'
  | 'parked'
  | 'replacement-created'
  | 'replacement-started'
  | 'parked-removed'
  | 'snapshots-pruned';

export function faultPoint(point: FaultPoint): void {
  if (typeof SKIFF_CORE_FAULTS !== 'undefined' && SKIFF_CORE_FAULTS && process.env.SKIFF_CORE_FAULT === point) {
    process.kill(process.pid, 'SIGKILL');
  }
}
