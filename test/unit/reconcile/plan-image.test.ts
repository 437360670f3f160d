import { describe, expect, it } from 'vitest';
import { Image } from '../../../src/config/schema.js';
import type { ImageInfo } from '../../../src/engine/engine.js';
import { planImage } from '../../../src/reconcile/plan.js';

const REF = 'skiffos/x:latest';
const SOURCE = '/opt/skiff/coreenv/base';
const PRESENT: ImageInfo = { id: 'sha256:present', repoTags: [REF], repoDigests: [], labels: {}, created: '', size: 0 };

/** A config as the loader produces it (defaults applied by the schema). */
function config(raw: unknown): Image {
  return Image.parse(raw);
}

const build = { source: SOURCE };
const BUILD = { kind: 'build', build: expect.objectContaining({ source: SOURCE }) };
const PULL = { kind: 'pull', from: REF };

type Row = [string, Image | undefined, 'present' | 'absent', unknown[] | undefined];

// [description, images.REF config, image state, expected attempts (undefined: nothing to do)]
const TABLE: Row[] = [
  ['no images entry', undefined, 'absent', [PULL]],
  ['no images entry', undefined, 'present', undefined],
  ['empty images entry', config({}), 'absent', [PULL]],
  ['empty images entry', config({}), 'present', undefined],
  ['build only', config({ build }), 'absent', [BUILD]],
  ['build only', config({ build }), 'present', undefined],
  ['pull section without a policy (ifnotpresent)', config({ pull: {} }), 'absent', [PULL]],
  ['pull section without a policy (ifnotpresent)', config({ pull: {} }), 'present', undefined],

  ['always, no build', config({ pull: { pullPolicy: 'always' } }), 'absent', [PULL]],
  ['always, no build', config({ pull: { pullPolicy: 'always' } }), 'present', [PULL]],
  ['always, with build', config({ pull: { pullPolicy: 'always' }, build }), 'absent', [PULL, BUILD]],
  ['always, with build', config({ pull: { pullPolicy: 'always' }, build }), 'present', [PULL]],

  ['ifnotpresent, no build', config({ pull: { pullPolicy: 'ifnotpresent' } }), 'absent', [PULL]],
  ['ifnotpresent, no build', config({ pull: { pullPolicy: 'ifnotpresent' } }), 'present', undefined],
  ['ifnotpresent, with build', config({ pull: { pullPolicy: 'ifnotpresent' }, build }), 'absent', [PULL, BUILD]],
  ['ifnotpresent, with build', config({ pull: { pullPolicy: 'ifnotpresent' }, build }), 'present', undefined],

  // The original never pulled here (no build → nothing at all); pulling is what the policy promises.
  ['ifbuildfails, no build', config({ pull: { pullPolicy: 'ifbuildfails' } }), 'absent', [PULL]],
  ['ifbuildfails, no build', config({ pull: { pullPolicy: 'ifbuildfails' } }), 'present', undefined],
  ['ifbuildfails, with build', config({ pull: { pullPolicy: 'ifbuildfails' }, build }), 'absent', [BUILD, PULL]],
  ['ifbuildfails, with build', config({ pull: { pullPolicy: 'ifbuildfails' }, build }), 'present', undefined],
];

describe('reconcile/plan planImage', () => {
  it.each(TABLE)('%s, image %s', (_name, image, state, attempts) => {
    const step = planImage(REF, image, state === 'present' ? PRESENT : undefined);

    if (attempts === undefined) {
      expect(step).toBeUndefined();
      return;
    }
    expect(step).toEqual({ kind: 'obtain-image', ref: REF, attempts, present: state === 'present' });
  });

  it.each([
    ['always', 'absent', ['pull', 'build']],
    ['always', 'present', ['pull']],
    ['ifnotpresent', 'absent', ['pull', 'build']],
    ['ifbuildfails', 'absent', ['build', 'pull']],
  ] as const)('pulls REGISTRY/REF for pull.registry (%s, image %s)', (pullPolicy, state, kinds) => {
    const image = config({ pull: { pullPolicy, registry: 'quay.io' }, build });

    const step = planImage(REF, image, state === 'present' ? PRESENT : undefined);

    expect(step?.attempts.map((attempt) => attempt.kind)).toEqual(kinds);
    expect(step?.attempts.find((attempt) => attempt.kind === 'pull')).toEqual({ kind: 'pull', from: `quay.io/${REF}` });
  });

  it.each([
    ['skiffos/x', '127.0.0.1:5000/skiffos/x:latest'],
    ['docker.io/skiffos/x:1', '127.0.0.1:5000/skiffos/x:1'],
    ['ubuntu:22.04', '127.0.0.1:5000/ubuntu:22.04'],
  ])('spells the registry reference for %s as %s', (ref, from) => {
    const step = planImage(ref, config({ pull: { registry: '127.0.0.1:5000' } }), undefined);

    expect(step?.attempts).toEqual([{ kind: 'pull', from }]);
  });

  it('passes the whole build section to the build attempt', () => {
    const image = config({
      build: { source: SOURCE, root: 'sub', dockerfile: 'Dockerfile.arm', buildArgs: { A: '1', B: null }, squash: true },
    });

    const step = planImage(REF, image, undefined);

    expect(step?.attempts).toEqual([
      {
        kind: 'build',
        build: {
          source: SOURCE,
          root: 'sub',
          dockerfile: 'Dockerfile.arm',
          buildArgs: { A: '1', B: null },
          squash: true,
          preserveIntermediate: false,
          scratchBuild: false,
        },
      },
    ]);
  });
});
