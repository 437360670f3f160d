import { describe, expect, it } from 'vitest';
import { chooseRollbackTarget } from '../../../src/reconcile/rollback.js';

const snap = (tag: string, id: string) => ({ ref: `skiff-core-snapshot/core:${tag}`, id, created: '', size: 0 });
// Newest first, as listSnapshots gives them.
const snapshots = [
  snap('20260103-000000-000', 'sha256:c'),
  snap('20260102-000000-000', 'sha256:b'),
  snap('20260101-000000-000', 'sha256:a'),
];

describe('chooseRollbackTarget', () => {
  it('takes the newest snapshot the container was not made from', () => {
    // After an image change the container runs the new image: back to the newest snapshot.
    expect(chooseRollbackTarget(snapshots, 'sha256:new-image')).toBe(snapshots[0]);
    // After a rollback it runs an older snapshot: the newest one (what the rollback saved) is next.
    expect(chooseRollbackTarget(snapshots, 'sha256:b')).toBe(snapshots[0]);
    expect(chooseRollbackTarget(snapshots, 'sha256:c')).toBe(snapshots[1]);
  });

  it('takes the one asked for, by reference or by tag, and says when there is none', () => {
    expect(chooseRollbackTarget(snapshots, 'x', '20260101-000000-000')).toBe(snapshots[2]);
    expect(chooseRollbackTarget(snapshots, 'x', 'skiff-core-snapshot/core:20260102-000000-000')).toBe(snapshots[1]);
    expect(chooseRollbackTarget(snapshots, 'x', 'nope')).toMatch(/^no snapshot "nope"/);
    expect(chooseRollbackTarget([], 'x')).toMatch(/^no earlier snapshot/);
  });
});
