// src/users for real, without touching this machine's accounts: the host-user code runs INSIDE a
// Debian container (the "device": shadow's real useradd/usermod/gpasswd/chpasswd/passwd, plus
// BusyBox's passwd copied in from the BusyBox test image), driven by a bundled driver and the
// host's node bind-mounted read-only. ensureContainerUser runs from here against real containers.
// Every container is named with this file's unique prefix and removed afterwards.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDockerEngine } from '../../src/engine/docker-engine.js';
import { ensureContainerUser } from '../../src/users/container-user.js';
import type { HostUserOutcome, HostUserSpec } from '../../src/users/host-user.js';
import { sha512Crypt } from '../../src/users/sha512-crypt.js';
import { BUSYBOX_IMAGE, DEBIAN_SYSTEMD_IMAGE, cleanupByPrefix, integrationSkipReason, testDocker, uniquePrefix } from './helpers/engine.js';

const LAUNCHER = '/usr/bin/skiff-core';
const KEY = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIK1 alice@laptop';
const KEY2 = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIK2 bob@desk';
const ROOT_KEY = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIRT root@factory';
const DRIVER = fileURLToPath(new URL('./drivers/users-driver.ts', import.meta.url));

/** Paths (first field of `find` lines, second of `md5sum` lines) whose lines differ. */
function changedPaths(before: string[], after: string[]): string[] {
  const b = new Set(before);
  const a = new Set(after);
  const differing = [...before.filter((l) => !a.has(l)), ...after.filter((l) => !b.has(l))];
  return [...new Set(differing.map((l) => (/^[0-9a-f]{32} {2}/.test(l) ? l.slice(34) : l.split(' ')[0]!)))].sort();
}

type DriverResult = { ok: true; kind: string; outcome: HostUserOutcome } | { ok: false; kind: string; code: string; message: string };

