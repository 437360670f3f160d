// Pure planning: from what the engine has (observed) and what the config wants (desired), the
// steps that close the gap. Nothing here awaits or touches the engine; apply.ts does.
import type { Container, Image, ImageBuild } from '../config/schema.js';
import type { ContainerInfo, ImageInfo } from '../engine/engine.js';
import { withRegistry } from '../engine/image-ref.js';
import { containerSpec, type ContainerSpec } from './container-spec.js';
import { isManaged, LABEL } from './labels.js';

export type ImageAttempt = { kind: 'pull'; from: string } | { kind: 'build'; build: ImageBuild };

export interface ObtainImageStep {
  kind: 'obtain-image';
  ref: string;
  /** Tried in order until one succeeds. */
  attempts: ImageAttempt[];
  /** The image is already there (policy `always`): a failed refresh keeps it, with a warning. */
  present: boolean;
}

/** How to tell a container is ready: systemd's state, and/or a command that exits 0. */
export interface Health {
  systemd: boolean;
  command?: string[];
  timeoutMs?: number;
}

function healthOf(desired: Pick<Container, 'readyCommand' | 'readyTimeoutSec'>, systemd: boolean): Health {
  return {
    systemd,
    ...(desired.readyCommand ? { command: desired.readyCommand } : {}),
    ...(desired.readyTimeoutSec ? { timeoutMs: desired.readyTimeoutSec * 1000 } : {}),
  };
}

export type ReplaceReason = 'options' | 'image' | 'adopt' | 'rollback' | 'restore';

export type ContainerStep =
  | {
      kind: 'create-container';
      name: string;
      spec: ContainerSpec;
      baseImageId: string;
      start: boolean;
      /** A restore: create from this snapshot instead of the configured image. */
      fromImage?: string;
    }
  | { kind: 'start-container'; name: string; id: string }
  | {
      kind: 'replace-container';
      name: string;
      id: string;
      reason: ReplaceReason;
      spec: ContainerSpec;
      /** Options-only changes keep the writable layer by creating from a snapshot of the old one. */
      fromSnapshot: boolean;
      /** A rollback or restore: create from this snapshot (the old container is still snapshotted). */
      fromImage?: string;
      baseImageId: string;
      start: boolean;
      /** An image update must become ready, or the old container is put back (see apply-container). */
      health?: Health;
    }
  | { kind: 'foreign-container'; name: string; id: string }
  /** A replacement is due but held back (e.g. sessions are attached); nothing changes. */
  | { kind: 'hold-replace'; name: string; id: string; reason: ReplaceReason; why: string }
  | { kind: 'wait-ready'; name: string; id: string; systemd: boolean };

export type Step = ObtainImageStep | ContainerStep;

/** How to make `ref` present, or undefined when nothing needs doing. */
export function planImage(ref: string, config: Image | undefined, observed: ImageInfo | undefined): ObtainImageStep | undefined {
  const pull: ImageAttempt = { kind: 'pull', from: config?.pull?.registry ? withRegistry(config.pull.registry, ref) : ref };
  const build: ImageAttempt[] = config?.build ? [{ kind: 'build', build: config.build }] : [];
  const policy = config?.pull?.pullPolicy ?? 'ifnotpresent';
  // Only `build:` configured: build, never pull (the image may exist nowhere else).
  const pulls: ImageAttempt[] = config?.build && !config.pull ? [] : [pull];

  if (observed) {
    if (policy === 'always' && pulls.length > 0) return { kind: 'obtain-image', ref, attempts: pulls, present: true };
    return undefined;
  }
  const attempts = policy === 'ifbuildfails' ? [...build, ...pulls] : [...pulls, ...build];
  return { kind: 'obtain-image', ref, attempts, present: false };
}

export interface ContainerObservation {
  /** The configured image as the engine has it now; undefined if it could not be obtained. */
  image: ImageInfo | undefined;
  container: ContainerInfo | undefined;
  /** Take over an unlabelled container of this name (`skiff-core adopt`). */
  adopt: boolean;
  /**
   * Start an existing stopped container (default). The daemon passes false: a container an
   * administrator stopped stays stopped, and crashes are the engine's restart policy's business.
   * A container that never ran is started either way.
   */
  startStopped?: boolean;
  /** Why a due replacement must wait (sessions attached…); undefined lets it go ahead. */
  holdReplace?: string;
}

/** Steps for one container, once its image question is settled. */
export function planContainer(name: string, desired: Container, observed: ContainerObservation): ContainerStep[] {
  const spec = containerSpec(name, desired);
  const systemd = runsSystemd(desired);
  const { container, image } = observed;

  if (!container) {
    if (!image) return [];
    const steps: ContainerStep[] = [{ kind: 'create-container', name, spec, baseImageId: image.id, start: desired.startAfterCreate }];
    if (desired.startAfterCreate) steps.push({ kind: 'wait-ready', name, id: '', systemd });
    return steps;
  }

  if (!isManaged(container.labels)) {
    if (!observed.adopt || !image) return [{ kind: 'foreign-container', name, id: container.id }];
    return [
      {
        kind: 'replace-container',
        name,
        id: container.id,
        reason: 'adopt',
        spec,
        // Keep what was installed in it: the snapshot is the old container, whatever its image.
        fromSnapshot: true,
        baseImageId: image.id,
        start: true,
      },
      { kind: 'wait-ready', name, id: '', systemd },
    ];
  }

  const imageChanged = image !== undefined && container.labels[LABEL.baseImageId] !== image.id;
  const optionsChanged = container.labels[LABEL.specHash] !== spec.hash;
  if (image && (imageChanged || optionsChanged)) {
    const reason = imageChanged ? 'image' : 'options';
    if (observed.holdReplace) return [{ kind: 'hold-replace', name, id: container.id, reason, why: observed.holdReplace }];
    const wasRunning = container.state.running || container.state.restarting;
    const start = wasRunning || desired.startAfterCreate;
    const steps: ContainerStep[] = [
      {
        kind: 'replace-container',
        name,
        id: container.id,
        reason,
        spec,
        fromSnapshot: !imageChanged,
        baseImageId: image.id,
        start,
        ...(imageChanged ? { health: healthOf(desired, systemd) } : {}),
      },
    ];
    if (start) steps.push({ kind: 'wait-ready', name, id: '', systemd });
    return steps;
  }

  // A container that never ran (created, or its start failed) is started; one that ran and
  // stopped is left alone when startStopped is false: someone stopped it, or it crashed and
  // its restart policy (the engine's) decides.
  const neverRan = container.state.status === 'created';
  if (!container.state.running && !container.state.restarting && (observed.startStopped !== false || neverRan)) {
    return [
      { kind: 'start-container', name, id: container.id },
      { kind: 'wait-ready', name, id: container.id, systemd },
    ];
  }
  return [];
}

/** PID 1 is systemd when the entrypoint (or the command, without one) names it. */
export function runsSystemd(container: Pick<Container, 'entrypoint' | 'cmd'>): boolean {
  const first = container.entrypoint?.[0] ?? container.cmd?.[0] ?? '';
  return /(^|\/)(systemd|init)$/.test(first) && first !== '/sbin/docker-init';
}
