import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { formatDiagnostic, type Diagnostic } from '../../../src/config/diagnostics.js';
import { parseConfig } from '../../../src/config/load.js';
import { DEFAULT_CONFIG_TEXT } from '../../../src/config/default-config.js';

const fixture = (name: string) => readFileSync(new URL(`../../fixtures/config/${name}`, import.meta.url));

function problems(yaml: string) {
  const result = parseConfig(yaml, 'c.yaml');
  const show = (d: Diagnostic) => formatDiagnostic(d);
  return {
    ok: result.ok,
    errors: result.diagnostics.filter((d) => d.severity === 'error').map(show),
    warnings: result.diagnostics.filter((d) => d.severity === 'warning').map(show),
  };
}

describe('config/load', () => {
  it('reads a file with every key into the typed config', () => {
    const result = parseConfig(fixture('every-key.yaml'), 'every-key.yaml');
    expect(result.diagnostics).toEqual([]);
    expect(result.ok).toBe(true);
    if (!result.ok) return;
    expect(result.config).toEqual({
      containers: {
        work: {
          image: 'example/work:1.0',
          tty: true,
          workingDirectory: '/home/dev',
          entrypoint: ['/lib/systemd/systemd', '--log-level=info'],
          cmd: ['--unit=multi-user.target'],
          env: ['container=docker', 'EMPTY='],
          mounts: ['/mnt/persist/work:/home/dev/persist', '/etc/hostname:/etc/hostname:ro', 'cache:/var/cache:rw,rshared'],
          disableInit: true,
          privileged: true,
          capAdd: ['SYS_ADMIN', 'CAP_NET_ADMIN', 'ALL'],
          securityOpt: ['seccomp=unconfined', 'apparmor=unconfined'],
          tmpFs: { '/run': 'rw,noexec,nosuid,size=65536k', '/tmp': '' },
          hostNetwork: false,
          hostIPC: true,
          hostPID: true,
          hostUTS: true,
          dns: ['1.1.1.1', '2606:4700:4700::1111'],
          dnsSearch: ['lan', 'example.com'],
          hosts: ['registry.lan:10.0.0.2', 'gw:host-gateway'],
          ports: [
            { hostPort: 8080, containerPort: 80 },
            { hostPort: 0, containerPort: 443 },
          ],
          restartPolicy: 'on-failure:5',
          startAfterCreate: true,
          stopSignal: 'RTMIN+3',
          memory: '2g',
          cpus: 1.5,
          pidsLimit: 500,
          devices: ['/dev/ttyUSB0', '/dev/null:/dev/skt-null:r'],
          ulimits: { nofile: '1024:4096', core: 0 },
        },
      },
      users: {
        dev: {
          container: 'work',
          containerUser: '1000:1000',
          containerShell: ['/bin/bash', '--login'],
          createContainerUser: true,
          auth: {
            copyRootKeys: true,
            sshKeys: ['ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHk6v2qRz1Yl3YbXb2m0c8c7f9nq3w7nq0m2c5y6u7i8 dev@laptop'],
            password: 's3cret',
            allowEmptyPassword: false,
            locked: false,
            agentForwarding: true,
          },
        },
      },
      images: {
        'example/work:1.0': {
          pull: { pullPolicy: 'ifbuildfails', registry: '127.0.0.1:5000' },
          build: {
            source: '/opt/skiff/coreenv/work',
            root: 'images/work',
            dockerfile: 'Dockerfile.work',
            buildArgs: { RELEASE: 'bookworm', PROXY: null },
            preserveIntermediate: true,
            squash: true,
            scratchBuild: false,
          },
        },
      },
    });
  });

  it('fills the defaults of the original for keys left out', () => {
    const result = parseConfig(
      'containers: {c1: {image: busybox}}\nusers: {u: {container: c1}}\nimages: {"busybox:latest": {pull: {}}}\n',
      'c.yaml',
    );
    expect(result.ok).toBe(true);
    if (!result.ok) return;
    expect(result.config.containers.c1).toMatchObject({
      tty: false,
      disableInit: false,
      privileged: false,
      startAfterCreate: false,
      env: [],
      mounts: [],
      capAdd: [],
      tmpFs: {},
      ports: [],
    });
    expect(result.config.containers.c1?.restartPolicy).toBeUndefined();
    expect(result.config.users.u).toEqual({ container: 'c1', createContainerUser: false });
    expect(result.config.images['busybox:latest']?.pull).toEqual({ pullPolicy: 'ifnotpresent' });
  });

  it('accepts the shipped default config without any warning', () => {
    const result = parseConfig(DEFAULT_CONFIG_TEXT, 'skiff-core.yaml');
    expect(result.diagnostics.map(formatDiagnostic)).toEqual([]);
    expect(result.ok).toBe(true);
  });

  it('accepts the spellings SkiffOS devices use, saying what to write instead', () => {
    const { ok, warnings } = problems(
      [
        'containers:',
        '  core:',
        '    image: a/b:latest',
        '    restartPolicy: never',
        '    entrypoint: ["/init"]',
        '    tty: yes',
        '    entrypoint: ["/init"]',
        'images:',
        '  a/b:latest:',
        '    pull:',
        '      policy: ifnotexists',
        '',
      ].join('\n'),
    );
    expect(ok).toBe(true);
    expect(warnings).toEqual([
      'c.yaml:4:20: warning: containers.core.restartPolicy: "never" is read as "no"; write no',
      'c.yaml:6:10: warning: containers.core.tty: "yes" is read as true; write true',
      'c.yaml:7:5: warning: containers.core.entrypoint: "entrypoint" is written twice with the same value; delete one (see also line 5:5)',
      'c.yaml:11:7: warning: images["a/b:latest"].pull.policy: "policy" is read as "pullPolicy"; write pullPolicy',
      'c.yaml:11:15: warning: images["a/b:latest"].pull.pullPolicy: "ifnotexists" is read as "ifnotpresent"; write ifnotpresent',
    ]);
  });

  it('reads unquoted numbers as strings where the schema wants text, as the original did', () => {
    const result = parseConfig(
      'containers: {c1: {image: x}}\nusers:\n  u:\n    container: c1\n    containerUser: 1000\n    auth: {password: 0123}\n',
      'c.yaml',
    );
    expect(result.ok).toBe(true);
    if (!result.ok) return;
    expect(result.config.users.u?.containerUser).toBe('1000');
    expect(result.config.users.u?.auth?.password).toBe('0123');
  });

  // Each row: a document and the one error it must produce, with its place.
  it.each([
    [
      'unknown key with a hint',
      'containers:\n  c1:\n    image: x\n    tmpfs: {}\n',
      'c.yaml:4:5: containers.c1.tmpfs: unknown key "tmpfs"; did you mean "tmpFs"?',
    ],
    [
      'unknown key without a close match',
      'users: {}\nfrobnicate: 1\n',
      'c.yaml:2:1: frobnicate: unknown key "frobnicate" (known here: containers, users, images, gateway, storage, metrics)',
    ],
    [
      'duplicate key with different values',
      'containers:\n  c1:\n    image: x\n    image: y\n',
      'c.yaml:4:5: containers.c1.image: "image" is written twice with different values; keep one (see also line 3:5)',
    ],
    [
      'user naming a missing container',
      'containers: {core: {image: x}}\nusers:\n  u:\n    container: cor\n',
      'c.yaml:4:16: users.u.container: no container named "cor" in containers; did you mean "core"?',
    ],
    ['missing required image', 'containers:\n  c1:\n    tty: true\n', 'c.yaml:2:3: containers.c1.image: missing required key "image"'],
    [
      'mount without destination',
      'containers:\n  c1:\n    image: x\n    mounts: [/a]\n',
      'c.yaml:4:14: containers.c1.mounts[0]: mount "/a" must be SOURCE:DESTINATION or SOURCE:DESTINATION:OPTIONS',
    ],
    [
      'relative mount destination',
      'containers:\n  c1:\n    image: x\n    mounts: ["/a:b"]\n',
      'c.yaml:4:14: containers.c1.mounts[0]: mount destination "b" must be an absolute path in the container',
    ],
    [
      'unknown mount option',
      'containers:\n  c1:\n    image: x\n    mounts: ["/a:/b:rx"]\n',
      'c.yaml:4:14: containers.c1.mounts[0]: unknown mount option "rx" (known: ro, rw, z, Z, nocopy, consistent, cached, delegated, shared, rshared, slave, rslave, private, rprivate)',
    ],
    [
      'two mounts on one destination',
      'containers:\n  c1:\n    image: x\n    mounts: ["/a:/b"]\n    tmpFs: {/b: ""}\n',
      'c.yaml:5:13: containers.c1.tmpFs["/b"]: "/b" is already mounted (mounts.0); mount it once',
    ],
    [
      'relative tmpfs path',
      'containers:\n  c1:\n    image: x\n    tmpFs: {run: ""}\n',
      'c.yaml:4:13: containers.c1.tmpFs.run: tmpfs path "run" must be absolute',
    ],
    [
      'env without =',
      'containers:\n  c1:\n    image: x\n    env: [FOO]\n',
      'c.yaml:4:11: containers.c1.env[0]: environment entry "FOO" must be NAME=VALUE',
    ],
    [
      'unknown capability',
      'containers:\n  c1:\n    image: x\n    capAdd: [SYS_ADMN]\n',
      'c.yaml:4:14: containers.c1.capAdd[0]: unknown capability "SYS_ADMN" (write a name like SYS_ADMIN or NET_ADMIN, or ALL)',
    ],
    [
      'bad stop signal',
      'containers:\n  c1:\n    image: x\n    stopSignal: RTMIN+99\n',
      'c.yaml:4:17: containers.c1.stopSignal: unknown stop signal "RTMIN+99" (examples: SIGTERM, RTMIN+3, 15)',
    ],
    [
      'bad restart policy',
      'containers:\n  c1:\n    image: x\n    restartPolicy: on-failure:0\n',
      'c.yaml:4:20: containers.c1.restartPolicy: unknown restart policy "on-failure:0" (one of: no, always, unless-stopped, on-failure, on-failure:N)',
    ],
    [
      'port out of range',
      'containers:\n  c1:\n    image: x\n    ports: [{hostPort: 70000, containerPort: 1}]\n',
      'c.yaml:4:24: containers.c1.ports[0].hostPort: must be at most 65535',
    ],
    [
      'port published twice',
      'containers:\n  c1: {image: x, ports: [{hostPort: 80, containerPort: 80}]}\n  c2: {image: x, ports: [{hostPort: 80, containerPort: 80}]}\n',
      'c.yaml:3:37: containers.c2.ports[0].hostPort: host port 80 is already published by container "c1"',
    ],
    [
      'invalid login name',
      'containers: {c1: {image: x}}\nusers:\n  Admin:\n    container: c1\n',
      'c.yaml:3:3: users.Admin: "Admin" is not a valid login name (lower-case letters, digits, "_" and "-", not starting with a digit or "-")',
    ],
    [
      'invalid container name',
      'containers:\n  "my core":\n    image: x\n',
      'c.yaml:2:3: containers["my core"]: "my core" is not a valid container name (letters, digits, "_", "." and "-", starting with a letter or digit)',
    ],
    [
      'dockerfile leaving the source',
      'images:\n  a:latest:\n    build:\n      source: /src\n      dockerfile: ../../etc/passwd\n',
      'c.yaml:5:19: images["a:latest"].build.dockerfile: "../../etc/passwd" leaves the build source; give a path inside it',
    ],
    [
      'root leaving the source',
      'images:\n  a:latest:\n    build:\n      source: /src\n      root: a/../../b\n',
      'c.yaml:5:13: images["a:latest"].build.root: "a/../../b" leaves the build source; give a path inside it',
    ],
    [
      'relative build source',
      'images:\n  a:latest:\n    build: {source: src}\n',
      'c.yaml:3:21: images["a:latest"].build.source: build source "src" must be an absolute directory, a git URL (git://… or ….git), or a .tar.gz path or http(s) URL',
    ],
    [
      'unknown pull policy',
      'images:\n  a:latest:\n    pull: {pullPolicy: sometimes}\n',
      'c.yaml:3:24: images["a:latest"].pull.pullPolicy: "sometimes" is not one of: always, ifnotpresent, ifbuildfails',
    ],
    [
      'policy and pullPolicy disagreeing',
      'images:\n  a:latest:\n    pull: {policy: always, pullPolicy: ifnotpresent}\n',
      'c.yaml:3:12: images["a:latest"].pull.policy: "policy" and "pullPolicy" disagree; keep only pullPolicy',
    ],
    [
      'wrong type',
      'containers:\n  c1:\n    image: x\n    hostNetwork: 3\n',
      'c.yaml:4:18: containers.c1.hostNetwork: expected true or false, found number 3',
    ],
    [
      'bad ssh key',
      'containers: {c1: {image: x}}\nusers:\n  u:\n    container: c1\n    auth: {sshKeys: [hello]}\n',
      'c.yaml:5:22: users.u.auth.sshKeys[0]: not an SSH public key (expected a line like "ssh-ed25519 AAAA... comment")',
    ],
    [
      'empty shell',
      'containers: {c1: {image: x}}\nusers:\n  u:\n    container: c1\n    containerShell: []\n',
      'c.yaml:5:21: users.u.containerShell: must be at least 1 item(s)',
    ],
    [
      'bad dns server',
      'containers:\n  c1:\n    image: x\n    dns: [one.one]\n',
      'c.yaml:4:11: containers.c1.dns[0]: "one.one" is not an IP address',
    ],
    [
      'bad host entry',
      'containers:\n  c1:\n    image: x\n    hosts: ["db"]\n',
      'c.yaml:4:13: containers.c1.hosts[0]: host entry "db" must be NAME:IP',
    ],
    [
      'bad image reference',
      'containers:\n  c1:\n    image: "UPPER/Case"\n',
      'c.yaml:3:12: containers.c1.image: invalid image reference "UPPER/Case": repository name must be lowercase (write it like name:tag or registry/name:tag)',
    ],
    [
      'YAML syntax',
      'containers:\n  c1: [a\n',
      'c.yaml:3:1: (top level): YAML syntax: Flow sequence in block collection must be sufficiently indented and end with a ]',
    ],
    ['not a mapping', '- a\n- b\n', 'c.yaml:1:1: (top level): the config must be a mapping with the keys containers, users and images'],
    [
      'a registry twice',
      'images:\n  quay.io/a/b:1:\n    pull: {registry: ghcr.io}\n',
      'c.yaml:3:22: images["quay.io/a/b:1"].pull.registry: image "quay.io/a/b:1" already names registry quay.io; it cannot be pulled from registry ghcr.io',
    ],
    [
      'several documents',
      'users: {}\n---\nimages: {}\n',
      'c.yaml:2:1: (top level): the file holds more than one YAML document (a "---" line); keep one',
    ],
  ])('reports %s with its place', (_name, yaml, expected) => {
    const { ok, errors } = problems(yaml);
    expect(ok).toBe(false);
    expect(errors).toEqual([expected]);
  });

  it('collects every error in a file, not just the first', () => {
    const { errors } = problems(
      'containers:\n  c1:\n    image: x\n    bogus: 1\n    env: [A]\n  "b d":\n    image: 3\nusers:\n  Root:\n    container: nope\n    auth: {copyRootKey: true}\n',
    );
    expect(errors.map((e) => e.split(': ')[0])).toEqual([
      'c.yaml:4:5',
      'c.yaml:5:11',
      'c.yaml:6:3',
      'c.yaml:9:3',
      'c.yaml:10:16',
      'c.yaml:11:12',
    ]);
  });
});

