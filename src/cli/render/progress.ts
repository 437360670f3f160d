// Shows converge progress: a live block of lines (one per image/container) on a terminal, plain
// lines on a pipe or journal. Pure formatting is separate from the writer so it can be tested.
import { describeEvent } from '../../reconcile/describe.js';
import type { ProgressEvent } from '../../reconcile/events.js';

export interface ProgressView {
  onEvent(event: ProgressEvent): void;
  /** Leave the terminal clean for what is printed next. */
  close(): void;
}

function keyOf(event: ProgressEvent): string {
  return event.kind === 'image' ? `image ${event.ref}` : `container ${event.name}`;
}

/** Plain lines: each change of phase, and pull progress at most every 10 percentage points. */
export function lineProgress(write: (line: string) => void): ProgressView {
  const lastPhase = new Map<string, string>();
  const lastPct = new Map<string, number>();
  return {
    onEvent(event) {
      const key = keyOf(event);
      if (event.kind === 'image' && event.phase === 'pulling') {
        const { current, total } = event.progress;
        const pct = total > 0 ? Math.floor((current / total) * 10) * 10 : 0;
        if (lastPhase.get(key) === 'pulling' && (lastPct.get(key) ?? -1) >= pct) return;
        lastPct.set(key, pct);
      } else if (event.kind === 'image' && event.phase === 'building' && event.progress.kind === 'output') {
        // Build output goes out as it comes: it is what a person debugging a build needs.
      } else if (event.kind === 'container' && lastPhase.get(key) === `${event.phase}:${event.message ?? ''}`) {
        return;
      }
      lastPhase.set(key, event.kind === 'container' ? `${event.phase}:${event.message ?? ''}` : event.phase);
      write(describeEvent(event));
    },
    close() {},
  };
}

/** A block of lines redrawn in place, at most ten times a second. */
export function liveProgress(stream: NodeJS.WritableStream & { columns?: number }): ProgressView {
  const lines = new Map<string, string>();
  let drawn = 0;
  let timer: NodeJS.Timeout | undefined;
  const draw = () => {
    timer = undefined;
    const width = Math.max(20, (stream.columns ?? 100) - 1);
    let out = drawn > 0 ? `\u001b[${drawn}F` : '';
    for (const line of lines.values()) out += `\u001b[2K${line.slice(0, width)}\n`;
    drawn = lines.size;
    stream.write(out);
  };
  return {
    onEvent(event) {
      lines.set(keyOf(event), describeEvent(event, true));
      timer ??= setTimeout(draw, 100);
    },
    close() {
      if (timer) clearTimeout(timer);
      if (lines.size > 0) draw();
    },
  };
}
