// Executors for container steps: the only place converging changes containers.
import type { Engine } from '../engine/engine.js';
import { errorMessage, isNotFound, SkiffError } from '../errors.js';
import { faultPoint } from '../faults.js';
import { poll, sleep, systemClock, type Clock } from '../time.js';
import { labelledBody } from './container-spec.js';
import type { SpaceGuard } from './disk-space.js';
import type { ContainerPhase, OnProgress } from './events.js';
import { LABEL, PARKED_SUFFIX, snapshotRef } from './labels.js';
import type { ContainerStep, Health, ReplaceReason } from './plan.js';

export interface ContainerDeps {
  engine: Engine;
  now?: () => Date;
  sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
  /** Throws DISK_LOW when there is no room for a snapshot (see disk-space.ts). */
  ensureSpace?: SpaceGuard;
}

export interface ContainerApplyOptions {
  onProgress?: OnProgress;
  signal?: AbortSignal;
  /** How long a container may take to become ready (systemd boot). */
  readyTimeoutMs?: number;
}

/** What a step did, for the summary. */
export type ContainerOutcome =
  | { status: 'created' | 'started' | 'ready'; message?: string }
  | { status: 'replaced'; message: string; snapshot: string }
  | { status: 'foreign' | 'pending'; message: string };

const LOG_TAIL = 15;
const STOP_TIMEOUT_SEC = 30;

export async function applyContainerStep(
  deps: ContainerDeps,
  step: ContainerStep,
  options: ContainerApplyOptions = {},
): Promise<ContainerOutcome> {
  const { engine } = deps;
  const emit = (phase: ContainerPhase, message?: string) =>
    options.onProgress?.({ kind: 'container', name: step.name, phase, ...(message ? { message } : {}) });

  switch (step.kind) {
    case 'create-container': {
      emit('creating');
      const body = labelledBody(step.name, step.spec, {
        baseImageId: step.baseImageId,
        ...(step.fromImage ? { image: step.fromImage } : {}),
      });
      const id = await engine.createContainer(step.name, body, options);
      faultPoint('created');
      if (step.start) {
        emit('starting');
        await startOrExplain(engine, id, step.name, options.signal);
        faultPoint('started');
      }
      return { status: 'created' };
    }
    case 'start-container': {
      emit('starting');
      await startOrExplain(engine, step.id, step.name, options.signal);
      return { status: 'started' };
    }
    case 'replace-container':
      return replace(deps, step, emit, options);
    case 'foreign-container': {
      const message =
        `a container named "${step.name}" exists but skiff-core did not create it; it is left as it is. ` +
        `Run "skiff-core adopt ${step.name}" to take it over (its files are kept), or rename or remove it.`;
      emit('foreign', message);
      return { status: 'foreign', message };
    }
    case 'hold-replace': {
      const message = `${step.reason === 'image' ? 'image' : 'config'} changed; replacement waits: ${step.why}`;
      emit('pending', message);
      return { status: 'pending', message };
    }
    case 'wait-ready': {
      const outcome = await waitReady(deps, step, emit, options);
      faultPoint('ready');
      return outcome;
    }
    default: {
      const unknown: never = step;
      throw new Error(`no executor for step ${JSON.stringify(unknown)}`);
    }
  }
}

/** Start, and on failure explain with the engine's reason and the container's last log lines. */
async function startOrExplain(engine: Engine, id: string, name: string, signal?: AbortSignal): Promise<void> {
  try {
    await engine.startContainer(id, signal ? { signal } : {});
  } catch (err) {
    throw new SkiffError('CONTAINER_START_FAILED', `container ${name} failed to start: ${errorMessage(err)}`, {
      cause: err,
      detail: await logTail(engine, id),
    });
  }
}

/** Starts the message of an image update that did not become ready and was undone. */
export const ROLLED_BACK = 'rolled back: ';

/** How long a replacement must stay up before the container it replaces is removed. */
export const STAYS_UP_MS = 1500;

async function confirmStaysUp(deps: ContainerDeps, id: string, name: string, signal?: AbortSignal): Promise<void> {
  await (deps.sleep ?? sleep)(STAYS_UP_MS, signal);
  const info = await deps.engine.inspectContainer(id, signal ? { signal } : {});
  if (info?.state.running) return;
  const how = info ? `exited with code ${info.state.exitCode}${info.state.error ? ` (${info.state.error})` : ''}` : 'was removed';
  throw new SkiffError('CONTAINER_START_FAILED', `container ${name} stopped right after it started: ${how}`, {
    detail: await logTail(deps.engine, id),
  });
}

/** Heads the container's log lines in an error's operator detail; users are not shown them. */
export const LOG_TAIL_HEADING = 'last log lines:';

/**
 * An image update counts once the new container is ready: systemd booted, and the configured
 * readyCommand exits 0. Until then the old container waits, parked, to be put back.
 */
