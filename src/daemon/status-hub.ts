// The daemon's status snapshot and who follows it: `status --watch` clients (coalesced to a few
// redraws a second, since a pull emits hundreds of events) and waiting logins (every change).
import type { ProgressEvent } from '../reconcile/events.js';
import type { StatusSnapshot } from './status.js';

type Subscriber = (event: 'progress' | 'status', data: unknown) => void;
type Watcher = (event: ProgressEvent | undefined) => void;

export interface StatusHub {
  readonly current: StatusSnapshot;
  set(next: StatusSnapshot): void;
  /** A progress event: to subscribers as it is, to watchers with it. */
  progress(event: ProgressEvent): void;
  subscribe(send: Subscriber): () => void;
  watch(listener: Watcher): () => void;
  close(): void;
}

/** `decorate` completes each snapshot set (the users part is derived from the rest). */
export function createStatusHub(initial: StatusSnapshot, decorate: (next: StatusSnapshot) => StatusSnapshot): StatusHub {
  let current = initial;
  const subscribers = new Set<Subscriber>();
  const watchers = new Set<Watcher>();
  let timer: NodeJS.Timeout | undefined;
  return {
    get current() {
      return current;
    },
    set(next) {
      current = decorate(next);
      timer ??= setTimeout(() => {
        timer = undefined;
        for (const send of subscribers) send('status', current);
      }, 100);
      for (const w of watchers) w(undefined);
    },
    progress(event) {
      for (const send of subscribers) send('progress', event);
      for (const w of watchers) w(event);
    },
    subscribe(send) {
      subscribers.add(send);
      send('status', current);
      return () => subscribers.delete(send);
    },
    watch(listener) {
      watchers.add(listener);
      return () => watchers.delete(listener);
    },
    close() {
      clearTimeout(timer);
    },
  };
}
