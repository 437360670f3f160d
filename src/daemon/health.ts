// Whether `skiff-core status` may exit 0, and if not, which row is wrong and why. Pure: the
// snapshot and the clock in, sentences out.
import type { ContainerStatus, StatusSnapshot } from './status.js';

/**
 * A container that the engine restarted and that has been up for less than this since is taken
 * to be in a crash loop. Docker resets its restart back-off after 10 s of uptime, so a loop
 * restarts well inside a minute; one restart followed by a minute of calm is history, not a loop.
 */
export const CRASH_LOOP_WINDOW_MS = 60_000;

/** Why the state is not as configured and healthy; empty when status may exit 0. */
export function unhealthyReasons(s: StatusSnapshot, now = Date.now()): string[] {
  const reasons: string[] = [];
  if (!s.daemon.running) reasons.push('daemon: not running');
  if (!s.config.ok)
    reasons.push(`config: ${s.config.errors.length} error${s.config.errors.length === 1 ? '' : 's'} (the last good config stays in force)`);
  if (!s.engine.reachable) reasons.push(`engine: not reachable${s.engine.error ? ` (${s.engine.error})` : ''}`);
  for (const i of s.images) {
    if (i.state !== 'present') reasons.push(`image ${i.ref}: ${i.state}${i.message ? ` (${firstLine(i.message)})` : ''}`);
  }
  for (const c of s.containers) {
    const why = containerReason(c, now);
    if (why) reasons.push(`container ${c.name}: ${why}`);
  }
  return reasons;
}

function containerReason(c: ContainerStatus, now: number): string | undefined {
  if (c.problem) return firstLine(c.problem);
  if (c.state !== 'running') return c.state;
  const restarts = c.restartCount ?? 0;
  if (restarts > 0) {
    const upMs = c.startedAt ? now - Date.parse(c.startedAt) : 0;
    if (!(upMs >= CRASH_LOOP_WINDOW_MS)) {
      return `crash loop: the engine restarted it ${restarts} time${restarts === 1 ? '' : 's'}, the last ${Math.max(0, Math.round(upMs / 1000))} s ago`;
    }
  }
  return undefined;
}

function firstLine(text: string): string {
  return text.split('\n')[0] ?? text;
}
