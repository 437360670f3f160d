// The picture `skiff-core status` shows: built from the daemon's own knowledge (config, progress
// events, last converge) and what the engine reports. Plain data, so it goes over the control
// socket as JSON unchanged.
import type { Diagnostic } from '../config/diagnostics.js';
import type { BuildProgress, PullProgress } from '../engine/engine.js';
import type { ConvergeReport } from '../reconcile/converge.js';
import type { ProgressEvent } from '../reconcile/events.js';

export interface PlainDiagnostic {
  file: string;
  line: number | null;
  col: number | null;
  path: (string | number)[];
  message: string;
}

export interface ImageStatus {
  ref: string;
  state: 'present' | 'missing' | 'pulling' | 'building' | 'failed' | 'unknown';
  id?: string;
  pull?: { from: string; current: number; total: number; percent: number | null };
  build?: { step: number; total: number; text: string };
  message?: string;
}

export interface ContainerStatus {
  name: string;
  /** The engine's state (running, exited, …), or missing / foreign. */
  state: string;
  image: string;
  startedAt?: string;
  restartCount?: number;
  /** "ready", "waiting for systemd: starting", "not running", … */
  readiness: string;
  /** Work held back, e.g. "config changed" while sessions are attached. */
  pending?: string;
  /** What converging last said about it ("created", "replaced: …"). */
  message?: string;
  /** Why it is not as configured (failed start, image unavailable, foreign…); cleared when fixed. */
  problem?: string;
  /** Shown for crash loops and failed starts. */
  lastLogs?: string;
  /** Set while converging works on it. */
  activity?: string;
}

export interface UserStatus {
  name: string;
  container: string;
  ready: boolean;
  sessions: number;
  /** Why this user cannot log in yet (no host account, …). */
  problem?: string;
}

export interface StatusSnapshot {
  daemon: { running: boolean; pid?: number; version: string; startedAt?: string };
  config: { path: string; loadedAt?: string; ok: boolean; errors: PlainDiagnostic[]; warnings: PlainDiagnostic[] };
  engine: { reachable: boolean; version?: string; apiVersion?: string; error?: string };
  reconcile: {
    state: 'idle' | 'running' | 'waiting-retry' | 'stopped';
    lastRunAt?: string;
    lastOk?: boolean;
    lastError?: string;
    nextRetryAt?: string;
  };
  images: ImageStatus[];
  containers: ContainerStatus[];
  users: UserStatus[];
  /** The built-in SSH server, when it runs. */
  gateway?: { listening: string[]; hostKeyFingerprint?: string; hostKeyPath?: string };
}

export function plainDiagnostics(list: Diagnostic[], severity: 'error' | 'warning'): PlainDiagnostic[] {
  return list
    .filter((d) => d.severity === severity)
    .map((d) => ({ file: d.file, line: d.position?.line ?? null, col: d.position?.col ?? null, path: [...d.path], message: d.message }));
}

function pullView(from: string, p: PullProgress): NonNullable<ImageStatus['pull']> {
  return { from, current: p.current, total: p.total, percent: p.total > 0 ? Math.floor((p.current / p.total) * 100) : null };
}

function buildView(p: BuildProgress, prev: ImageStatus['build']): ImageStatus['build'] {
  if (p.kind === 'step') return { step: p.step, total: p.total, text: p.text };
  return prev ? { ...prev, text: p.text } : { step: 0, total: 0, text: p.text };
}

/** Applies one progress event to the lists (returns new arrays; the snapshot is never mutated). */
export function applyProgress(snapshot: StatusSnapshot, event: ProgressEvent): StatusSnapshot {
  if (event.kind === 'image') {
    const images = upsert(
      snapshot.images,
      (i) => i.ref === event.ref,
      { ref: event.ref, state: 'unknown' },
      (img): ImageStatus => {
        switch (event.phase) {
          case 'pulling':
            return { ...img, state: 'pulling', pull: pullView(event.from, event.progress) };
          case 'building':
            return { ...img, state: 'building', build: buildView(event.progress, img.build) };
          case 'attempt-failed':
            return { ...img, message: `${event.attempt} failed: ${firstLine(event.message)}` };
          case 'ready': {
            const { pull: _p, build: _b, ...rest } = img;
            return { ...rest, state: 'present', id: event.id, ...(event.warning ? { message: event.warning } : { message: undefined }) };
          }
          case 'failed': {
            const { pull: _p, build: _b, ...rest } = img;
            return { ...rest, state: 'failed', message: event.message };
          }
        }
      },
    );
    return { ...snapshot, images };
  }
  const containers = upsert(
    snapshot.containers,
    (c) => c.name === event.name,
    { name: event.name, state: 'unknown', image: '', readiness: 'unknown' },
    (c): ContainerStatus => {
      switch (event.phase) {
        case 'ready':
          return { ...c, activity: undefined, readiness: event.message ? `ready (${event.message})` : 'ready' };
        case 'waiting':
          return { ...c, activity: undefined, readiness: event.message ?? 'waiting' };
        case 'failed':
        case 'foreign':
        case 'blocked':
          return {
            ...c,
            activity: undefined,
            problem: event.message ?? event.phase,
            ...(event.phase === 'foreign' ? { state: 'foreign' } : {}),
          };
        case 'pending':
          return { ...c, activity: undefined, pending: event.message ?? 'config changed' };
        default:
          return { ...c, activity: event.message ? `${event.phase}: ${event.message}` : event.phase };
      }
    },
  );
  return { ...snapshot, containers };
}

/** After a converge pass: what it concluded about each item. */
export function applyReport(snapshot: StatusSnapshot, report: ConvergeReport): StatusSnapshot {
  let images = snapshot.images;
  for (const i of report.images) {
    images = upsert(
      images,
      (x) => x.ref === i.ref,
      { ref: i.ref, state: 'unknown' },
      (x): ImageStatus => {
        if (i.status === 'failed') return { ...x, state: 'failed', ...(i.message ? { message: i.message } : {}) };
        const { pull: _p, build: _b, ...rest } = x;
        return { ...rest, state: 'present', ...(i.id ? { id: i.id } : {}), message: i.message };
      },
    );
  }
  let containers = snapshot.containers;
  for (const c of report.containers) {
    containers = upsert(
      containers,
      (x) => x.name === c.name,
      { name: c.name, state: 'unknown', image: '', readiness: 'unknown' },
      (x): ContainerStatus => {
        const bad = c.status === 'failed' || c.status === 'blocked' || c.status === 'foreign';
        return {
          ...x,
          activity: undefined,
          problem: bad ? (c.message ?? c.status) : undefined,
          message: bad ? undefined : (c.message ?? x.message),
          pending: c.status === 'pending' ? c.message : undefined,
          ...(c.status === 'foreign' ? { state: 'foreign' } : {}),
        };
      },
    );
  }
  return { ...snapshot, images, containers };
}

function upsert<T>(list: T[], match: (item: T) => boolean, fresh: T, update: (item: T) => T): T[] {
  const index = list.findIndex(match);
  if (index < 0) return [...list, stripUndefined(update(fresh))];
  return list.map((item, i) => (i === index ? stripUndefined(update(item)) : item));
}

function stripUndefined<T>(value: T): T {
  return Object.fromEntries(Object.entries(value as object).filter(([, v]) => v !== undefined)) as T;
}

function firstLine(text: string): string {
  return text.split('\n')[0] ?? text;
}
