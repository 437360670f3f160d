// The built-in SSH gateway end to end (issue 6): `skiff-core daemon --ssh-listen` from the built
// bundle against the real engine, with the real OpenSSH client and ssh2's. No host account is
// used (SKIFF_CORE_USERS=lookup; the gateway needs none): the user name is the config's key.
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, mkdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import ssh2 from 'ssh2';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { conformanceSuite, runProgram, type ConformanceTarget } from './conformance.js';
import { daemonPaths, startDaemonProcess, type DaemonPaths, type DaemonProcess } from './helpers/daemon.js';
import { cleanupByPrefix, DEBIAN_SYSTEMD_IMAGE, integrationSkipReason, testDocker, uniquePrefix, waitFor } from './helpers/engine.js';
import { freePort } from '../support/net.js';
import { scriptedSsh } from '../support/ssh-client.js';

describe.skipIf(integrationSkipReason())('ssh gateway (daemon --ssh-listen, real engine and clients)', () => {
  const docker = testDocker();
  const prefix = uniquePrefix();
  const container = `${prefix}-core`;
  let dir: string;
  let paths: DaemonPaths;
  let daemon: DaemonProcess | undefined;
  let port: number;
  let key: string;
  let wrongKey: string;
  let target: ConformanceTarget;

  /** OpenSSH options for the gateway; quiet unless `logLevel` says otherwise. */
  const common = (logLevel = 'ERROR') => ['-p', String(port), ...scriptedSsh(logLevel), '-o', 'IdentitiesOnly=yes'];

  async function startGatewayDaemon(): Promise<DaemonProcess> {
    const proc = await startDaemonProcess(paths, { SKIFF_CORE_SSH_LISTEN: `127.0.0.1:${port}` });
    await waitFor(() => proc.logs().includes('"msg":"SSH gateway listening"'), { what: 'the gateway to listen', timeoutMs: 30_000 });
    return proc;
  }

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), `${prefix}-`));
    key = join(dir, 'id_ed25519');
    wrongKey = join(dir, 'wrong_ed25519');
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'gateway-test', '-f', key]);
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', wrongKey]);
    const publicKey = execFileSync('ssh-keygen', ['-y', '-f', key]).toString().trim();
    paths = daemonPaths(dir);
    await mkdir(join(dir, 'persist'), { recursive: true });
    await writeFile(
      paths.config,
      `containers:
  ${container}:
    image: ${DEBIAN_SYSTEMD_IMAGE}
    cmd: ["sleep", "infinity"]
    startAfterCreate: true
users:
  core:
    container: ${container}
    containerUser: core
    containerShell: ["/bin/bash"]
    createContainerUser: true
    auth:
      sshKeys:
        - ${publicKey}
  fwd:
    container: ${container}
    containerUser: core
    containerShell: ["/bin/bash"]
    createContainerUser: true
    auth:
      agentForwarding: true
      sshKeys:
        - ${publicKey}
gateway:
  # The refusal checks below fail on purpose; keep this machine's loopback from being locked out.
  maxAuthFailures: 100
`,
    );
    port = await freePort();
    daemon = await startGatewayDaemon();
    await daemon.until((s) => s.containers.some((c) => c.name === container && c.state === 'running'), `${container} running`, 120_000);
    target = {
      sshArgs: [...common(), '-i', key, 'core@127.0.0.1'],
      sftpArgs: ['-P', String(port), ...scriptedSsh(), '-o', 'IdentitiesOnly=yes', '-i', key, 'core@127.0.0.1'],
      ssh2: { host: '127.0.0.1', port, username: 'core', privateKey: execFileSync('cat', [key]) },
      containerName: container,
    };
  });

  afterAll(async () => {
    await daemon?.stop('SIGKILL');
    await cleanupByPrefix(prefix, docker);
    await rm(dir, { recursive: true, force: true });
  });

  conformanceSuite('gateway', () => target);

  it('lands in the container as the configured container user, in its home, without a host account', async () => {
    const r = await runProgram('ssh', [...target.sshArgs, 'whoami; pwd; cat /etc/hostname; id -u']);
    expect(r.code, r.stderr).toBe(0);
    const [who, home, host] = r.stdout.trim().split('\n');
    expect([who, home]).toEqual(['core', '/home/core']);
    expect(host).toBe((await docker.getContainer(container).inspect()).Config.Hostname);
    expect(execFileSync('getent', ['passwd']).toString()).not.toMatch(/^core:/m);
  });

  it('ssh -A reaches the container for users with auth.agentForwarding, for that session only', async () => {
    const agentDir = await mkdtemp(join(tmpdir(), `${prefix}-agent-`));
    const sock = join(agentDir, 'agent.sock');
    const agent = spawn('ssh-agent', ['-D', '-a', sock], { stdio: 'ignore' });
    try {
      await waitFor(() => existsSync(sock), { what: 'ssh-agent listening' });
      execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', `${prefix}-agent-key`, '-f', join(agentDir, 'key')]);
      execFileSync('ssh-add', [join(agentDir, 'key')], { env: { ...process.env, SSH_AUTH_SOCK: sock }, stdio: 'ignore' });
      const list = 'echo "sock=$SSH_AUTH_SOCK"; ssh-add -l; echo "code=$?"';
      const as = (user: string, args: string[]) =>
        runProgram('ssh', [...common(), '-i', key, ...args, `${user}@127.0.0.1`, list], { env: { SSH_AUTH_SOCK: sock } });

      const forwarded = await as('fwd', ['-A']);
      expect(forwarded.stdout, forwarded.stderr).toMatch(/^sock=\/tmp\/skiff-agent-[0-9a-f]{16}\/agent\.sock\n/);
      expect(forwarded.stdout).toContain(`${prefix}-agent-key (ED25519)\ncode=0`);
      const path = /^sock=(\S+)/.exec(forwarded.stdout)![1]!;
      await waitFor(() => spawnSync('docker', ['exec', container, 'test', '-e', path]).status !== 0, {
        what: 'the agent socket removed after the session',
      });
      for (const [user, args] of [
        ['fwd', []],
        ['core', ['-A']],
      ] as const) {
        const r = await as(user, [...args]);
        expect(r.stdout, `${user} ${args.join(' ')}: ${r.stderr}`).toMatch(/^sock=\n[\s\S]*code=2\n$/);
      }
    } finally {
      agent.kill();
      await rm(agentDir, { recursive: true, force: true });
    }
  });

  it('refuses a wrong key, an unknown user and a password (none configured) the same way', async () => {
    const wrong = await runProgram('ssh', [...common(), '-i', wrongKey, 'core@127.0.0.1', 'true']);
    const unknown = await runProgram('ssh', [...common(), '-i', key, 'nobody@127.0.0.1', 'true']);
    const password = await runProgram('ssh', [
      ...common(),
      '-o',
      'PubkeyAuthentication=no',
      '-o',
      'PreferredAuthentications=password,keyboard-interactive',
      'core@127.0.0.1',
      'true',
    ]);
    for (const r of [wrong, unknown, password]) {
      expect(r.code).toBe(255);
      expect(r.stderr.replace(/\r/g, '').replace(/^\w+@/, 'USER@')).toBe('USER@127.0.0.1: Permission denied (publickey).\n');
    }
    // OpenSSH in batch mode never sends a password; ssh2's client does, and is refused alike.
    const viaSsh2 = new ssh2.Client();
    const outcome = await new Promise<string>((resolve) => {
      viaSsh2.once('ready', () => resolve('logged in')).once('error', (err: Error) => resolve(err.message));
      viaSsh2.connect({ host: '127.0.0.1', port, username: 'core', password: 'guess' });
    });
    viaSsh2.end();
    expect(outcome).toBe('All configured authentication methods failed');
    expect(daemon!.logs()).not.toContain('guess');
  });

  it('refuses port forwarding with a reason the client shows', async () => {
    const local = await runProgram('ssh', [...common('INFO'), '-i', key, '-W', '127.0.0.1:9', 'core@127.0.0.1']);
    expect(local.code).toBe(255);
    expect(local.stderr).toContain('administratively prohibited: port forwarding is not available through the skiff-core gateway');
    const remote = await runProgram('ssh', [
      ...common(),
      '-i',
      key,
      '-o',
      'ExitOnForwardFailure=yes',
      '-N',
      '-R',
      '127.0.0.1:0:127.0.0.1:9',
      'core@127.0.0.1',
    ]);
    expect(remote.code).toBe(255);
    expect(remote.stderr).toContain('remote port forwarding failed');
    expect(daemon!.logs()).toContain('Refused TCP forwarding: not available through the gateway');
  });

  it('keeps its host key (mode 600) across restarts: the same fingerprint is logged and served', async () => {
    const keyPath = join(dir, 'persist', 'ssh_host_ed25519_key');
    expect((await stat(keyPath)).mode & 0o777).toBe(0o600);
    const served = async () => {
      const scan = await runProgram('ssh-keyscan', ['-t', 'ed25519', '-p', String(port), '127.0.0.1']);
      const fp = await runProgram('ssh-keygen', ['-lf', '-'], { input: scan.stdout });
      return fp.stdout.split(/\s+/)[1];
    };
    const logged = () =>
      /"msg":"SSH host key (?:created|loaded)"/.test(daemon!.logs())
        ? /"fingerprint":"(SHA256:[^"]+)"/.exec(daemon!.logs())?.[1]
        : undefined;
    const before = await served();
    expect(before).toMatch(/^SHA256:/);
    expect(logged()).toBe(before);
    expect(execFileSync('ssh-keygen', ['-lf', keyPath]).toString().split(/\s+/)[1]).toBe(before);

    expect(await daemon!.stop('SIGTERM')).toBe(0);
    daemon = await startGatewayDaemon();
    expect(daemon.logs()).toContain('SSH host key loaded');
    expect(logged()).toBe(before);
    expect(await served()).toBe(before);
    const r = await runProgram('ssh', [...target.sshArgs, 'echo back']);
    expect([r.code, r.stdout]).toEqual([0, 'back\n']);
  });
});
