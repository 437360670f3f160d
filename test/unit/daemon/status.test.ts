import { describe, expect, it } from 'vitest';
import { applyProgress, applyReport, type StatusSnapshot } from '../../../src/daemon/status.js';
import { formatDuration, formatStatus } from '../../../src/cli/render/status.js';

const plain = { red: (s: string) => s, yellow: (s: string) => s, green: (s: string) => s, bold: (s: string) => s, dim: (s: string) => s };

function base(): StatusSnapshot {
  return {
    daemon: { running: true, pid: 42, version: '1.2.3', startedAt: '2026-01-01T00:00:00.000Z' },
    config: { path: '/c.yaml', ok: true, errors: [], warnings: [], loadedAt: '2026-01-01T00:00:01.000Z' },
    engine: { reachable: true, version: '20.10.24', apiVersion: '1.41' },
    reconcile: { state: 'idle', lastRunAt: '2026-01-01T00:00:02.000Z', lastOk: true },
    images: [],
    containers: [],
    users: [],
  };
}

describe('daemon/status', () => {
  it('tracks a pull from progress to present', () => {
    let s = applyProgress(base(), {
      kind: 'image',
      ref: 'a:1',
      phase: 'pulling',
      from: 'r/a:1',
      progress: { layers: [], current: 50, total: 200 } as never,
    });
    expect(s.images).toEqual([{ ref: 'a:1', state: 'pulling', pull: { from: 'r/a:1', current: 50, total: 200, percent: 25 } }]);
    s = applyProgress(s, { kind: 'image', ref: 'a:1', phase: 'ready', id: 'sha256:1' });
    expect(s.images).toEqual([{ ref: 'a:1', state: 'present', id: 'sha256:1' }]);
  });

  it('tracks build steps and failures with their reason', () => {
    let s = applyProgress(base(), {
      kind: 'image',
      ref: 'b:1',
      phase: 'building',
      progress: { kind: 'step', step: 2, total: 5, text: 'RUN make' },
    });
    expect(s.images[0]).toMatchObject({ state: 'building', build: { step: 2, total: 5, text: 'RUN make' } });
    s = applyProgress(s, { kind: 'image', ref: 'b:1', phase: 'failed', message: 'image b:1 is not available: …' });
    expect(s.images).toEqual([{ ref: 'b:1', state: 'failed', message: 'image b:1 is not available: …' }]);
  });

  it('shows container activity, then the outcome of the pass', () => {
    let s = applyProgress(base(), { kind: 'container', name: 'core', phase: 'waiting', message: 'waiting for systemd: starting' });
    expect(s.containers[0]).toMatchObject({ name: 'core', readiness: 'waiting for systemd: starting' });
    s = applyReport(s, {
      ok: false,
      images: [],
      containers: [{ name: 'core', status: 'failed', message: 'container core failed to start: caps' }],
    });
    expect(s.containers[0]).toMatchObject({ name: 'core', problem: 'container core failed to start: caps' });
    s = applyReport(s, { ok: true, images: [], containers: [{ name: 'core', status: 'started' }] });
    expect(s.containers[0]?.problem).toBeUndefined();
  });
});

describe('cli/render/status', () => {
  it.each([
    [5_000, '5s'],
    [65_000, '1m5s'],
    [3_600_000, '1h'],
    [90_000_000, '25h'],
    [200_000_000, '2d7h'],
  ])('formats %d ms as %s', (ms, text) => {
    expect(formatDuration(ms)).toBe(text);
  });

  it('lays out every section a person needs', () => {
    const s: StatusSnapshot = {
      ...base(),
      config: {
        path: '/c.yaml',
        ok: false,
        loadedAt: '2026-01-01T00:00:01.000Z',
        warnings: [],
        errors: [
          {
            file: '/c.yaml',
            line: 3,
            col: 5,
            path: ['containers', 'core', 'tmpfs'],
            message: 'unknown key "tmpfs"; did you mean "tmpFs"?',
          },
        ],
      },
      images: [{ ref: 'core:1', state: 'pulling', pull: { from: 'quay.io/core:1', current: 1048576, total: 4194304, percent: 25 } }],
      containers: [
        {
          name: 'core',
          state: 'running',
          image: 'core:1',
          startedAt: '2026-01-01T00:00:00.000Z',
          readiness: 'ready (systemd: running)',
          restartCount: 3,
          lastLogs: 'oops\nagain',
        },
      ],
      users: [{ name: 'core', container: 'core', ready: true, sessions: 2 }],
    };
    const text = formatStatus(s, plain, Date.parse('2026-01-01T00:10:00.000Z'));
    expect(text).toContain('daemon    running (pid 42, up 10m, 1.2.3)');
    expect(text).toContain('config    /c.yaml: 1 error(s); still using the config loaded 00:00:01');
    expect(text).toContain('/c.yaml:3:5: containers.core.tmpfs: unknown key "tmpfs"; did you mean "tmpFs"?');
    expect(text).toContain('engine    reachable (Docker 20.10.24, API 1.41)');
    expect(text).toMatch(/core:1 +pulling +quay\.io\/core:1 25% of 4\.0 MiB/);
    expect(text).toMatch(/core +running +10m +core:1 +ready \(systemd: running\) +3 +last log lines:\n +oops\n +again/);
    expect(text).toMatch(/core +core +yes +2/);
  });
});
