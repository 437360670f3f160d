import { describe, expect, it } from 'vitest';
import { Container } from '../../../src/config/schema.js';
import type { ContainerInfo, ImageInfo } from '../../../src/engine/engine.js';
import { containerSpec } from '../../../src/reconcile/container-spec.js';
import { LABEL } from '../../../src/reconcile/labels.js';
import { planContainer, runsSystemd } from '../../../src/reconcile/plan.js';
import { containerInfo, imageInfo } from '../../support/fake-engine.js';

const image: ImageInfo = imageInfo({ id: 'sha256:base', repoTags: ['x:1'], created: '' });
const desired = Container.parse({ image: 'x:1', startAfterCreate: true, entrypoint: ['/lib/systemd/systemd'] });

function observed(overrides: { labels?: Record<string, string>; running?: boolean } = {}): ContainerInfo {
  const spec = containerSpec('core', desired);
  return containerInfo({
    id: 'c1',
    imageId: 'sha256:base',
    created: '',
    state: { status: 'running', running: overrides.running ?? true, pid: 1 },
    labels: overrides.labels ?? { [LABEL.managed]: 'true', [LABEL.specHash]: spec.hash, [LABEL.baseImageId]: 'sha256:base' },
  });
}

const kinds = (steps: { kind: string }[]) => steps.map((s) => s.kind);

describe('reconcile/plan planContainer', () => {
  it('creates, starts and waits for a missing container', () => {
    const steps = planContainer('core', desired, { image, container: undefined, adopt: false });
    expect(kinds(steps)).toEqual(['create-container', 'wait-ready']);
    expect(steps[0]).toMatchObject({ start: true, baseImageId: 'sha256:base' });
    expect(steps[1]).toMatchObject({ systemd: true });
  });

  it('does not start a missing container when startAfterCreate is off', () => {
    const steps = planContainer('core', { ...desired, startAfterCreate: false }, { image, container: undefined, adopt: false });
    expect(kinds(steps)).toEqual(['create-container']);
  });

  it('waits (plans nothing) while the image is unavailable', () => {
    expect(planContainer('core', desired, { image: undefined, container: undefined, adopt: false })).toEqual([]);
  });

  it('does nothing for an unchanged running container', () => {
    expect(planContainer('core', desired, { image, container: observed(), adopt: false })).toEqual([]);
  });

  it('starts an unchanged stopped container', () => {
    expect(kinds(planContainer('core', desired, { image, container: observed({ running: false }), adopt: false }))).toEqual([
      'start-container',
      'wait-ready',
    ]);
  });

  it('replaces from a snapshot when only options changed', () => {
    const changed = { ...desired, env: ['A=2'] };
    const [step] = planContainer('core', changed, { image, container: observed(), adopt: false });
    expect(step).toMatchObject({ kind: 'replace-container', reason: 'options', fromSnapshot: true, start: true });
  });

  it('replaces from the configured image when the image changed', () => {
    const [step] = planContainer('core', desired, { image: { ...image, id: 'sha256:new' }, container: observed(), adopt: false });
    expect(step).toMatchObject({ kind: 'replace-container', reason: 'image', fromSnapshot: false, baseImageId: 'sha256:new' });
  });

  it('holds a due replacement back while sessions are attached, and says why', () => {
    const changed = { ...desired, env: ['A=2'] };
    expect(planContainer('core', changed, { image, container: observed(), adopt: false, holdReplace: '2 session(s) attached' })).toEqual([
      { kind: 'hold-replace', name: 'core', id: 'c1', reason: 'options', why: '2 session(s) attached' },
    ]);
  });

  it('leaves a container that ran and stopped alone when told not to start stopped ones, but starts one that never ran', () => {
    const stopped = observed({ running: false });
    expect(
      planContainer('core', desired, {
        image,
        container: { ...stopped, state: { ...stopped.state, status: 'exited' } },
        adopt: false,
        startStopped: false,
      }),
    ).toEqual([]);
    expect(
      kinds(
        planContainer('core', desired, {
          image,
          container: { ...stopped, state: { ...stopped.state, status: 'created' } },
          adopt: false,
          startStopped: false,
        }),
      ),
    ).toEqual(['start-container', 'wait-ready']);
  });

  it('never touches a container it does not own, unless told to adopt it', () => {
    const foreign = observed({ labels: {} });
    expect(planContainer('core', desired, { image, container: foreign, adopt: false })).toEqual([
      { kind: 'foreign-container', name: 'core', id: 'c1' },
    ]);
    const [step] = planContainer('core', desired, { image, container: foreign, adopt: true });
    expect(step).toMatchObject({ kind: 'replace-container', reason: 'adopt', fromSnapshot: true });
  });
});

describe('reconcile/container-spec', () => {
  it('maps every option to the engine create body', () => {
    const c = Container.parse({
      image: 'x:1',
      tty: true,
      workingDirectory: '/w',
      entrypoint: ['/e'],
      cmd: ['c'],
      env: ['A=1'],
      mounts: ['/a:/b:ro'],
      privileged: true,
      capAdd: ['SYS_ADMIN'],
      securityOpt: ['seccomp=unconfined'],
      tmpFs: { '/run': 'size=1m' },
      hostNetwork: true,
      hostIPC: true,
      hostPID: true,
      hostUTS: true,
      dns: ['1.1.1.1'],
      dnsSearch: ['lan'],
      hosts: ['db:10.0.0.1'],
      ports: [
        { hostPort: 8080, containerPort: 80 },
        { hostPort: 0, containerPort: 443 },
      ],
      restartPolicy: 'on-failure:3',
      stopSignal: 'rtmin+3',
    });
    expect(containerSpec('core', c).body).toEqual({
      Image: 'x:1',
      Env: ['A=1'],
      Tty: true,
      Entrypoint: ['/e'],
      Cmd: ['c'],
      WorkingDir: '/w',
      StopSignal: 'SIGRTMIN+3',
      ExposedPorts: { '80/tcp': {}, '443/tcp': {} },
      HostConfig: {
        Binds: ['/a:/b:ro'],
        Tmpfs: { '/run': 'size=1m' },
        Privileged: true,
        CapAdd: ['SYS_ADMIN'],
        SecurityOpt: ['seccomp=unconfined'],
        Dns: ['1.1.1.1'],
        DnsSearch: ['lan'],
        ExtraHosts: ['db:10.0.0.1'],
        Init: true,
        NetworkMode: 'host',
        IpcMode: 'host',
        PidMode: 'host',
        UTSMode: 'host',
        RestartPolicy: { Name: 'on-failure', MaximumRetryCount: 3 },
        PortBindings: { '80/tcp': [{ HostPort: '8080' }], '443/tcp': [{ HostPort: '' }] },
      },
    });
  });

  it('hashes equal specs equally and any change differently', () => {
    const a = containerSpec('core', desired).hash;
    expect(
      containerSpec('core', Container.parse({ entrypoint: ['/lib/systemd/systemd'], startAfterCreate: true, image: 'x:1' })).hash,
    ).toBe(a);
    expect(containerSpec('core', { ...desired, env: ['A=1'] }).hash).not.toBe(a);
    expect(containerSpec('other', desired).hash).not.toBe(a);
    // startAfterCreate is about what setup does, not what the container is.
    expect(containerSpec('core', { ...desired, startAfterCreate: false }).hash).toBe(a);
  });

  it.each([
    [['/lib/systemd/systemd'], true],
    [['/sbin/init'], true],
    [['/init'], true],
    [['/bin/sh'], false],
  ])('recognises systemd in %j', (entrypoint, expected) => {
    expect(runsSystemd({ entrypoint })).toBe(expected);
  });
});
