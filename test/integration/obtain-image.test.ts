// obtainImage (with planImage deciding the attempts) against the real engine and the loopback
// registry: what a device owner sees while images are pulled and built, and what ends up in them.
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Image } from '../../src/config/schema.js';
import { packBuildContext } from '../../src/engine/build-context.js';
import { createDockerEngine } from '../../src/engine/docker-engine.js';
import type { BuildProgress, Engine, ImageInfo, PullProgress } from '../../src/engine/engine.js';
import { isNotFound } from '../../src/errors.js';
import type { ImageEvent, ProgressEvent } from '../../src/reconcile/events.js';
import { isImageUnavailable, obtainImage } from '../../src/reconcile/obtain-image.js';
import { planImage } from '../../src/reconcile/plan.js';
import type { ObtainImageStep } from '../../src/reconcile/plan.js';
import {
  BUSYBOX_IMAGE,
  TEST_REGISTRY,
  cleanupByPrefix,
  integrationSkipReason,
  runOnce,
  testDocker,
  uniquePrefix,
} from './helpers/engine.js';

const run = promisify(execFile);

describe.skipIf(integrationSkipReason())('reconcile/obtain-image against the real engine', () => {
  const prefix = uniquePrefix();
  /** The image in the registry, and the plain name it is configured under. */
  const REMOTE = `${TEST_REGISTRY}/${prefix}/img:1`;
  const LOCAL = `${prefix}/img:1`;
  let engine: Engine;
  let work: string;
  let workDir: string;
  let pushedId: string;
  /** Build sources: one that builds, one whose RUN fails. */
  let goodSource: string;
  let failingSource: string;
  let containers = 0;

  async function writeTree(root: string, files: Record<string, string>): Promise<string> {
    for (const [name, content] of Object.entries(files)) {
      await mkdir(dirname(join(root, name)), { recursive: true });
      await writeFile(join(root, name), content);
    }
    return root;
  }

  async function removeLocal(...refs: string[]): Promise<void> {
    for (const ref of refs) {
      await engine.removeImage(ref, { force: true }).catch((err: unknown) => {
        if (!isNotFound(err)) throw err;
      });
    }
  }

  /** Runs `sh -c script` in the image and returns its stdout. */
  async function inImage(ref: string, script: string): Promise<string> {
    const result = await runOnce({ name: `${prefix}-run-${++containers}`, image: ref, cmd: ['sh', '-c', script] });
    expect(result.exitCode, result.stderr).toBe(0);
    return result.stdout;
  }

  interface Outcome {
    step: ObtainImageStep | undefined;
    events: ImageEvent[];
    image: ImageInfo | undefined;
    error: unknown;
  }

  /** What a setup run does for one image: observe, plan, obtain. */
  async function obtain(ref: string, config: unknown): Promise<Outcome> {
    const present = await engine.inspectImage(ref);
    const step = planImage(ref, Image.parse(config), present);
    const events: ImageEvent[] = [];
    if (step === undefined) return { step, events, image: undefined, error: undefined };
    try {
      const image = await obtainImage({ engine, workDir }, step, {
        onProgress: (event: ProgressEvent) => {
          if (event.kind === 'image') events.push(event);
        },
      });
      return { step, events, image, error: undefined };
    } catch (error) {
      return { step, events, image: undefined, error };
    }
  }

  function pullProgress(events: ImageEvent[]): { from: string; progress: PullProgress }[] {
    return events.flatMap((event) => (event.phase === 'pulling' ? [{ from: event.from, progress: event.progress }] : []));
  }

  function buildProgress(events: ImageEvent[]): BuildProgress[] {
    return events.flatMap((event) => (event.phase === 'building' ? [event.progress] : []));
  }

  function failedAttempts(events: ImageEvent[]): { attempt: string; message: string }[] {
    return events.flatMap((event) => (event.phase === 'attempt-failed' ? [{ attempt: event.attempt, message: event.message }] : []));
  }

  beforeAll(async () => {
    engine = createDockerEngine();
    work = await mkdtemp(join(tmpdir(), `${prefix}-`));
    workDir = join(work, 'work');

    // A distinguishable image with a 1 MB layer of its own, pushed and then removed locally so
    // that every pull really downloads that layer.
    const seed = await writeTree(join(work, 'seed'), {
      Dockerfile: `FROM ${BUSYBOX_IMAGE}\nRUN echo from-registry > /origin && head -c 1000000 /dev/urandom > /blob\n`,
    });
    const seeded = await engine.buildImage({ context: await packBuildContext(seed), tag: REMOTE });
    pushedId = seeded.id;
    await run('docker', ['push', REMOTE]);
    await removeLocal(REMOTE);

    goodSource = await writeTree(join(work, 'good'), {
      Dockerfile: `FROM ${BUSYBOX_IMAGE}\nRUN echo built-locally > /origin\n`,
    });
    failingSource = await writeTree(join(work, 'failing'), {
      Dockerfile: `FROM ${BUSYBOX_IMAGE}\nRUN exit 3\n`,
    });
  });

  afterAll(async () => {
    await cleanupByPrefix(prefix);
    if (work !== undefined) await rm(work, { recursive: true, force: true });
  });

  describe('pulling from pull.registry', () => {
    it.each(['always', 'ifnotpresent', 'ifbuildfails'] as const)(
      '%s: pulls REGISTRY/REF with byte progress and tags it as REF',
      async (pullPolicy) => {
        await removeLocal(LOCAL, REMOTE);
        const config = { pull: { pullPolicy, registry: TEST_REGISTRY } };

        const first = await obtain(LOCAL, config);

        expect(first.error).toBeUndefined();
        expect(first.step?.attempts).toEqual([{ kind: 'pull', from: REMOTE }]);
        expect(first.image?.id).toBe(pushedId);
        const progress = pullProgress(first.events);
        expect(progress.length).toBeGreaterThan(0);
        expect(progress.every((p) => p.from === REMOTE)).toBe(true);
        expect(progress.some((p) => p.progress.total > 0 && p.progress.layers.some((l) => l.status === 'Downloading'))).toBe(true);
        expect(progress.at(-1)?.progress.current).toBe(progress.at(-1)?.progress.total);
        expect(first.events.at(-1)).toEqual({ kind: 'image', ref: LOCAL, phase: 'ready', id: pushedId });
        expect((await engine.inspectImage(LOCAL))?.repoTags).toEqual(expect.arrayContaining([LOCAL, REMOTE]));
        expect(await inImage(LOCAL, 'cat /origin')).toBe('from-registry\n');

        // The next setup run, with the image present.
        const second = await obtain(LOCAL, config);
        if (pullPolicy === 'always') {
          expect(second.step).toMatchObject({ present: true, attempts: [{ kind: 'pull', from: REMOTE }] });
          expect(second.image?.id).toBe(pushedId);
          expect(second.events.at(-1)).toEqual({ kind: 'image', ref: LOCAL, phase: 'ready', id: pushedId });
        } else {
          expect(second.step).toBeUndefined();
        }
      },
    );

    it('always: keeps the present image with a warning when the refresh cannot be pulled', async () => {
      const ref = `${prefix}/local-only:1`;
      await testDocker()
        .getImage(BUSYBOX_IMAGE)
        .tag({ repo: `${prefix}/local-only`, tag: '1' });
      const busybox = await engine.inspectImage(BUSYBOX_IMAGE);

      const outcome = await obtain(ref, { pull: { pullPolicy: 'always', registry: TEST_REGISTRY } });

      expect(outcome.image?.id).toBe(busybox?.id);
      const last = outcome.events.at(-1);
      expect(last).toMatchObject({ phase: 'ready', id: busybox?.id });
      const warning = last?.phase === 'ready' ? last.warning : undefined;
      expect(warning).toMatch(new RegExp(`^could not refresh ${ref}: pull ${TEST_REGISTRY}/${ref} failed: .*not found`));
      expect(warning).toMatch(/; keeping the image that is present$/);
    });
  });

  describe('falling back between pull and build', () => {
    it('ifbuildfails: a failing build is reported, then the pull provides the image', async () => {
      await removeLocal(LOCAL, REMOTE);

      const outcome = await obtain(LOCAL, {
        pull: { pullPolicy: 'ifbuildfails', registry: TEST_REGISTRY },
        build: { source: failingSource },
      });

      expect(outcome.step?.attempts.map((a) => a.kind)).toEqual(['build', 'pull']);
      expect(outcome.image?.id).toBe(pushedId);
      expect(failedAttempts(outcome.events)).toEqual([
        { attempt: 'build', message: expect.stringContaining("The command '/bin/sh -c exit 3' returned a non-zero code: 3") },
      ]);
      const phases = [...new Set(outcome.events.map((event) => event.phase))];
      expect(phases).toEqual(['building', 'attempt-failed', 'pulling', 'ready']);
      expect(await inImage(LOCAL, 'cat /origin')).toBe('from-registry\n');
    });

    it('ifbuildfails: a successful build means no pull', async () => {
      await removeLocal(LOCAL, REMOTE);

      const outcome = await obtain(LOCAL, {
        pull: { pullPolicy: 'ifbuildfails', registry: TEST_REGISTRY },
        build: { source: goodSource },
      });

      expect(outcome.error).toBeUndefined();
      expect(pullProgress(outcome.events)).toEqual([]);
      expect(failedAttempts(outcome.events)).toEqual([]);
      expect(outcome.image?.id).not.toBe(pushedId);
      expect(await engine.inspectImage(REMOTE)).toBeUndefined();
      expect(await inImage(LOCAL, 'cat /origin')).toBe('built-locally\n');
    });

    it('ifnotpresent: an image missing from the registry is built instead', async () => {
      const ref = `${prefix}/not-in-registry:1`;

      const outcome = await obtain(ref, {
        pull: { pullPolicy: 'ifnotpresent', registry: TEST_REGISTRY },
        build: { source: goodSource },
      });

      expect(outcome.error).toBeUndefined();
      expect(failedAttempts(outcome.events)).toEqual([
        { attempt: 'pull', message: expect.stringMatching(/manifest for .*not-in-registry:1 not found/) },
      ]);
      expect(outcome.events.at(-1)).toEqual({ kind: 'image', ref, phase: 'ready', id: outcome.image?.id });
      expect(await inImage(ref, 'cat /origin')).toBe('built-locally\n');
    });

    it('both failing: IMAGE_UNAVAILABLE names the pull error and the build error', async () => {
      const ref = `${prefix}/unobtainable:1`;

      const outcome = await obtain(ref, {
        pull: { registry: TEST_REGISTRY },
        build: { source: failingSource },
      });

      expect(isImageUnavailable(outcome.error)).toBe(true);
      const message = (outcome.error as Error).message;
      expect(message).toMatch(
        new RegExp(`^image ${ref} is not available: pull ${TEST_REGISTRY}/${ref} failed: manifest for \\S+ not found: manifest unknown`),
      );
      expect(message).toContain(`; build from ${failingSource} failed: The command '/bin/sh -c exit 3' returned a non-zero code: 3`);
      expect(outcome.events.at(-1)).toEqual({ kind: 'image', ref, phase: 'failed', message });
      expect(await engine.inspectImage(ref)).toBeUndefined();
    });
  });

  describe('building', () => {
    it('builds from a local directory with root, dockerfile, build args and .dockerignore', async () => {
      const ref = `${prefix}/built:1`;
      const source = await writeTree(join(work, 'dir-source'), {
        'README.md': 'outside the build root\n',
        'image/.dockerignore': 'secret.txt\n*.tmp\n',
        'image/docker/Dockerfile.busybox': [
          `FROM ${BUSYBOX_IMAGE}`,
          'ARG A',
          'ARG B=default-b',
          'COPY . /ctx',
          'RUN echo "$A-$B" > /args && echo "build output for $A"',
          '',
        ].join('\n'),
        'image/payload.txt': 'payload\n',
        'image/secret.txt': 'do not send\n',
        'image/scratch.tmp': 'do not send\n',
      });

      const outcome = await obtain(ref, {
        build: { source, root: 'image', dockerfile: 'docker/Dockerfile.busybox', buildArgs: { A: 'value-a', B: null } },
      });

      expect(outcome.error).toBeUndefined();
      expect(await inImage(ref, 'cat /args')).toBe('value-a-default-b\n');
      expect((await inImage(ref, 'cd /ctx && find . -type f | sort')).trim().split('\n')).toEqual([
        './.dockerignore',
        './docker/Dockerfile.busybox',
        './payload.txt',
      ]);
      const progress = buildProgress(outcome.events);
      expect(progress.filter((p) => p.kind === 'step')).toEqual([
        { kind: 'step', step: 1, total: 5, text: `FROM ${BUSYBOX_IMAGE}` },
        { kind: 'step', step: 2, total: 5, text: 'ARG A' },
        { kind: 'step', step: 3, total: 5, text: 'ARG B=default-b' },
        { kind: 'step', step: 4, total: 5, text: 'COPY . /ctx' },
        { kind: 'step', step: 5, total: 5, text: 'RUN echo "$A-$B" > /args && echo "build output for $A"' },
      ]);
      expect(progress).toContainEqual({ kind: 'output', text: 'build output for value-a' });
    });

    it('names a Dockerfile that is not in the build root', async () => {
      const ref = `${prefix}/no-dockerfile:1`;

      const outcome = await obtain(ref, { build: { source: goodSource, dockerfile: 'docker/Dockerfile.arm' } });

      expect(isImageUnavailable(outcome.error)).toBe(true);
      expect((outcome.error as Error).message).toBe(
        `image ${ref} is not available: build from ${goodSource} failed: ` +
          `Dockerfile "docker/Dockerfile.arm" not found in build source ${goodSource}`,
      );
    });

    it('builds from a .tar.gz file and removes what it unpacked', async () => {
      const ref = `${prefix}/from-archive:1`;
      const tree = await writeTree(join(work, 'archive-tree'), {
        Dockerfile: `FROM ${BUSYBOX_IMAGE}\nARG GREETING\nCOPY app /app\nRUN echo "$GREETING" > /greeting\n`,
        '.dockerignore': '**/*.log\n',
        'app/hello.txt': 'hello\n',
        'app/debug.log': 'ignored\n',
      });
      const archive = join(work, 'source.tar.gz');
      await run('tar', ['-czf', archive, '-C', tree, '.']);

      const outcome = await obtain(ref, { build: { source: archive, buildArgs: { GREETING: 'hi' } } });

      expect(outcome.error).toBeUndefined();
      expect(buildProgress(outcome.events).some((p) => p.kind === 'step' && p.step === p.total)).toBe(true);
      expect(await inImage(ref, 'cat /greeting; ls /app')).toBe('hi\nhello.txt\n');
      expect(await readdir(workDir)).toEqual([]);
    });

    it('builds from a git repository and removes the clone', async () => {
      const ref = `${prefix}/from-git:1`;
      const tree = await writeTree(join(work, 'git-tree'), {
        'core/Dockerfile': `FROM ${BUSYBOX_IMAGE}\nCOPY version /version\n`,
        'core/version': 'v1\n',
      });
      const git = (...args: string[]) => run('git', ['-C', tree, '-c', 'user.name=t', '-c', 'user.email=t@t', ...args]);
      await git('init', '-q');
      await git('add', '.');
      await git('commit', '-q', '-m', 'init');
      const bare = join(work, 'core.git');
      await run('git', ['clone', '-q', '--bare', tree, bare]);

      const outcome = await obtain(ref, { build: { source: bare, root: 'core' } });

      expect(outcome.error).toBeUndefined();
      expect(await inImage(ref, 'cat /version')).toBe('v1\n');
      expect(await readdir(workDir)).toEqual([]);
    });
  });
});
