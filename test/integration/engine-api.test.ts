// The Engine (src/engine/docker-engine.ts) against the real Docker engine and the loopback
// registry that scripts/provision.sh sets up. Every resource is named with this file's
// unique `skt-eng-…` prefix and removed in afterAll.
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { packBuildContext } from '../../src/engine/build-context.js';
import { createDockerEngine } from '../../src/engine/docker-engine.js';
import type { BuildProgress, ContainerCreateBody, EngineEvent, PullProgress } from '../../src/engine/engine.js';
import { withRegistry } from '../../src/engine/image-ref.js';
import { BUSYBOX_IMAGE, TEST_REGISTRY, cleanupByPrefix, integrationSkipReason } from './helpers/engine.js';
import { rejection } from '../support/rejection.js';

const run = promisify(execFile);

describe.skipIf(integrationSkipReason())('engine/docker-engine against the real engine', () => {
  const prefix = `skt-eng-${randomBytes(3).toString('hex')}`;
  const label = `skt.test=${prefix}`;
  const engine = createDockerEngine();
  const builtTag = `${prefix}/built:1`;
  const pushedRepo = `${TEST_REGISTRY}/${prefix}/pulled`;
  let work: string;

  async function contextDir(name: string, dockerfile: string): Promise<string> {
    const dir = join(work, name);
    await run('mkdir', ['-p', dir]);
    await writeFile(join(dir, 'Dockerfile'), dockerfile);
    return dir;
  }

  function sleeper(extra: Partial<ContainerCreateBody> = {}): ContainerCreateBody {
    return {
      Image: builtTag,
      // stdout and stderr reach the engine through separate pipes: only `ready` has a known place.
      Cmd: ['sh', '-c', 'echo started; echo oops >&2; sleep 0.2; echo ready; exec sleep 300'],
      Labels: { 'skt.test': prefix },
      HostConfig: { NetworkMode: 'none', Init: true },
      ...extra,
    };
  }

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), `${prefix}-`));
    if ((await engine.inspectImage(BUSYBOX_IMAGE)) === undefined) {
      throw new Error(`${BUSYBOX_IMAGE} is missing; run bash scripts/provision.sh`);
    }
    // The image the container tests use: built here with build args, one of them null.
    const dir = await contextDir(
      'args',
      [`FROM ${BUSYBOX_IMAGE}`, 'ARG A', 'ARG B=dflt', 'ARG C', 'RUN echo "A=$A B=$B C=$C" > /args', ''].join('\n'),
    );
    await engine.buildImage({
      context: await packBuildContext(dir),
      tag: builtTag,
      buildArgs: { A: 'va', B: null, C: null },
      labels: { 'skt.test': prefix },
    });
  });

  afterAll(async () => {
    await cleanupByPrefix(prefix);
    if (work !== undefined) await rm(work, { recursive: true, force: true });
  });

  it('pings the engine', async () => {
    const version = await engine.ping();
    expect(version.version).not.toBe('');
    expect(version.apiVersion).toMatch(/^1\.\d+$/);
    expect(version.experimental).toBe(false);
  });

  it('reports an unreachable socket as ENGINE_UNREACHABLE naming it', async () => {
    const socket = join(work, 'no-docker.sock');
    const err = await rejection(createDockerEngine({ socketPath: socket }).ping());
    expect(err.code).toBe('ENGINE_UNREACHABLE');
    expect(err.message).toContain(`cannot reach Docker at ${socket}`);

    const viaEnv = await rejection(createDockerEngine({ env: { DOCKER_HOST: `unix://${socket}` } }).inspectImage('x'));
    expect(viaEnv.code).toBe('ENGINE_UNREACHABLE');
    expect(viaEnv.message).toContain(`cannot reach Docker at ${socket}`);
  });

  describe('images', () => {
    it('inspects and lists images, by label and by reference', async () => {
      const built = await engine.inspectImage(builtTag);
      expect(built).toMatchObject({ repoTags: [builtTag], labels: { 'skt.test': prefix } });
      expect(built?.id).toMatch(/^sha256:[0-9a-f]{64}$/);
      expect(Number.isNaN(Date.parse(built?.created ?? ''))).toBe(false);

      expect((await engine.listImages({ label: [label] })).map((i) => i.id)).toEqual([built?.id]);
      expect((await engine.listImages({ reference: `${prefix}/*` })).map((i) => i.repoTags).flat()).toContain(builtTag);
      expect(await engine.inspectImage(`${prefix}/missing:1`)).toBeUndefined();
    });

    it('tags and removes images', async () => {
      await engine.tagImage(builtTag, `${prefix}/tagged:2`);
      expect((await engine.inspectImage(`${prefix}/tagged:2`))?.id).toBe((await engine.inspectImage(builtTag))?.id);
      await engine.removeImage(`${prefix}/tagged:2`);
      expect(await engine.inspectImage(`${prefix}/tagged:2`)).toBeUndefined();
      const err = await rejection(engine.removeImage(`${prefix}/tagged:2`));
      expect(err.code).toBe('ENGINE_NOT_FOUND');
    });
  });

  describe('pull', () => {
    let digest: string;

    beforeAll(async () => {
      // An image with a layer of its own, pushed and then deleted locally, so the pull
      // downloads bytes and reports them.
      const dir = await contextDir(
        'pushed',
        [`FROM ${BUSYBOX_IMAGE}`, `RUN head -c 3000000 /dev/urandom > /blob && echo ${prefix} > /id`, ''].join('\n'),
      );
      await engine.buildImage({ context: await packBuildContext(dir), tag: `${pushedRepo}:1` });
      const { stdout } = await run('docker', ['push', `${pushedRepo}:1`]);
      digest = /digest: (sha256:[0-9a-f]{64})/.exec(stdout)?.[1] ?? '';
      expect(digest, stdout).not.toBe('');
      await engine.removeImage(`${pushedRepo}:1`);
      expect(await engine.inspectImage(`${pushedRepo}:1`)).toBeUndefined();
    });

    it('pulls from the registry with per-layer progress and confirms the image', async () => {
      const seen: PullProgress[] = [];
      const image = await engine.pullImage(`${pushedRepo}:1`, { onProgress: (p) => seen.push(p) });

      expect(image.repoTags).toContain(`${pushedRepo}:1`);
      expect(image.repoDigests).toContain(`${pushedRepo}@${digest}`);
      const last = seen.at(-1) as PullProgress;
      expect(last.status).toMatch(/Downloaded newer image|Image is up to date/);
      const downloaded = last.layers.filter((l) => l.total > 0);
      expect(downloaded.length).toBeGreaterThanOrEqual(1);
      expect(last.total).toBeGreaterThan(2_000_000);
      expect(last.current).toBe(last.total);
      expect(last.layers.some((l) => l.status === 'Already exists')).toBe(true);
      // Progress was reported while bytes were still missing.
      expect(seen.some((p) => p.total > 0 && p.current < p.total)).toBe(true);
    });

    it('pulls by digest and through pull.registry, then tags the short name', async () => {
      await engine.removeImage(`${pushedRepo}:1`, { force: true });
      const byDigest = await engine.pullImage(`${pushedRepo}@${digest}`);
      expect(byDigest.repoDigests).toContain(`${pushedRepo}@${digest}`);

      const short = `${prefix}/pulled:1`;
      const viaRegistry = await engine.pullImage(withRegistry(TEST_REGISTRY, short));
      await engine.tagImage(withRegistry(TEST_REGISTRY, short), short);
      expect((await engine.inspectImage(short))?.id).toBe(viaRegistry.id);
    });

    it('reports a missing reference as PULL_FAILED with the registry message', async () => {
      const err = await rejection(engine.pullImage(`${TEST_REGISTRY}/${prefix}/missing:1`));
      expect(err.code).toBe('PULL_FAILED');
      expect(err.message).toContain(`${TEST_REGISTRY}/${prefix}/missing:1`);
      expect(err.message).toMatch(/manifest unknown|not found/);
    });

    it('reports an aborted pull as CANCELLED', async () => {
      const err = await rejection(engine.pullImage(`${pushedRepo}:1`, { signal: AbortSignal.abort() }));
      expect(err.code).toBe('CANCELLED');
    });
  });

  describe('build', () => {
    it('reports steps and output, and passes build args (null ones without a value)', async () => {
      const dir = await contextDir('steps', [`FROM ${BUSYBOX_IMAGE}`, 'ARG X', 'ARG Y=default-y', 'RUN echo "X=$X Y=$Y"', ''].join('\n'));
      const events: BuildProgress[] = [];
      const image = await engine.buildImage({
        context: await packBuildContext(dir),
        tag: `${prefix}/steps:1`,
        buildArgs: { X: 'from-args', Y: null, UNUSED: null },
        onProgress: (e) => events.push(e),
      });
      expect(image.repoTags).toEqual([`${prefix}/steps:1`]);
      expect(events.filter((e) => e.kind === 'step')).toEqual([
        { kind: 'step', step: 1, total: 4, text: `FROM ${BUSYBOX_IMAGE}` },
        { kind: 'step', step: 2, total: 4, text: 'ARG X' },
        { kind: 'step', step: 3, total: 4, text: 'ARG Y=default-y' },
        { kind: 'step', step: 4, total: 4, text: 'RUN echo "X=$X Y=$Y"' },
      ]);
      expect(events).toContainEqual({ kind: 'output', text: 'X=from-args Y=default-y' });
    });

    it('fails with BUILD_FAILED carrying the engine message and the last output', async () => {
      const marker = `hello-from-${prefix}`;
      const dir = await contextDir('fails', [`FROM ${BUSYBOX_IMAGE}`, `RUN echo ${marker}; false`, ''].join('\n'));
      const err = await rejection(engine.buildImage({ context: await packBuildContext(dir), tag: `${prefix}/fails:1` }));
      expect(err.code).toBe('BUILD_FAILED');
      expect(err.message).toContain('returned a non-zero code: 1');
      expect(err.message).toContain(`Step 2/2 : RUN echo ${marker}; false`);
      expect(err.message).toMatch(new RegExp(`^  ${marker}$`, 'm'));
      expect(await engine.inspectImage(`${prefix}/fails:1`)).toBeUndefined();
      // forcerm: the failed step's container is removed too.
      const { stdout } = await run('docker', ['ps', '-a', '--no-trunc', '--format', '{{.Command}}']);
      expect(stdout).not.toContain(marker);
    });

    it('fails with BUILD_FAILED for a Dockerfile the engine cannot parse', async () => {
      const dir = await contextDir('unparsable', [`FROM ${BUSYBOX_IMAGE}`, 'BOGUS x', ''].join('\n'));
      const err = await rejection(engine.buildImage({ context: await packBuildContext(dir), tag: `${prefix}/bogus:1` }));
      expect(err.code).toBe('BUILD_FAILED');
      expect(err.message).toContain('unknown instruction: BOGUS');
    });

    it('refuses squash on an engine without experimental features', async () => {
      const dir = await contextDir('squash', [`FROM ${BUSYBOX_IMAGE}`, 'RUN true', ''].join('\n'));
      const err = await rejection(engine.buildImage({ context: await packBuildContext(dir), tag: `${prefix}/squash:1`, squash: true }));
      expect(err.code).toBe('ENGINE_NOT_SUPPORTED');
      expect(err.message).toContain('squash');
      expect(err.message).toContain('experimental');
    });
  });

  describe('containers', () => {
    const name = `${prefix}-c1`;
    let id: string;

    it('creates, refuses a second container with the same name, and inspects', async () => {
      id = await engine.createContainer(
        name,
        sleeper({
          Env: ['FOO=bar'],
          StopSignal: 'SIGTERM',
          HostConfig: {
            NetworkMode: 'none',
            Init: true,
            RestartPolicy: { Name: 'no' },
            Tmpfs: { '/run': 'rw,size=1m' },
            CapAdd: ['NET_ADMIN'],
            ExtraHosts: ['skiff:10.0.0.1'],
          },
        }),
      );
      expect(id).toMatch(/^[0-9a-f]{64}$/);
      const conflict = await rejection(engine.createContainer(name, sleeper()));
      expect(conflict.code).toBe('ENGINE_CONFLICT');

      const info = await engine.inspectContainer(name);
      expect(info).toMatchObject({
        id,
        name,
        labels: { 'skt.test': prefix },
        state: { status: 'created', running: false, pid: 0, startedAt: undefined },
        config: { image: builtTag, user: '', stopSignal: 'SIGTERM', tty: false },
        hostConfig: {
          init: true,
          networkMode: 'none',
          capAdd: ['NET_ADMIN'],
          tmpfs: { '/run': 'rw,size=1m' },
          extraHosts: ['skiff:10.0.0.1'],
          restartPolicy: { name: 'no', maximumRetryCount: 0 },
        },
      });
      expect(info?.config.env).toContain('FOO=bar');
      expect(info?.imageId).toBe((await engine.inspectImage(builtTag))?.id);
      expect(await engine.inspectContainer(`${prefix}-nope`)).toBeUndefined();
    });

    it('starts (twice is fine) and lists by label without the leading slash', async () => {
      await engine.startContainer(id);
      await engine.startContainer(id);
      const info = await engine.inspectContainer(id);
      expect(info?.state).toMatchObject({ status: 'running', running: true });
      expect(info?.state.pid).toBeGreaterThan(0);
      expect(info?.state.startedAt).toBeDefined();
      const listed = await engine.listContainers({ labels: [label] });
      expect(listed).toContainEqual(expect.objectContaining({ id, names: [name], state: 'running', image: builtTag }));
      const err = await rejection(engine.startContainer(`${prefix}-nope`));
      expect(err.code).toBe('ENGINE_NOT_FOUND');
    });

    it('runs commands with exec: build args reached the image, exit codes and streams are kept', async () => {
      expect(await engine.execRun(id, ['cat', '/args'])).toEqual({ exitCode: 0, stdout: 'A=va B=dflt C=\n', stderr: '' });
      expect(await engine.execRun(id, ['sh', '-c', 'echo out; echo err >&2; exit 3'])).toEqual({
        exitCode: 3,
        stdout: 'out\n',
        stderr: 'err\n',
      });
      const asUser = await engine.execRun(id, ['sh', '-c', 'id -u; echo "$X"'], { user: '1234', env: ['X=y'] });
      expect(asUser).toEqual({ exitCode: 0, stdout: '1234\ny\n', stderr: '' });
      const big = await engine.execRun(id, ['sh', '-c', 'head -c 300000 /dev/zero | tr "\\0" a']);
      expect(big.stdout.length).toBe(300000);
    });

    it('gives up on a slow exec with TIMEOUT', async () => {
      const started = Date.now();
      const err = await rejection(engine.execRun(id, ['sleep', '5'], { timeoutMs: 300 }));
      expect(err.code).toBe('TIMEOUT');
      expect(Date.now() - started).toBeLessThan(3000);
    });

    it('returns demultiplexed logs for a container without a TTY, raw ones with a TTY', async () => {
      let logs = '';
      for (let i = 0; i < 50 && !logs.includes('ready'); i++) {
        logs = await engine.containerLogs(id);
        if (!logs.includes('ready')) await new Promise((r) => setTimeout(r, 100));
      }
      // No frame headers left in the text, every line whole.
      expect(logs.split('\n').sort()).toEqual(['', 'oops', 'ready', 'started']);
      expect(logs.endsWith('ready\n')).toBe(true);
      expect(await engine.containerLogs(id, { tail: 1 })).toBe('ready\n');

      const ttyId = await engine.createContainer(
        `${prefix}-tty`,
        sleeper({ Tty: true, Cmd: ['sh', '-c', 'echo tty-out; echo tty-err >&2; exec sleep 300'] }),
      );
      await engine.startContainer(ttyId);
      let ttyLogs = '';
      for (let i = 0; i < 40 && !ttyLogs.includes('tty-err'); i++) {
        ttyLogs = await engine.containerLogs(ttyId);
        await new Promise((r) => setTimeout(r, 100));
      }
      expect(ttyLogs).toBe('tty-out\r\ntty-err\r\n');
      await engine.removeContainer(ttyId, { force: true });
    });

    it('commits the container with extra labels', async () => {
      const imageId = await engine.commitContainer(id, {
        repo: `${prefix}/committed`,
        tag: 'snap',
        labels: { 'skt.committed': 'yes' },
        comment: 'engine-api test',
      });
      const image = await engine.inspectImage(`${prefix}/committed:snap`);
      expect(image?.id).toBe(imageId);
      // Labels merge with those the container had.
      expect(image?.labels).toMatchObject({ 'skt.committed': 'yes', 'skt.test': prefix });
      expect((await engine.inspectContainer(id))?.state.running).toBe(true);
    });

    it('refuses to remove an image a container uses with ENGINE_CONFLICT', async () => {
      const err = await rejection(engine.removeImage(builtTag));
      expect(err.code).toBe('ENGINE_CONFLICT');
    });

    it('renames, stops (twice is fine) and removes', async () => {
      await engine.renameContainer(id, `${name}-renamed`);
      expect(await engine.inspectContainer(name)).toBeUndefined();
      expect((await engine.inspectContainer(`${name}-renamed`))?.id).toBe(id);

      await engine.stopContainer(id, { timeoutSec: 2 });
      await engine.stopContainer(id, { timeoutSec: 2 });
      const stopped = await engine.inspectContainer(id);
      expect(stopped?.state).toMatchObject({ running: false, status: 'exited' });
      expect(stopped?.state.finishedAt).toBeDefined();

      const notRunning = await rejection(engine.execRun(id, ['true']));
      expect(notRunning.code).toBe('ENGINE_CONFLICT');

      await engine.removeContainer(id, { force: true, volumes: true });
      expect(await engine.inspectContainer(id)).toBeUndefined();
      const again = await rejection(engine.removeContainer(id));
      expect(again.code).toBe('ENGINE_NOT_FOUND');
    });
  });

  describe('events', () => {
    it('yields the create event of a container, replayed with since', async () => {
      const since = new Date(Date.now() - 1000);
      const id = await engine.createContainer(`${prefix}-ev`, sleeper());
      const controller = new AbortController();
      const timer = setTimeout(() => controller.abort(), 15_000);
      let found: EngineEvent | undefined;
      for await (const event of engine.events({
        since,
        filters: { type: ['container'], label: [label] },
        signal: controller.signal,
      })) {
        if (event.action === 'create' && event.id === id) {
          found = event;
          break;
        }
      }
      clearTimeout(timer);
      expect(found).toMatchObject({ type: 'container', action: 'create', id, name: `${prefix}-ev` });
      expect(found?.attributes['skt.test']).toBe(prefix);
      expect(Math.abs((found?.time.getTime() ?? 0) - Date.now())).toBeLessThan(60_000);
      await engine.removeContainer(id, { force: true });
    });

    it('delivers live events and ends quietly when the signal aborts', async () => {
      const controller = new AbortController();
      const events = engine.events({ filters: { type: ['container'], label: [label] }, signal: controller.signal });
      const iterator = events[Symbol.asyncIterator]();
      const first = iterator.next();
      await new Promise((r) => setTimeout(r, 500));
      const id = await engine.createContainer(`${prefix}-live`, sleeper());
      const result = await first;
      expect(result.done).toBe(false);
      expect(result.value).toMatchObject({ action: 'create', id });
      const pending = iterator.next();
      controller.abort();
      expect(await pending).toEqual({ done: true, value: undefined });
      await engine.removeContainer(id, { force: true });
    });
  });
});