describe.skipIf(integrationSkipReason())('users against real account tools in a container', () => {
  const prefix = uniquePrefix();
  const engine = createDockerEngine();
  let work: string;
  let device: string;

  /** Runs a shell script in the device as root; fails the test on a non-zero exit. */
  async function sh(script: string, ctr: string = device): Promise<string> {
    const result = await engine.execRun(ctr, ['sh', '-c', script], { user: '0:0', timeoutMs: 60_000 });
    if (result.exitCode !== 0) throw new Error(`\`${script}\` exited with ${result.exitCode}: ${result.stderr}${result.stdout}`);
    return result.stdout;
  }

  async function driver(spec: HostUserSpec, searchPath?: string[]): Promise<DriverResult> {
    const request = JSON.stringify({ op: 'ensureHostUser', spec, ...(searchPath ? { searchPath } : {}) });
    const result = await engine.execRun(device, ['node', '/driver/users-driver.mjs', request], { user: '0:0', timeoutMs: 60_000 });
    const line = result.stdout.trim().split('\n').pop() ?? '';
    try {
      return JSON.parse(line) as DriverResult;
    } catch {
      throw new Error(`driver printed no result (exit ${result.exitCode}): ${result.stdout}${result.stderr}`);
    }
  }

  async function ready(spec: HostUserSpec, searchPath?: string[]): Promise<{ kind: string; outcome: HostUserOutcome }> {
    const result = await driver(spec, searchPath);
    if (!result.ok) throw new Error(`ensureHostUser failed: ${result.code}: ${result.message}`);
    return result;
  }

  const shadowHash = async (name: string) => (await sh(`getent shadow ${name} | cut -d: -f2`)).trim();
  /** Everything under /etc, /home and /root: type, mode, owner, size, link target, and file hashes. */
  const tree = async () =>
    (
      await sh(
        "find /etc /home /root -xdev -printf '%p %y %m %u:%g %s %l\\n' | sort; find /etc /home /root -xdev -type f -exec md5sum {} + | sort -k2",
      )
    )
      .split('\n')
      .filter((l) => l !== '');

  /** shadow's own checkers find nothing wrong with the account files we edited. */
  async function accountFilesConsistent(): Promise<void> {
    const result = await engine.execRun(device, ['sh', '-c', 'pwck -r; grpck -r'], { user: '0:0' });
    // pwck also complains about system users' missing home directories (e.g. /nonexistent).
    const problems = `${result.stdout}${result.stderr}`
      .split('\n')
      .filter((l) => l !== '' && !/directory .* does not exist|no changes/.test(l));
    expect(problems).toEqual([]);
  }

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), `${prefix}-`));
    await build({
      entryPoints: [DRIVER],
      outfile: join(work, 'users-driver.mjs'),
      bundle: true,
      platform: 'node',
      target: 'node20',
      format: 'esm',
      logLevel: 'warning',
      banner: {
        js: "import { createRequire as __cr } from 'node:module'; const require = __cr(import.meta.url);",
      },
    });

    const docker = testDocker();
    const ctr = await docker.createContainer({
      name: `${prefix}-device`,
      Image: DEBIAN_SYSTEMD_IMAGE,
      Entrypoint: ['sleep'],
      Cmd: ['infinity'],
      HostConfig: {
        NetworkMode: 'none',
        Init: true,
        Binds: [`${process.execPath}:/usr/local/bin/node:ro`, `${work}:/driver:ro`],
      },
    });
    await ctr.start();
    device = ctr.id;

    // A device as SkiffOS leaves it: a docker group, root's keys, the launcher; a legacy user the
    // Go original created in the docker group, and one whose primary group is docker (BusyBox
    // `adduser -G docker`), locked with `passwd -l`.
    await sh(
      [
        'set -e',
        'groupadd docker',
        'mkdir -p /root/.ssh',
        `printf '%s\\n' '${ROOT_KEY}' > /root/.ssh/authorized_keys`,
        `printf '#!/bin/sh\\nexit 0\\n' > ${LAUNCHER}`,
        `chmod 755 ${LAUNCHER}`,
        'useradd -m -U -s /bin/sh legacy',
        'usermod -aG docker,audio legacy',
        'useradd -m -g docker -G docker -s /bin/sh legacy2',
        'passwd -l legacy2',
      ].join('\n'),
    );

    // BusyBox (without adduser/chpasswd, as in the test image) in its own directory.
    const bb = await docker.createContainer({ name: `${prefix}-bb`, Image: BUSYBOX_IMAGE, Cmd: ['true'] });
    const archive = await bb.getArchive({ path: '/bin/busybox' });
    await ctr.putArchive(archive, { path: '/usr/local/lib' });
    await bb.remove({ force: true });
    await sh('mkdir -p /opt/bb && for a in passwd mkpasswd; do ln -s /usr/local/lib/busybox /opt/bb/$a; done');
  });

  afterAll(async () => {
    await cleanupByPrefix(prefix);
    if (work) await rm(work, { recursive: true, force: true });
  });

  const coreSpec = (auth: HostUserSpec['auth'] = { copyRootKeys: true, sshKeys: [KEY] }): HostUserSpec => ({
    name: 'core',
    shell: LAUNCHER,
    createUsers: true,
    auth,
  });

  it('reports a missing user without --create-users', async () => {
    const { kind, outcome } = await ready({ ...coreSpec(), createUsers: false });
    expect(kind).toBe('shadow');
    expect(outcome.state).toBe('missing');
    expect((await engine.execRun(device, ['getent', 'passwd', 'core'])).exitCode).toBe(2);
  });

  it('creates the user with the launcher shell, outside the docker group, with a random password set once and keys', async () => {
    const { outcome } = await ready(coreSpec());
    expect(outcome.state).toBe('ready');
    expect(outcome.changes.map((c) => c.kind)).toEqual(['created', 'shells-listed', 'password', 'keys-written']);

    expect((await sh('getent passwd core')).trim()).toMatch(new RegExp(`^core:x:\\d+:\\d+::/home/core:${LAUNCHER}$`));
    expect((await sh('id -nG core')).trim().split(' ')).not.toContain('docker');
    expect(await sh('cat /etc/shells')).toContain(`${LAUNCHER}\n`);
    const hash = await shadowHash('core');
    expect(hash).toMatch(/^\$6\$rounds=20000\$skiff/);

    expect(await sh('cat /etc/skiff-core/authorized_keys/core')).toContain(`${ROOT_KEY}\n${KEY}\n`);
    expect(
      (await sh('stat -c "%U:%G %a %F" /etc/skiff-core /etc/skiff-core/authorized_keys /etc/skiff-core/authorized_keys/core'))
        .trim()
        .split('\n'),
    ).toEqual(['root:root 755 directory', 'root:root 755 directory', 'root:root 644 regular file']);
    // The user can read its keys file (sshd reads it as the user) but not change it.
    expect(
      await sh(
        'su -s /bin/sh -c "cat /etc/skiff-core/authorized_keys/core >/dev/null && ! test -w /etc/skiff-core/authorized_keys/core && echo ok" core',
      ),
    ).toBe('ok\n');

    const before = await tree();
    const again = await ready(coreSpec());
    expect(again.outcome.changes).toEqual([]);
    expect(await shadowHash('core')).toBe(hash);
    expect(await tree()).toEqual(before);
  });

  it('sets a configured password through chpasswd -e that the system crypt accepts, once', async () => {
    const before = await shadowHash('core');
    const { outcome } = await ready(coreSpec({ password: 'correct horse', sshKeys: [KEY] }));
    expect(outcome.changes).toContainEqual({ kind: 'password', mode: 'password' });
    const hash = await shadowHash('core');
    expect(hash).not.toBe(before);
    // glibc's crypt(3) (through perl, which the image has) verifies the hash we wrote.
    const check = `perl -e 'print crypt($ARGV[0], $ARGV[1]) eq $ARGV[1] ? "match" : "mismatch"' "$@"`;
    const verify = async (password: string) =>
      (await engine.execRun(device, ['sh', '-c', check, 'sh', password, hash], { user: '0:0' })).stdout;
    expect(await verify('correct horse')).toBe('match');
    expect(await verify('wrong horse')).toBe('mismatch');

    const again = await ready(coreSpec({ password: 'correct horse', sshKeys: [KEY] }));
    expect(again.outcome.changes).toEqual([]);
    expect(await shadowHash('core')).toBe(hash);
  });

  it('locked sets "*" (never "!"), allowEmptyPassword empties it, and random comes back after', async () => {
    await ready(coreSpec({ locked: true, sshKeys: [KEY] }));
    expect(await shadowHash('core')).toBe('*');

    await ready(coreSpec({ allowEmptyPassword: true, sshKeys: [KEY] }));
    expect(await shadowHash('core')).toBe('');

    await ready(coreSpec());
    expect(await shadowHash('core')).toMatch(/^\$6\$rounds=20000\$skiff/);
  });

  it('removes legacy users from the docker group, supplementary and primary', async () => {
    const legacy = await ready({ name: 'legacy', shell: LAUNCHER, createUsers: false, auth: { sshKeys: [KEY] } });
    expect(legacy.outcome.changes).toContainEqual({ kind: 'docker-group-left', group: 'docker', wasPrimary: false });
    expect((await sh('id -nG legacy')).trim().split(' ').sort()).toEqual(['audio', 'legacy']);

    const legacy2 = await ready({ name: 'legacy2', shell: LAUNCHER, createUsers: false, auth: { locked: true, sshKeys: [KEY] } });
    expect(legacy2.outcome.changes).toContainEqual({
      kind: 'docker-group-left',
      group: 'docker',
      wasPrimary: true,
      newPrimaryGroup: 'legacy2',
    });
    expect((await sh('id -gn legacy2; id -nG legacy2')).trim().split('\n')).toEqual(['legacy2', 'legacy2']);
    // Its `passwd -l` lock ("!…") became "*".
    expect(await shadowHash('legacy2')).toBe('*');
    expect((await sh('getent group docker')).trim()).toMatch(/^docker:x:\d+:$/);
    await accountFilesConsistent();
  });

  it('a symlink planted in the home does not make it write outside the keys directory', async () => {
    await sh(
      [
        'set -e',
        'su -s /bin/sh -c "ln -s /etc /home/core/.ssh; ln -s /etc/shadow /home/core/.skiff-core.yaml; ln -s /etc/passwd /home/core/.skiff-core-setup.log" core',
      ].join('\n'),
    );
    const before = await tree();
    const { outcome } = await ready(coreSpec({ copyRootKeys: true, sshKeys: [KEY, KEY2] }));
    expect(outcome.changes.map((c) => c.kind)).toEqual(['keys-written']);
    const after = await tree();
    expect(changedPaths(before, after)).toEqual(['/etc/skiff-core/authorized_keys/core']);
  });

  it('with BusyBox tools only (no adduser/chpasswd/delgroup): edits the files itself and uses busybox passwd', async () => {
    // Another legacy account as the Go original left it on BusyBox: primary and supplementary
    // docker, locked; its own group exists (there is no addgroup here to create it).
    await sh('set -e; groupadd bbuser; useradd -m -g docker -G docker -s /bin/sh bbuser; passwd -l bbuser');
    const first = await ready({ name: 'bbuser', shell: LAUNCHER, createUsers: false, auth: { locked: true, sshKeys: [KEY] } }, ['/opt/bb']);
    expect(first.kind).toBe('busybox');
    expect(first.outcome.changes.map((c) => c.kind).filter((k) => k !== 'shells-listed')).toEqual([
      'shell-set',
      'docker-group-left',
      'password',
      'keys-written',
    ]);
    expect((await sh('getent passwd bbuser')).trim()).toMatch(new RegExp(`:/home/bbuser:${LAUNCHER}$`));
    expect((await sh('id -gn bbuser; id -nG bbuser')).trim().split('\n')).toEqual(['bbuser', 'bbuser']);
    expect(await shadowHash('bbuser')).toBe('*');
    expect(await sh('stat -c "%U:%G %a" /etc/passwd /etc/shadow /etc/group /etc/gshadow')).toBe(
      'root:root 644\nroot:shadow 640\nroot:root 644\nroot:shadow 640\n',
    );
    await accountFilesConsistent();

    // allowEmptyPassword goes through BusyBox's own `passwd -d`.
    await ready({ name: 'bbuser', shell: LAUNCHER, createUsers: false, auth: { allowEmptyPassword: true } }, ['/opt/bb']);
    expect(await shadowHash('bbuser')).toBe('');

    // A configured password, written into /etc/shadow directly; glibc verifies it.
    await ready({ name: 'bbuser', shell: LAUNCHER, createUsers: false, auth: { password: 'p4ss' } }, ['/opt/bb']);
    const hash = await shadowHash('bbuser');
    const verified = await engine.execRun(device, ['perl', '-e', 'print crypt($ARGV[0], $ARGV[1]) eq $ARGV[1] ? 1 : 0', 'p4ss', hash]);
    expect(verified.stdout).toBe('1');

    // Creating a user needs adduser, which this BusyBox lacks: a clear error, nothing created.
    const missing = await driver({ name: 'newbb', shell: LAUNCHER, createUsers: true }, ['/opt/bb']);
    expect(missing).toMatchObject({ ok: false, code: 'USER_TOOLS_MISSING' });
    expect((missing as { message: string }).message).toMatch(/adduser is not installed/);
  });

  it('our SHA-512 crypt agrees with BusyBox mkpasswd', async () => {
    const out = await engine.execRun(device, ['/opt/bb/mkpasswd', '-m', 'sha512', 'correct horse', 'AbCdEfGhIjKlMnOp']);
    expect(out.stdout.trim()).toBe(sha512Crypt('correct horse', 'AbCdEfGhIjKlMnOp'));
  });

  describe('ensureContainerUser in running containers', () => {
    let debian: string;
    let busybox: string;

    beforeAll(async () => {
      const docker = testDocker();
      const d = await docker.createContainer({
        name: `${prefix}-core`,
        Image: DEBIAN_SYSTEMD_IMAGE,
        Entrypoint: ['sleep'],
        Cmd: ['infinity'],
        HostConfig: { NetworkMode: 'none', Init: true },
      });
      await d.start();
      debian = d.id;
      const b = await docker.createContainer({
        name: `${prefix}-bbctr`,
        Image: BUSYBOX_IMAGE,
        Cmd: ['sleep', '3600'],
        HostConfig: { NetworkMode: 'none', Init: true },
      });
      await b.start();
      busybox = b.id;
    });

    it('creates core with a home and /bin/sh, then finds it', async () => {
      const user = await ensureContainerUser(engine, debian, { user: 'core' });
      expect(user).toMatchObject({ name: 'core', home: '/home/core', shell: ['/bin/sh'], created: true, warnings: [] });
      expect((await sh('stat -c "%U %F" /home/core', debian)).trim()).toBe('core directory');
      expect((await sh('getent passwd core', debian)).trim()).toBe(`core:x:${user.uid}:${user.gid}::/home/core:/bin/sh`);

      const again = await ensureContainerUser(engine, debian, { user: 'core' });
      expect(again).toEqual({ ...user, created: false });
    });

    it('creates with the configured shell and returns its argv', async () => {
      const user = await ensureContainerUser(engine, debian, { user: 'dev', shell: ['/bin/bash', '-l'] });
      expect(user).toMatchObject({ name: 'dev', home: '/home/dev', shell: ['/bin/bash', '-l'], created: true });
      expect((await sh('getent passwd dev | cut -d: -f7', debian)).trim()).toBe('/bin/bash');
    });

    it('uses the passwd shell of an existing user', async () => {
      expect(await ensureContainerUser(engine, debian, { user: 'root' })).toMatchObject({ uid: 0, home: '/root', shell: ['/bin/bash'] });
    });

    it('reads /etc/passwd in an image without getent, and says why it cannot create users there', async () => {
      expect(await ensureContainerUser(engine, busybox, { user: 'root' })).toMatchObject({ uid: 0, shell: ['/bin/sh'], created: false });
      await expect(ensureContainerUser(engine, busybox, { user: 'core' })).rejects.toThrow(/neither useradd nor adduser/);
    });
  });
});