async function becomesReady(
  deps: ContainerDeps,
  id: string,
  name: string,
  health: Health,
  options: ContainerApplyOptions,
  emit: (phase: ContainerPhase, message?: string) => void,
): Promise<void> {
  if (!health.systemd && !health.command) return;
  const timeoutMs = health.timeoutMs ?? options.readyTimeoutMs ?? 120_000;
  let state = 'not checked yet';
  // A test's sleep (deps.sleep) gets a clock that advances by what was slept.
  let slept = 0;
  const clock: Clock = deps.sleep
    ? { now: () => slept, sleep: async (ms, signal) => ((slept += ms), deps.sleep!(ms, signal)) }
    : systemClock;
  const ready = await poll(
    async () => {
      const info = await deps.engine.inspectContainer(id, options.signal ? { signal: options.signal } : {});
      if (!info?.state.running)
        throw new SkiffError('CONTAINER_START_FAILED', `container ${name} stopped before it was ready`, {
          detail: await logTail(deps.engine, id),
        });
      if (health.systemd) {
        const probe = await probeSystemd(deps.engine, id, options.signal);
        state = `systemd: ${probe.state}`;
        if (!probe.booted) return undefined;
      }
      if (health.command) {
        const run = await deps.engine
          .execRun(id, health.command, { timeoutMs: 30_000, ...(options.signal ? { signal: options.signal } : {}) })
          .catch((err: unknown) => ({ exitCode: -1, stdout: '', stderr: errorMessage(err) }));
        const now = `readyCommand exited ${run.exitCode}${run.stderr.trim() ? `: ${run.stderr.trim().split('\n').pop()}` : ''}`;
        if (now !== state) emit('waiting', `the new container is not ready yet (${now})`);
        state = now;
        if (run.exitCode !== 0) return undefined;
      }
      return true;
    },
    { intervalMs: 1000, timeoutMs, clock, ...(options.signal ? { signal: options.signal } : {}) },
  );
  if (ready) return;
  throw new SkiffError(
    'CONTAINER_START_FAILED',
    `the new container did not become ready within ${Math.round(timeoutMs / 1000)} s (${state})`,
    {
      detail: await logTail(deps.engine, id),
    },
  );
}

async function logTail(engine: Engine, id: string): Promise<string> {
  const logs = await engine.containerLogs(id, { tail: LOG_TAIL }).catch(() => '');
  const trimmed = logs.trimEnd();
  return trimmed ? `${LOG_TAIL_HEADING}\n${trimmed}` : '';
}

/**
 * Replace a container without losing its writable layer: commit it to a snapshot first, keep the
 * old container (renamed, stopped) until the new one runs, and put it back if anything fails.
 */
async function replace(
  deps: ContainerDeps,
  step: Extract<ContainerStep, { kind: 'replace-container' }>,
  emit: (phase: ContainerPhase, message?: string) => void,
  options: ContainerApplyOptions,
): Promise<ContainerOutcome> {
  const { engine } = deps;
  const now = (deps.now ?? (() => new Date()))();
  const call = options.signal ? { signal: options.signal } : {};
  const old = await engine.inspectContainer(step.id, call);
  if (!old) throw new SkiffError('ENGINE_NOT_FOUND', `container ${step.name} disappeared while being replaced`);

  // Nothing is touched when the snapshot would not fit: the container keeps running as it is.
  await deps.ensureSpace?.(`a snapshot of ${step.name}`);
  emit('snapshotting', `saving the container's files as a snapshot before ${describeReason(step.reason)}`);
  const snap = snapshotRef(step.name, now);
  const snapshot = `${snap.repo}:${snap.tag}`;
  await engine.commitContainer(step.id, {
    ...snap,
    labels: { [LABEL.snapshotOf]: step.name },
    comment: `skiff-core snapshot of ${step.name} before ${describeReason(step.reason)}`,
    // Recreated from it, the container gets its settings from the image it descends from plus the
    // config, as a fresh one would: a setting removed from the config is gone, not inherited.
    ...(step.fromSnapshot ? { configFrom: step.baseImageId } : {}),
    ...call,
  });
  faultPoint('snapshot-committed');

  emit('replacing', describeReason(step.reason));
  const wasRunning = old.state.running || old.state.restarting;
  const parkedName = `${step.name}${PARKED_SUFFIX}${snap.tag}`;
  if (wasRunning) await engine.stopContainer(step.id, { timeoutSec: STOP_TIMEOUT_SEC, ...call });
  await engine.renameContainer(step.id, parkedName, call);
  faultPoint('parked');

  let newId: string | undefined;
  try {
    const body = labelledBody(step.name, step.spec, {
      baseImageId: step.baseImageId,
      ...(step.fromImage ? { image: step.fromImage } : step.fromSnapshot ? { image: snapshot } : {}),
    });
    newId = await engine.createContainer(step.name, body, call);
    faultPoint('replacement-created');
    if (step.start) {
      await startOrExplain(engine, newId, step.name, options.signal);
      faultPoint('replacement-started');
      // A start the engine accepts can still be a process that dies at once (its init starts
      // but the program does not exist): the old container stays until the new one stays up.
      await confirmStaysUp(deps, newId, step.name, options.signal);
      if (step.health) await becomesReady(deps, newId, step.name, step.health, options, emit);
    }
  } catch (err) {
    // Put the old container back as it was. It holds the files, so the snapshot is dropped: the
    // daemon retries a failing change, and each attempt must not leave an image behind.
    if (newId) await engine.removeContainer(newId, { force: true }).catch(() => undefined);
    const restored = await engine.renameContainer(step.id, step.name).then(
      () => true,
      () => false,
    );
    if (wasRunning) await engine.startContainer(step.id).catch(() => undefined);
    if (restored) await engine.removeImage(snapshot).catch(() => undefined);
    // An image update that never became ready is rolled back by itself: say so first.
    const rolledBack = restored && step.health ? ROLLED_BACK : '';
    throw new SkiffError(
      (err as SkiffError).code ?? 'ENGINE_ERROR',
      `${rolledBack}${errorMessage(err)}\n${restored ? 'the previous container was put back, with its files' : `the previous container could not be put back: it is ${parkedName}, and snapshot ${snapshot} keeps its files`}`,
      { cause: err, ...(err instanceof SkiffError && err.detail ? { detail: err.detail } : {}) },
    );
  }
  await engine.removeContainer(step.id, { force: true }).catch((err: unknown) => {
    if (!isNotFound(err)) throw err;
  });
  faultPoint('parked-removed');
  const how = step.fromImage
    ? `recreated from snapshot ${step.fromImage}; what it replaced is snapshot ${snapshot}`
    : step.fromSnapshot
      ? `recreated from snapshot ${snapshot}`
      : `recreated from the new image; old files kept in snapshot ${snapshot}`;
  return { status: 'replaced', message: `${describeReason(step.reason)}: ${how}`, snapshot };
}

