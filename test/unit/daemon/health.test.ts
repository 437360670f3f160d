import { describe, expect, it } from 'vitest';
import { CRASH_LOOP_WINDOW_MS, unhealthyReasons } from '../../../src/daemon/health.js';
import type { ContainerStatus, StatusSnapshot } from '../../../src/daemon/status.js';

const NOW = Date.parse('2026-06-01T12:00:00Z');
const ago = (ms: number) => new Date(NOW - ms).toISOString();

function snapshot(containers: Partial<ContainerStatus>[] = []): StatusSnapshot {
  return {
    daemon: { running: true, version: '1' },
    config: { path: '/c.yaml', ok: true, errors: [], warnings: [] },
    engine: { reachable: true },
    reconcile: { state: 'idle' },
    images: [{ ref: 'a:1', state: 'present' }],
    containers: containers.map((c) => ({
      name: 'core',
      state: 'running',
      image: 'a:1',
      readiness: 'ready',
      restartCount: 0,
      startedAt: ago(5_000),
      ...c,
    })),
    users: [],
  };
}

describe('unhealthyReasons', () => {
  it('is empty when everything runs as configured', () => {
    expect(unhealthyReasons(snapshot([{}]), NOW)).toEqual([]);
  });

  it('forgives a restart the container has stayed up a while since', () => {
    expect(unhealthyReasons(snapshot([{ restartCount: 1, startedAt: ago(CRASH_LOOP_WINDOW_MS + 10_000) }]), NOW)).toEqual([]);
  });

  it('calls restarts with a short uptime a crash loop, with the count and the uptime', () => {
    expect(unhealthyReasons(snapshot([{ restartCount: 4, startedAt: ago(3_000) }]), NOW)).toEqual([
      'container core: crash loop: the engine restarted it 4 times, the last 3 s ago',
    ]);
  });

  it('names a container that is not running, or has a problem, by its state or the problem', () => {
    expect(
      unhealthyReasons(
        snapshot([
          { name: 'a', state: 'restarting', restartCount: 9 },
          { name: 'b', problem: 'container b failed to start: caps\nmore' },
        ]),
        NOW,
      ),
    ).toEqual(['container a: restarting', 'container b: container b failed to start: caps']);
  });

  it('names the daemon, config, engine and images when they are wrong', () => {
    const s = snapshot();
    s.daemon.running = false;
    s.config = { ...s.config, ok: false, errors: [{ file: '/c.yaml', line: 1, col: 1, path: [], message: 'x' }] };
    s.engine = { reachable: false, error: 'cannot reach Docker' };
    s.images = [{ ref: 'a:1', state: 'failed', message: 'pull failed\ndetails' }];
    expect(unhealthyReasons(s, NOW)).toEqual([
      'daemon: not running',
      'config: 1 error (the last good config stays in force)',
      'engine: not reachable (cannot reach Docker)',
      'image a:1: failed (pull failed)',
    ]);
  });
});
