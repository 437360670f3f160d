import { describe, expect, it } from 'vitest';
import type { Engine } from '../../../src/engine/engine.js';
import { lowSpace, parseMinFree, spaceGuard } from '../../../src/reconcile/disk-space.js';

describe('disk space', () => {
  it('reads sizes and shares', () => {
    expect(parseMinFree('500MB')).toEqual({ bytes: 500e6 });
    expect(parseMinFree('1.5 gb')).toEqual({ bytes: 1.5e9 });
    expect(parseMinFree('10%')).toEqual({ percent: 10 });
  });

  it('says how much is free when it is below the minimum', () => {
    expect(lowSpace({ free: 400e6, total: 8e9 }, { bytes: 1e9 })).toBe('400 MB free of 8.0 GB');
    expect(lowSpace({ free: 2e9, total: 8e9 }, { bytes: 1e9 })).toBeUndefined();
    expect(lowSpace({ free: 700e6, total: 8e9 }, { percent: 10 })).toBe('700 MB free of 8.0 GB');
    expect(lowSpace({ free: 900e6, total: 8e9 }, { percent: 10 })).toBeUndefined();
  });

  it('refuses with DISK_LOW naming the data root and the setting; asks the engine once', async () => {
    let asked = 0;
    const engine = { dataRoot: async () => (asked++, '/var/lib/docker') } as unknown as Engine;
    const guard = spaceGuard(engine, '1GB', async () => ({ free: 300e6, total: 4e9 }));
    await expect(guard('a snapshot of core')).rejects.toMatchObject({
      code: 'DISK_LOW',
      message: expect.stringMatching(
        /^not enough disk for a snapshot of core: 300 MB free of 4\.0 GB where the engine keeps its data \(\/var\/lib\/docker\), below storage\.minFree \(1GB\)\./,
      ),
    });
    await expect(guard('x')).rejects.toThrow();
    expect(asked).toBe(1);
  });

  it('does not check an engine whose data root it cannot see', async () => {
    const engine = { dataRoot: async () => '/elsewhere' } as unknown as Engine;
    await expect(spaceGuard(engine, '1GB', async () => Promise.reject(new Error('ENOENT')))('x')).resolves.toBeUndefined();
  });
});