function describeReason(reason: ReplaceReason): string {
  switch (reason) {
    case 'options':
      return 'applying changed options';
    case 'image':
      return 'moving to the new image';
    case 'adopt':
      return 'adopting it';
    case 'rollback':
      return 'rolling back';
    case 'restore':
      return 'restoring a backup';
  }
}

const SYSTEMD_READY = new Set(['running', 'degraded']);
// What `systemctl is-system-running` prints; anything else means systemd is not answering yet.
const SYSTEMD_STATES = new Set(['initializing', 'starting', 'running', 'degraded', 'maintenance', 'stopping', 'offline', 'unknown']);

export interface SystemdState {
  /** systemd's state, or "booting (not answering yet)". */
  state: string;
  /** running or degraded: it has finished booting. */
  booted: boolean;
}

/** Asks systemd (PID 1 of the container) how far it has booted. */
export async function probeSystemd(engine: Pick<Engine, 'execRun'>, id: string, signal?: AbortSignal): Promise<SystemdState> {
  const out = await engine
    .execRun(id, ['systemctl', 'is-system-running'], { timeoutMs: 10_000, ...(signal ? { signal } : {}) })
    .then((r) => r.stdout.trim())
    .catch(() => '');
  const state = SYSTEMD_STATES.has(out) ? out : 'booting (not answering yet)';
  return { state, booted: SYSTEMD_READY.has(state) };
}

/** Running is ready; with systemd as PID 1, ready means it finished booting. */
async function waitReady(
  deps: ContainerDeps,
  step: Extract<ContainerStep, { kind: 'wait-ready' }>,
  emit: (phase: ContainerPhase, message?: string) => void,
  options: ContainerApplyOptions,
): Promise<ContainerOutcome> {
  const { engine } = deps;
  const wait = deps.sleep ?? sleep;
  const timeoutMs = options.readyTimeoutMs ?? 120_000;
  const started = Date.now();
  let lastState = '';
  for (;;) {
    const info = await engine.inspectContainer(step.id || step.name, options.signal ? { signal: options.signal } : {});
    if (!info) throw new SkiffError('ENGINE_NOT_FOUND', `container ${step.name} disappeared`);
    if (!info.state.running) {
      const why = info.state.error || `exited with code ${info.state.exitCode}`;
      throw new SkiffError('CONTAINER_START_FAILED', `container ${step.name} stopped: ${why}`, { detail: await logTail(engine, info.id) });
    }
    if (!step.systemd) {
      emit('ready');
      return { status: 'ready' };
    }
    const { state: probe, booted } = await probeSystemd(engine, info.id, options.signal);
    if (booted) {
      emit('ready', probe === 'degraded' ? 'systemd: degraded (some units failed; see systemctl --failed)' : 'systemd: running');
      return { status: 'ready', message: `systemd: ${probe}` };
    }
    if (probe !== lastState) {
      emit('waiting', `waiting for systemd: ${probe}`);
      lastState = probe;
    }
    if (Date.now() - started > timeoutMs) {
      throw new SkiffError(
        'TIMEOUT',
        `container ${step.name}: systemd did not finish booting within ${Math.round(timeoutMs / 1000)} s (state: ${probe})`,
      );
    }
    await wait(500, options.signal);
  }
}
