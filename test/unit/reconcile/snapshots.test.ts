import { describe, expect, it } from 'vitest';
import { planPrune, type Snapshot } from '../../../src/reconcile/snapshots.js';

const snap = (tag: string, id = `sha256:${tag}`): Snapshot => ({ ref: `skiff-core-snapshot/core:${tag}`, id, created: '', size: 0 });

describe('planPrune', () => {
  const newestFirst = [snap('5'), snap('4'), snap('3'), snap('2'), snap('1')];

  it('keeps the newest N and removes the rest', () => {
    expect(planPrune(newestFirst, 3, new Set()).map((s) => s.ref)).toEqual(['skiff-core-snapshot/core:2', 'skiff-core-snapshot/core:1']);
    expect(planPrune(newestFirst.slice(0, 3), 3, new Set())).toEqual([]);
  });

  it('never removes one a container was made from, however old', () => {
    expect(planPrune(newestFirst, 2, new Set(['sha256:1'])).map((s) => s.ref)).toEqual([
      'skiff-core-snapshot/core:3',
      'skiff-core-snapshot/core:2',
    ]);
  });
});
