// What converging reports while it works. The setup command draws these; the daemon will
// forward them to `status --watch` and to login shells waiting for their container.
import type { BuildProgress, PullProgress } from '../engine/engine.js';

export type ImageEvent =
  | { kind: 'image'; ref: string; phase: 'pulling'; from: string; progress: PullProgress }
  | { kind: 'image'; ref: string; phase: 'building'; progress: BuildProgress }
  /** One way of obtaining the image failed; the next attempt (if any) follows. */
  | { kind: 'image'; ref: string; phase: 'attempt-failed'; attempt: 'pull' | 'build'; message: string }
  | { kind: 'image'; ref: string; phase: 'ready'; id: string; warning?: string }
  | { kind: 'image'; ref: string; phase: 'failed'; message: string };

export type ContainerPhase =
  'creating' | 'starting' | 'snapshotting' | 'replacing' | 'waiting' | 'ready' | 'failed' | 'foreign' | 'pending' | 'blocked';

export interface ContainerEvent {
  kind: 'container';
  name: string;
  phase: ContainerPhase;
  /** Human-readable detail: the engine's error, "waiting for systemd: starting", … */
  message?: string;
}

export type ProgressEvent = ImageEvent | ContainerEvent;

export type OnProgress = (event: ProgressEvent) => void;
