// One line of text for a progress event: what setup, status and a waiting login shell print.
import type { ProgressEvent } from './events.js';

function mib(bytes: number): string {
  return `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
}

function bar(fraction: number, width = 20): string {
  const filled = Math.round(Math.max(0, Math.min(1, fraction)) * width);
  return `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}]`;
}

/** One line describing an event (with a bar when the line is redrawn in place). */
export function describeEvent(event: ProgressEvent, withBar = false): string {
  if (event.kind === 'container') {
    return `container ${event.name}: ${event.phase}${event.message ? ` (${event.message})` : ''}`;
  }
  const head = `image ${event.ref}`;
  switch (event.phase) {
    case 'pulling': {
      const { current, total } = event.progress;
      if (total > 0) {
        const pct = Math.floor((current / total) * 100);
        return `${head}: pulling ${event.from} ${withBar ? `${bar(current / total)} ` : ''}${pct}% of ${mib(total)}`;
      }
      return `${head}: pulling ${event.from}`;
    }
    case 'building': {
      const p = event.progress;
      if (p.kind === 'step') return `${head}: building step ${p.step}/${p.total}: ${p.text}`;
      return `${head}: building: ${p.text}`;
    }
    case 'attempt-failed':
      return `${head}: ${event.attempt} failed: ${firstLine(event.message)}`;
    case 'ready':
      return `${head}: ready${event.warning ? ` (warning: ${event.warning})` : ''}`;
    case 'failed':
      return `${head}: failed: ${firstLine(event.message)}`;
  }
}

function firstLine(text: string): string {
  return text.split('\n')[0] ?? text;
}