describe('config/load hostile input', () => {
  it('refuses an alias bomb quickly', () => {
    const lines = ['a: &a [x, x, x, x, x, x, x, x, x, x]'];
    for (let i = 1; i < 12; i++) {
      const prev = String.fromCharCode(97 + i - 1);
      const cur = String.fromCharCode(97 + i);
      lines.push(`${cur}: &${cur} [${Array(10).fill(`*${prev}`).join(', ')}]`);
    }
    const started = performance.now();
    const { ok, errors } = problems(lines.join('\n'));
    expect(ok).toBe(false);
    expect(errors).toEqual([
      'c.yaml:1:1: (top level): refused: the document expands to more than 100000 values (aliases copying aliases?); a config never needs that',
    ]);
    // 10^12 values if expanded: finishing at all shows it was cut short.
    expect(performance.now() - started).toBeLessThan(10_000);
  });

  it('refuses deep nesting', () => {
    const { errors } = problems(`a: ${'['.repeat(100)}${']'.repeat(100)}\n`);
    expect(errors).toEqual(['c.yaml:1:1: (top level): refused: the document nests deeper than 64 levels; a config never needs that']);
  });

  it('refuses a file over the size cap', () => {
    const result = parseConfig(Buffer.alloc(2 * 1024 * 1024, 0x20), 'c.yaml');
    expect(result.ok).toBe(false);
    expect(result.diagnostics.map(formatDiagnostic)).toEqual([
      'c.yaml: (top level): file is 2097152 bytes, over the 1048576-byte limit for a config',
    ]);
  });

  it('refuses bytes that are not UTF-8, pointing at the first bad one', () => {
    const result = parseConfig(Buffer.from('containers:\n  c1:\n    image: caf\xe9\n', 'latin1'), 'c.yaml');
    expect(result.diagnostics.map(formatDiagnostic)).toEqual([
      'c.yaml:3:15: (top level): not UTF-8 text (invalid byte 0xe9); save the file as UTF-8',
    ]);
  });

  it('keeps a __proto__ key as data and reports it as unknown', () => {
    const { errors } = problems('__proto__: {polluted: true}\n');
    expect(errors).toEqual([
      'c.yaml:1:1: __proto__: unknown key "__proto__" (known here: containers, users, images, gateway, storage, metrics)',
    ]);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  it('treats an empty file as an empty config, with a warning', () => {
    const result = parseConfig('', 'c.yaml');
    expect(result.ok).toBe(true);
    expect(result.diagnostics.map(formatDiagnostic)).toEqual([
      'c.yaml:1:1: warning: (top level): the file is empty: no images, containers or users are managed',
    ]);
  });
});

describe('aliases', () => {
  it('resolves each alias to the last anchor of that name before it', async () => {
    const { parseYamlTree } = await import('../../../src/config/yaml-tree.js');
    const r = parseYamlTree('a: &x 1\nb: *x\nc: &x 2\nd: *x\n', 'f.yaml');
    expect(r.data).toEqual({ a: 1, b: 1, c: 2, d: 2 });
  });

  it('reads 20,000 aliases in one pass (each used to walk the whole document: minutes of a frozen daemon)', async () => {
    const { parseYamlTree } = await import('../../../src/config/yaml-tree.js');
    const text = `x: &a "v"\nl:\n${'  - *a\n'.repeat(20_000)}`;
    const r = parseYamlTree(text, 'f.yaml');
    expect(r.diagnostics).toEqual([]);
    expect((r.data as { l: string[] }).l).toHaveLength(20_000);
  });
});
