import { describe, expect, it } from 'vitest';
import { formatDiagnostic } from '../../../src/config/diagnostics.js';
import { parseConfig } from '../../../src/config/load.js';
import { containerSpec } from '../../../src/reconcile/container-spec.js';

const load = (extra: string) => parseConfig(`containers:\n  core:\n    image: debian:12\n${extra}`, 'c.yaml');

describe('container limits and devices', () => {
  it('reach the engine as docker run would pass them', () => {
    const result = load(
      '    memory: 512m\n    cpus: 1.5\n    pidsLimit: 200\n    hostname: core-1\n' +
        '    devices: ["/dev/ttyUSB0", "/dev/null:/dev/skt-null:rw"]\n    ulimits:\n      nofile: "1024:4096"\n      core: 0\n      memlock: -1\n',
    );
    if (!result.ok) throw new Error(result.diagnostics.map(formatDiagnostic).join('\n'));
    const { body } = containerSpec('core', result.config.containers.core!);
    expect(body.Hostname).toBe('core-1');
    expect(body.HostConfig).toMatchObject({
      Memory: 512 * 1024 * 1024,
      NanoCpus: 1_500_000_000,
      PidsLimit: 200,
      Devices: [
        { PathOnHost: '/dev/ttyUSB0', PathInContainer: '/dev/ttyUSB0', CgroupPermissions: 'rwm' },
        { PathOnHost: '/dev/null', PathInContainer: '/dev/skt-null', CgroupPermissions: 'rw' },
      ],
      Ulimits: [
        { Name: 'nofile', Soft: 1024, Hard: 4096 },
        { Name: 'core', Soft: 0, Hard: 0 },
        { Name: 'memlock', Soft: -1, Hard: -1 },
      ],
    });
  });

  it('leave a container without them exactly as before (same spec hash, so nothing is recreated)', () => {
    const plain = load('');
    if (!plain.ok) throw new Error('plain config invalid');
    const { body } = containerSpec('core', plain.config.containers.core!);
    expect(body.HostConfig).not.toHaveProperty('Memory');
    expect(body.HostConfig).not.toHaveProperty('Devices');
    expect(body).not.toHaveProperty('Hostname');
  });

  it('are refused with the line and column of what is wrong', () => {
    const result = load(
      '    memory: lots\n    cpus: 0\n    pidsLimit: 0\n    devices: ["dev/ttyUSB0", "/dev/a:/dev/b:rwx"]\n' +
        '    ulimits:\n      nofiles: 10\n      nproc: "20:10"\n    hostname: -bad-\n    hostUTS: true\n',
    );
    expect(result.ok).toBe(false);
    expect(result.diagnostics.filter((d) => d.severity === 'error').map(formatDiagnostic)).toEqual([
      'c.yaml:4:13: containers.core.memory: "lots" is not a size (e.g. 512m or 2g)',
      'c.yaml:5:11: containers.core.cpus: must be at least 0.01',
      expect.stringMatching(/^c\.yaml:6:16: containers\.core\.pidsLimit: must be at least 1/),
      'c.yaml:7:15: containers.core.devices[0]: "dev/ttyUSB0" is not HOST[:CONTAINER[:PERMISSIONS]] (e.g. /dev/ttyUSB0:/dev/ttyUSB0:rwm)',
      'c.yaml:7:30: containers.core.devices[1]: "/dev/a:/dev/b:rwx" is not HOST[:CONTAINER[:PERMISSIONS]] (e.g. /dev/ttyUSB0:/dev/ttyUSB0:rwm)',
      'c.yaml:9:7: containers.core.ulimits.nofiles: unknown limit "nofiles"; did you mean "nofile"?',
      'c.yaml:10:14: containers.core.ulimits.nproc: "20:10" is not SOFT[:HARD] with SOFT at most HARD (-1: unlimited)',
      'c.yaml:11:15: containers.core.hostname: "-bad-" is not a host name (letters, digits and "-", dot-separated)',
      "c.yaml:11:15: containers.core.hostname: a hostname cannot be set with hostUTS: the container uses the host's; remove one of them",
    ]);
    const conflict = load('    hostname: box\n    hostNetwork: true\n');
    expect(conflict.ok).toBe(false);
    expect(conflict.diagnostics.map(formatDiagnostic)).toContain(
      "c.yaml:4:15: containers.core.hostname: a hostname cannot be set with hostNetwork: the container uses the host's; remove one of them",
    );
  });
});
