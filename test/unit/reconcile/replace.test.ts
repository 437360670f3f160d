// A replacement keeps the old container until the new one has stayed up, puts it back when the
// new one fails, and a converge pass after a crash mid-replacement restores the parked container.
// Against the shared in-memory engine, so each step's failure can be scripted.
import { describe, expect, it } from 'vitest';
import type { Config } from '../../../src/config/schema.js';
import { parseConfig } from '../../../src/config/load.js';
import { SkiffError } from '../../../src/errors.js';
import { applyContainerStep } from '../../../src/reconcile/apply-container.js';
import { labelledBody, type ContainerSpec } from '../../../src/reconcile/container-spec.js';
import { converge } from '../../../src/reconcile/converge.js';
import { LABEL, PARKED_SUFFIX } from '../../../src/reconcile/labels.js';
import type { ContainerStep } from '../../../src/reconcile/plan.js';
import { createFakeEngine, type FakeEngine } from '../../support/fake-engine.js';

const noWait = async () => undefined;

function setUp(): { engine: FakeEngine; oldId: string; step: Extract<ContainerStep, { kind: 'replace-container' }> } {
  const engine = createFakeEngine();
  const image = engine.addImage('img:1');
  const spec: ContainerSpec = { body: { Image: 'img:1', Cmd: ['sleep', 'infinity'], Env: ['EDITION=2'] }, hash: 'new' };
  const old = engine.addContainer({
    name: 'core',
    imageId: image.id,
    labels: labelledBody('core', { ...spec, hash: 'old' }, { baseImageId: image.id }).Labels!,
    state: { status: 'running', running: true, pid: 42 },
  });
  return {
    engine,
    oldId: old.id,
    step: {
      kind: 'replace-container',
      name: 'core',
      id: old.id,
      reason: 'options',
      spec,
      fromSnapshot: true,
      baseImageId: image.id,
      start: true,
    },
  };
}

const snapshots = (engine: FakeEngine) =>
  [...engine.images.values()].flatMap((i) => i.repoTags).filter((t) => t.startsWith('skiff-core-snapshot/'));

describe('replacing a container', () => {
  it('removes the old container only once the new one runs, and keeps the snapshot', async () => {
    const { engine, oldId, step } = setUp();
    const outcome = await applyContainerStep({ engine, sleep: noWait }, step);
    expect(outcome).toMatchObject({ status: 'replaced' });
    const now = engine.byName('core')!;
    expect(now.id).not.toBe(oldId);
    expect(now.state.running).toBe(true);
    expect(now.config.image).toMatch(/^skiff-core-snapshot\/core:/);
    expect(engine.containers.has(oldId)).toBe(false);
    expect(snapshots(engine)).toHaveLength(1);
  });

  it('puts the old container back, running under its name, when the new one fails to start', async () => {
    const { engine, oldId, step } = setUp();
    engine.failNext('startContainer', new SkiffError('ENGINE_ERROR', 'exec: "sleep": executable file not found'), (id) => id !== oldId);
    await expect(applyContainerStep({ engine, sleep: noWait }, step)).rejects.toThrow(
      /executable file not found[\s\S]*previous container was put back/,
    );
    const back = engine.byName('core')!;
    expect(back.id).toBe(oldId);
    expect(back.state.running).toBe(true);
    expect(engine.containers.size).toBe(1);
    // The retry makes a new snapshot; this attempt's must not pile up.
    expect(snapshots(engine)).toEqual([]);
  });

  it('puts the old container back when the new one exits right after starting', async () => {
    const { engine, oldId, step } = setUp();
    engine.after('startContainer', (id) => {
      const c = engine.containers.get(id as string)!;
      if (id !== oldId) c.state = { ...c.state, status: 'exited', running: false, exitCode: 127 };
    });
    await expect(applyContainerStep({ engine, sleep: noWait }, step)).rejects.toThrow(
      /stopped right after it started: exited with code 127/,
    );
    expect(engine.byName('core')!.id).toBe(oldId);
    expect(engine.byName('core')!.state.running).toBe(true);
    expect(engine.containers.size).toBe(1);
  });

  it('says where the files are when the old container cannot be put back', async () => {
    const { engine, oldId, step } = setUp();
    engine.failNext('startContainer', new SkiffError('ENGINE_ERROR', 'no'), (id) => id !== oldId);
    engine.failNext('renameContainer', new SkiffError('ENGINE_ERROR', 'engine gone'), (id, name) => id === oldId && name === 'core');
    const err = await applyContainerStep({ engine, sleep: noWait }, step).catch((e: unknown) => e as Error);
    expect(err.message).toMatch(
      new RegExp(`could not be put back: it is core${PARKED_SUFFIX}\\S+, and snapshot skiff-core-snapshot/core:\\S+ keeps its files`),
    );
    // Nothing that holds the files was removed.
    expect(engine.containers.has(oldId)).toBe(true);
    expect(snapshots(engine)).toHaveLength(1);
  });
});

describe('converging after a crash in the middle of a replacement', () => {
  const config = (): Config => {
    const loaded = parseConfig(
      `containers:\n  core:\n    image: img:1\n    cmd: ["sleep", "infinity"]\n    startAfterCreate: true\n`,
      'config.yaml',
    );
    if (!loaded.ok) throw new Error(JSON.stringify(loaded.diagnostics));
    return loaded.config;
  };

  function parked(engine: FakeEngine, running: boolean) {
    const image = engine.addImage('img:1');
    return engine.addContainer({
      name: `core${PARKED_SUFFIX}20260101-000000-000`,
      imageId: image.id,
      labels: {
        [LABEL.managed]: 'true',
        [LABEL.container]: 'core',
        [LABEL.specHash]: 'old',
        [LABEL.imageRef]: 'img:1',
        [LABEL.baseImageId]: image.id,
      },
      state: running ? { status: 'running', running: true } : { status: 'exited', exitCode: 0 },
    });
  }

  it('brings the parked container back under its name when the new one was never created', async () => {
    const engine = createFakeEngine();
    const old = parked(engine, false);
    await converge(config(), { engine, workDir: '/nonexistent', sleep: noWait }, { readyTimeoutMs: 1 });
    // The parked one came back as `core` (and, its spec being stale, was replaced properly from a
    // snapshot of it): one container, under its name, and no parked one left.
    const names = [...engine.containers.values()].map((c) => c.name);
    expect(names).toEqual(['core']);
    expect(engine.calls).toContain(`renameContainer ${old.id}`);
    expect(engine.calls.indexOf(`renameContainer ${old.id}`)).toBeLessThan(engine.calls.findIndex((c) => c.startsWith('createContainer')));
  });

  it('removes the parked container when its replacement is already running', async () => {
    const engine = createFakeEngine();
    const old = parked(engine, false);
    const image = engine.images.values().next().value!;
    const id = await engine.createContainer('core', {
      Image: 'img:1',
      Labels: { [LABEL.managed]: 'true', [LABEL.container]: 'core', [LABEL.baseImageId]: image.id },
    });
    await engine.startContainer(id);
    await converge(config(), { engine, workDir: '/nonexistent', sleep: noWait }, { readyTimeoutMs: 1 });
    expect(engine.containers.has(old.id)).toBe(false);
    expect(engine.calls).not.toContain(`renameContainer ${old.id}`);
    expect(engine.byName('core')).toBeDefined();
  });
});
