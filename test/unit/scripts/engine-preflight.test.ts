import { describe, expect, it } from 'vitest';
// @ts-expect-error plain ESM script without types
import { engineSocket, provisionBlocker } from '../../../scripts/lib/engine-preflight.mjs';

describe('npm start preflight', () => {
  it('reads the engine socket from DOCKER_HOST, and provisions no remote engine', () => {
    expect(engineSocket({})).toBe('/var/run/docker.sock');
    expect(engineSocket({ DOCKER_HOST: 'unix:///tmp/x/docker.sock' })).toBe('/tmp/x/docker.sock');
    expect(engineSocket({ DOCKER_HOST: 'tcp://10.0.0.1:2375' })).toBeUndefined();
  });

  it('names what is missing, and the command that fixes it, when it cannot provision', () => {
    const debian = (p: string) => ['/usr/bin/apt-get', '/etc/debian_version'].includes(p);
    expect(provisionBlocker(0, debian)).toBeUndefined();
    expect(provisionBlocker(1000, debian)).toEqual({ missing: 'root', fix: 'run it as root: sudo npm start' });
    const other = provisionBlocker(0, () => false);
    expect(other.missing).toBe('Debian or Ubuntu (apt-get)');
    expect(other.fix).toContain('install Docker Engine');
  });
});
