// SSH logins end to end (issue 5, "Must show"): a device container (Dockerfile.test: Debian,
// OpenSSH configured like SkiffOS, skiff-core installed by `make install`, `skiff-core daemon
// --create-users`, the engine's socket mounted) and the real clients — OpenSSH's ssh/sftp/scp and
// ssh2's client for an interactive PTY — against the real engine. Users, sshd and keys change
// inside the device only.
//
// One device serves the whole file. Its config maps three host users to three containers:
//   core    → PREFIX-core: systemd as PID 1, image built from test/fixtures/images/core
//   alice   → PREFIX-lite: the Debian base running `sleep infinity`; container user created by
//             skiff-core (createContainerUser). On the device alice exists before the daemon starts,
//             in the docker group, as SkiffOS's Go skiff-core left its users.
//   builder → PREFIX-slow: an image whose build takes a while (`RUN sleep`), logged into at boot.
import { createHash, randomBytes } from 'node:crypto';
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import ssh2 from 'ssh2';
import type { ClientChannel } from 'ssh2';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { conformanceSuite, type ConformanceTarget } from './conformance.js';
import { startDevice, REPO_ROOT, run, type Device } from './helpers/device.js';
import {
  BUSYBOX_IMAGE,
  cleanupByPrefix,
  DEBIAN_SYSTEMD_IMAGE,
  integrationSkipReason,
  testDocker,
  uniquePrefix,
  waitFor,
} from './helpers/engine.js';
import { systemdContainer } from './helpers/configs.js';
import { scriptedSsh } from '../support/ssh-client.js';

const CORE_CONTEXT = join(REPO_ROOT, 'test/fixtures/images/core');
/** Inside the device (put there before it starts). */
const SLOW_CONTEXT = '/srv/skiff-e2e/slow';
const SLOW_BUILD_SECONDS = 6;
const MARKER = '/etc/skiff-e2e-marker';
const MB100 = 100_000_000;

const sha256 = (data: Buffer | string) => createHash('sha256').update(data).digest('hex');

describe.skipIf(integrationSkipReason())('ssh logins into containers (device container, real sshd and clients)', () => {
  const docker = testDocker();
  const prefix = uniquePrefix();
  const core = `${prefix}-core`;
  const lite = `${prefix}-lite`;
  const slow = `${prefix}-slow`;
  const coreImage = `${prefix}-core:1`;
  const slowImage = `${prefix}-slow:1`;
  let dev: Device;
  let target: ConformanceTarget;

  const config = (extraCoreAuth = '') => `
containers:
  ${core}:${systemdContainer(coreImage)}
  ${lite}:
    image: ${DEBIAN_SYSTEMD_IMAGE}
    cmd: ["sleep", "infinity"]
    startAfterCreate: true
    restartPolicy: always
  ${slow}:
    image: ${slowImage}
    cmd: ["sleep", "1000000"]
    startAfterCreate: true
    restartPolicy: always
users:
  core:
    container: ${core}
    containerUser: core
    auth:
      copyRootKeys: true
      agentForwarding: true${extraCoreAuth}
  alice:
    container: ${lite}
    containerUser: alice
    createContainerUser: true
    auth:
      copyRootKeys: true
  builder:
    container: ${slow}
    auth:
      copyRootKeys: true
images:
  "${coreImage}":
    build:
      source: ${CORE_CONTEXT}
  "${slowImage}":
    build:
      source: ${SLOW_CONTEXT}
`;

  /** Device logs appended to a failing expectation's message. */
  async function withLogs<T>(what: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      const logs = await dev.logs().catch(() => '(no device logs)');
      // The daemon's log, then sshd's: the last lines of each; engine calls (debug) left out.
      const [daemonPart = '', sshdPart = ''] = logs.split(/\n(?=---- docker logs )/);
      const tail = (text: string, n: number) =>
        text
          .split('\n')
          .filter((l) => !l.includes('"level":"debug"'))
          .slice(-n)
          .join('\n');
      (err as Error).message += `\n[${what}] device logs:\n${tail(daemonPart, 40)}\n${tail(sshdPart, 20)}`;
      throw err;
    }
  }

  beforeAll(async () => {
    dev = await startDevice({
      prefix,
      config: config(),
      binds: [`${CORE_CONTEXT}:${CORE_CONTEXT}:ro`],
      files: {
        [`${SLOW_CONTEXT}/Dockerfile`]: `FROM ${BUSYBOX_IMAGE}\nRUN echo building slowly && sleep ${SLOW_BUILD_SECONDS}\nRUN echo ${slow} > ${MARKER}\n`,
      },
      // As the Go skiff-core left it: a mapped user in the docker group (root-equivalent).
      prepare: 'useradd --create-home --shell /bin/bash --groups docker alice',
    });
    const opts = [...scriptedSsh(), '-o', 'IdentitiesOnly=yes', '-i', dev.keyPath];
    target = {
      sshArgs: ['-p', String(dev.sshPort), ...opts, 'core@127.0.0.1'],
      sftpArgs: ['-P', String(dev.sshPort), ...opts, 'core@127.0.0.1'],
      ssh2: { host: '127.0.0.1', port: dev.sshPort, username: 'core', privateKey: readFileSync(dev.keyPath) },
      containerName: core,
    };
  });

  afterAll(async () => {
    // The device first: its daemon would otherwise recreate what the cleanup removes.
    await dev?.stop();
    await cleanupByPrefix(prefix, docker);
  });

  /** Waits until the daemon has opened USER's session socket (the account is ready then). */
  async function socketReady(user: string, timeoutMs = 60_000) {
    await waitFor(async () => (await dev.exec(`test -S /run/skiff-core/users/${user}.sock`)).code === 0, {
      what: `the session socket of ${user}`,
      timeoutMs,
      intervalMs: 100,
    });
  }

  let ready: Promise<void> | undefined;
  /** Both login containers up (core's systemd booted), with a marker naming each container. */
  function containersReady(): Promise<void> {
    ready ??= withLogs('containers ready', async () => {
      for (const user of ['core', 'alice']) {
        await socketReady(user);
        // A login waits for its container (build, start, systemd boot) by itself.
        const r = await dev.ssh(user, 'true', { timeoutMs: 240_000 });
        expect(r.code, `first login of ${user}: ${r.stderr}`).toBe(0);
      }
      for (const name of [core, lite]) {
        await run('docker', ['exec', name, 'sh', '-c', `echo ${name} > ${MARKER}`]);
      }
    });
    return ready;
  }

  it('a login while the image is still being built shows progress, then runs the command', async () => {
    await withLogs('login during build', async () => {
      await socketReady('builder');
      const started = Date.now();
      const r = await dev.ssh('builder', `cat ${MARKER}; echo ran`, { timeoutMs: 240_000 });
      const lines = r.stderr.split('\n').filter((l) => l.trim());
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout.toString()).toBe(`${slow}\nran\n`);
      // Progress about exactly this container/image, e.g. "image …-slow:1: building step 2/3: RUN …"
      // or "waiting for container …-slow to be set up".
      expect(lines.length, r.stderr).toBeGreaterThan(0);
      expect(
        lines.some((l) => l.includes(slow) && /building|waiting|starting/.test(l)),
        r.stderr,
      ).toBe(true);
      expect(Date.now() - started).toBeGreaterThan(1000);
      console.log(`login during the build (${Date.now() - started} ms) saw:\n  ${lines.join('\n  ')}`);
    });
  });

  it('interactive PTY login: the container user, systemd as PID 1, the home directory, resize', async () => {
    await containersReady();
    await withLogs('pty', async () => {
      const client = new ssh2.Client();
      await new Promise<void>((resolve, reject) => {
        client.once('ready', () => resolve());
        client.once('error', reject);
        client.connect({
          host: '127.0.0.1',
          port: dev.sshPort,
          username: 'core',
          privateKey: readFileSync(dev.keyPath),
          readyTimeout: 30_000,
        });
      });
      try {
        const channel = await new Promise<ClientChannel>((resolve, reject) =>
          client.shell({ term: 'xterm', rows: 24, cols: 80 }, (err, ch) => (err ? reject(err) : resolve(ch))),
        );
        let out = '';
        channel.on('data', (d: Buffer) => (out += d.toString()));
        channel.stderr.on('data', (d: Buffer) => (out += d.toString()));
        const closed = new Promise<number | undefined>((resolve) => channel.once('exit', (code: number | undefined) => resolve(code)));
        // Markers the shell computes, so the terminal's echo of the command never matches them.
        const between = async (start: string, end: string) => {
          const re = new RegExp(`${start}\\r*\\n([\\s\\S]*?)${end}`);
          const m = await waitFor(() => re.exec(out), { what: `${end} in the terminal output`, timeoutMs: 30_000 }).catch((err: Error) => {
            throw new Error(`${err.message}\nterminal output so far: ${JSON.stringify(out)}`);
          });
          return (m[1] ?? '')
            .replace(/\r/g, '')
            .trim()
            .split('\n')
            .map((l) => l.trim());
        };

        channel.write('echo "S=$((6*7))"; whoami; pwd; cat /proc/1/comm; stty size; tty >/dev/null && echo has-tty; echo "E=$((7*6))x"\n');
        const first = await between('S=42', 'E=42x');
        expect(first, out).toEqual(['core', '/home/core', 'systemd', '24 80', 'has-tty']);

        channel.setWindow(40, 100, 0, 0);
        // The new size travels sshd → SIGWINCH of the login shell → daemon → engine: poll for it.
        let size: string[] = [];
        for (let i = 0; i < 20 && size[0] !== '40 100'; i++) {
          await new Promise((r) => setTimeout(r, 250));
          out = '';
          channel.write(`echo "R=$((${i}+100))"; stty size; echo "Q=$((${i}+200))x"\n`);
          size = await between(`R=${i + 100}`, `Q=${i + 200}x`);
        }
        expect(size, out).toEqual(['40 100']);

        channel.write('exit 7\n');
        expect(await closed).toBe(7);
      } finally {
        client.end();
      }
    });
  });

  it('PTY output is translated once, as by any `ssh -t` (no doubled carriage returns), exit code kept', async () => {
    await containersReady();
    const r = await dev.ssh('core', "printf 'a\\nb\\n'; exit 3", { tty: true });
    expect(r.code, r.stderr).toBe(3);
    expect(JSON.stringify(r.stdout.toString())).toBe(JSON.stringify('a\r\nb\r\n'));
  });

  it('exec: exit codes 0, 1 and 42', async () => {
    await containersReady();
    for (const [command, code] of [
      ['true', 0],
      ['false', 1],
      ['exit 42', 42],
    ] as const) {
      const r = await dev.ssh('core', command);
      expect(r.code, `${command}: ${r.stderr}`).toBe(code);
    }
  });

  it('exec: stdin EOF reaches the command; stdout and stderr stay apart', async () => {
    await containersReady();
    const wc = await dev.ssh('core', 'wc -c', { input: 'hi\n' });
    expect(wc.code, wc.stderr).toBe(0);
    expect(wc.stdout.toString().trim()).toBe('3');

    const both = await dev.ssh('core', 'echo to-out; echo to-err >&2');
    expect(both.stdout.toString()).toBe('to-out\n');
    expect(both.stderr).toBe('to-err\n');
  });

  it('exec: 100 MB through stdout and through stdin arrive intact', async () => {
    await containersReady();
    const made = await dev.ssh('core', `head -c ${MB100} /dev/urandom > /tmp/big.bin && sha256sum /tmp/big.bin`);
    expect(made.code, made.stderr).toBe(0);
    const remoteHash = made.stdout.toString().split(/\s+/)[0];

    let t = Date.now();
    const down = await dev.ssh('core', 'cat /tmp/big.bin; rm -f /tmp/big.bin', { timeoutMs: 170_000 });
    const downMs = Date.now() - t;
    expect(down.code, down.stderr).toBe(0);
    expect(down.stdout.length).toBe(MB100);
    expect(sha256(down.stdout)).toBe(remoteHash);

    const data = randomBytes(MB100);
    t = Date.now();
    const up = await dev.ssh('core', 'sha256sum', { input: data, timeoutMs: 170_000 });
    const upMs = Date.now() - t;
    expect(up.code, up.stderr).toBe(0);
    expect(up.stdout.toString().split(/\s+/)[0]).toBe(sha256(data));
    console.log(`100 MB over ssh: stdout ${downMs} ms, stdin ${upMs} ms`);
  }, 400_000);

  it('exec: a slow reader (backpressure all the way) still gets all the output, then the exit code', async () => {
    await containersReady();
    const size = 50_000_000;
    // Three tries: the end of a session under backpressure is where the output can get stuck.
    for (let attempt = 1; attempt <= 3; attempt++) {
      const client = dev.spawnSsh('core', `head -c ${size} /dev/zero; exit 5`);
      client.stdin!.end();
      client.stdout!.pause();
      let received = 0;
      let stderr = '';
      client.stderr!.on('data', (c: Buffer) => (stderr += c.toString()));
      await new Promise((r) => setTimeout(r, 2000));
      client.stdout!.on('data', (c: Buffer) => (received += c.length));
      client.stdout!.resume();
      const code = await new Promise<number | null | 'stuck'>((resolve) => {
        const timer = setTimeout(() => {
          client.kill('SIGKILL');
          resolve('stuck');
        }, 60_000);
        client.once('close', (c: number | null) => {
          clearTimeout(timer);
          resolve(c);
        });
      });
      expect({ attempt, code, received, stderr }).toEqual({ attempt, code: 5, received: size, stderr: '' });
    }
  }, 240_000);

  it('sftp put/get and scp read and write the container, not the device', async () => {
    await containersReady();
    await withLogs('sftp/scp', async () => {
      const marker = `in ${core} ${randomBytes(4).toString('hex')}\n`;
      await run('docker', ['exec', '-u', 'core', core, 'sh', '-c', `printf '%s' '${marker}' > /home/core/marker.txt`]);
      const put = randomBytes(1_000_000);
      await writeFile(join(dev.dir, 'put.bin'), put);

      const s = await dev.sftp(
        'core',
        `put ${join(dev.dir, 'put.bin')} /home/core/sftp-put.bin\nget /home/core/marker.txt ${join(dev.dir, 'sftp-marker.txt')}\n`,
      );
      expect(s.code, `${s.stdout.toString()}${s.stderr}`).toBe(0);
      expect(await readFile(join(dev.dir, 'sftp-marker.txt'), 'utf8')).toBe(marker);

      const up = await dev.scp([join(dev.dir, 'put.bin'), dev.remote('core', '/home/core/scp-put.bin')]);
      expect(up.code, up.stderr).toBe(0);
      const downScp = await dev.scp([dev.remote('core', '/home/core/marker.txt'), join(dev.dir, 'scp-marker.txt')]);
      expect(downScp.code, downScp.stderr).toBe(0);
      expect(await readFile(join(dev.dir, 'scp-marker.txt'), 'utf8')).toBe(marker);

      // Both uploads are in the container, owned by its core user; none is on the device.
      const inside = await run('docker', [
        'exec',
        core,
        'sh',
        '-c',
        'stat -c %U /home/core/sftp-put.bin /home/core/scp-put.bin && sha256sum /home/core/sftp-put.bin /home/core/scp-put.bin',
      ]);
      const text = inside.stdout.toString();
      expect(inside.code, inside.stderr).toBe(0);
      expect(text.split('\n').slice(0, 2)).toEqual(['core', 'core']);
      expect(text.match(/^[0-9a-f]{64}/gm)).toEqual([sha256(put), sha256(put)]);
      const onDevice = await dev.exec('ls /home/core/sftp-put.bin /home/core/scp-put.bin /home/core/marker.txt 2>/dev/null | wc -l');
      expect(onDevice.stdout.trim()).toBe('0');
    });
  });

  /** Host PIDs-free view: the lines of `ps` in CONTAINER whose command is exactly `cmd`. */
  async function processes(container: string, cmd: string): Promise<string[]> {
    const r = await run('docker', ['exec', container, 'ps', '-eo', 'pid=,args=']);
    return r.stdout
      .toString()
      .split('\n')
      .filter((l) => l.trim().replace(/^\d+\s+/, '') === cmd);
  }

  it('disconnect during `sleep 1000` (no TTY): the process is gone from the container 5 s later', async () => {
    await containersReady();
    await withLogs('disconnect', async () => {
      const client = dev.spawnSsh('core', 'sleep 1000');
      try {
        await waitFor(async () => (await processes(core, 'sleep 1000')).length > 0, {
          what: 'sleep 1000 in the container',
          timeoutMs: 30_000,
        });
      } finally {
        client.kill('SIGKILL');
      }
      await new Promise((r) => setTimeout(r, 5000));
      expect(await processes(core, 'sleep 1000')).toEqual([]);
    });
  });

  it('disconnect during `sleep 1001` (TTY): the process is gone from the container 5 s later', async () => {
    await containersReady();
    await withLogs('disconnect tty', async () => {
      const client = dev.spawnSsh('core', 'sleep 1001', { tty: true });
      try {
        await waitFor(async () => (await processes(core, 'sleep 1001')).length > 0, {
          what: 'sleep 1001 in the container',
          timeoutMs: 30_000,
        });
      } finally {
        client.kill('SIGKILL');
      }
      await new Promise((r) => setTimeout(r, 5000));
      expect(await processes(core, 'sleep 1001')).toEqual([]);
    });
  });

  it('two users land in their own containers as their container users', async () => {
    await containersReady();
    const c = await dev.ssh('core', `cat ${MARKER}; whoami`);
    expect(c.stdout.toString(), c.stderr).toBe(`${core}\ncore\n`);
    const a = await dev.ssh('alice', `cat ${MARKER}; whoami; pwd`);
    expect(a.stdout.toString(), a.stderr).toBe(`${lite}\nalice\n/home/alice\n`);
  });

  /** Connects to a unix socket on the device as USER; prints CONNECTED or the error code. */
  async function connectAs(user: string, path: string): Promise<string> {
    const script = `const s=require('net').connect(process.argv[1]);s.on('connect',()=>{console.log('CONNECTED');s.destroy()});s.on('error',e=>console.log(e.code))`;
    const r = await dev.exec(['node', '-e', script, path], { user });
    return (r.stdout + r.stderr).trim();
  }

  it('ssh -A: the agent reaches the container for that session only, and only its user', async () => {
    await containersReady();
    const dir = await mkdtemp(join(tmpdir(), `${prefix}-agent-`));
    const sock = join(dir, 'agent.sock');
    const agent = spawn('ssh-agent', ['-D', '-a', sock], { stdio: 'ignore' });
    try {
      await waitFor(() => existsSync(sock), { what: 'ssh-agent listening' });
      await run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', `${prefix}-agent-key`, '-f', join(dir, 'key')]);
      expect((await run('ssh-add', [join(dir, 'key')], { env: { SSH_AUTH_SOCK: sock } })).code).toBe(0);
      const env = { SSH_AUTH_SOCK: sock };
      const list = 'echo "sock=$SSH_AUTH_SOCK"; ssh-add -l; echo "code=$?"';

      const forwarded = await withLogs('ssh -A', async () => {
        const r = await dev.ssh('core', list, { args: ['-A'], env });
        expect(r.stderr).not.toContain('agent forwarding is not available');
        return r;
      });
      const out = forwarded.stdout.toString();
      expect(out, forwarded.stderr).toMatch(/^sock=\/tmp\/skiff-agent-[0-9a-f]{16}\/agent\.sock\n/);
      expect(out).toContain(`${prefix}-agent-key (ED25519)\ncode=0`);
      // Gone with the session.
      const path = /^sock=(\S+)/.exec(out)![1]!;
      await waitFor(async () => (await run('docker', ['exec', core, 'test', '-e', dirname(path)])).code !== 0, {
        what: 'the agent directory removed after the session',
      });

      // Without -A, and for a user without auth.agentForwarding: nothing.
      for (const [user, args] of [
        ['core', []],
        ['alice', ['-A']],
      ] as const) {
        const r = await dev.ssh(user, list, { args: [...args], env });
        expect(r.stdout.toString(), `${user} ${args.join(' ')}`).toMatch(/^sock=\n[\s\S]*code=2\n$/);
      }

      // While a session holds it: the container user's alone.
      const held = dev.spawnSsh('core', 'echo "$SSH_AUTH_SOCK"; sleep 30', { args: ['-A'], env });
      try {
        const line = await new Promise<string>((resolve) => held.stdout!.once('data', (c: Buffer) => resolve(c.toString().trim())));
        const mode = await run('docker', ['exec', core, 'stat', '-c', '%U %a', dirname(line), line]);
        expect(mode.stdout.toString()).toBe('core 700\ncore 600\n');
        const other = await run('docker', ['exec', '-u', 'nobody', '-e', `SSH_AUTH_SOCK=${line}`, core, 'ssh-add', '-l']);
        expect(other.code).toBe(2);
        expect(other.stderr).toMatch(/Permission denied/);
        const own = await run('docker', ['exec', '-u', 'core', '-e', `SSH_AUTH_SOCK=${line}`, core, 'ssh-add', '-l']);
        expect(own.stdout.toString()).toContain(`${prefix}-agent-key`);
      } finally {
        held.kill();
      }
    } finally {
      agent.kill();
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("a user cannot connect to another user's session socket", async () => {
    await containersReady();
    expect(await connectAs('core', '/run/skiff-core/users/core.sock')).toBe('CONNECTED');
    expect(await connectAs('core', '/run/skiff-core/users/alice.sock')).toBe('EACCES');
    expect(await connectAs('alice', '/run/skiff-core/users/core.sock')).toBe('EACCES');
    const ls = await dev.exec('stat -c "%U %a %n" /run/skiff-core/users /run/skiff-core/users/*.sock');
    expect(ls.stdout.split('\n').filter(Boolean).sort()).toEqual(
      [
        'root 755 /run/skiff-core/users',
        'alice 600 /run/skiff-core/users/alice.sock',
        'builder 600 /run/skiff-core/users/builder.sock',
        'core 600 /run/skiff-core/users/core.sock',
      ].sort(),
    );
  });

  it('no docker group anywhere, and the docker socket is out of reach', async () => {
    await containersReady();
    await withLogs('docker group', async () => {
      for (const user of ['core', 'alice']) {
        // In the session…
        const inSession = await dev.ssh(
          user,
          'id; test -e /var/run/docker.sock && echo has-socket; test -e /run/docker.sock && echo has-socket; true',
        );
        expect(inSession.code, inSession.stderr).toBe(0);
        expect(inSession.stdout.toString()).not.toMatch(/docker|has-socket/);
        // …and on the device: the host account (alice was in the group before the daemon ran).
        const host = await dev.exec(['id', '-nG', user]);
        expect(host.stdout.split(/\s+/), host.stderr).not.toContain('docker');
        expect(await connectAs(user, '/var/run/docker.sock')).toBe('EACCES');
      }
      const members = await dev.exec('getent group docker');
      expect(members.stdout.trim()).toMatch(/^docker:x:\d+:$/);
      const curl = await dev.exec(['curl', '-sS', '--max-time', '5', '--unix-socket', '/var/run/docker.sock', 'http://localhost/_ping'], {
        user: 'core',
      });
      // curl's "(7) Couldn't connect to server": connect(2) on the socket failed (EACCES, see above).
      expect(curl.code, curl.stderr).toBe(7);
      expect(curl.stdout).not.toBe('OK');
      // Root on the device does reach it: the check above is about permissions, not a missing socket.
      const asRoot = await dev.exec(['curl', '-sS', '--max-time', '5', '--unix-socket', '/var/run/docker.sock', 'http://localhost/_ping']);
      expect(asRoot.stdout).toBe('OK');
    });
  });

  it('symlinks and files planted in a home directory change nothing outside it', async () => {
    await containersReady();
    await withLogs('planted symlinks', async () => {
      // As core on the device: ~/.ssh → /etc, the Go original's log and routing files → elsewhere.
      const plant = await dev.exec(
        [
          'rm -rf ~/.ssh',
          'ln -s /etc ~/.ssh',
          'ln -s /etc/shadow ~/.skiff-core-setup.log',
          `printf 'containerId: ${lite}\\nexecUser: root\\nshell: ["/bin/sh"]\\n' > ~/.skiff-core.yaml`,
        ].join(' && '),
        { user: 'core' },
      );
      expect(plant.code, plant.stderr).toBe(0);
      const snapshot =
        'sha256sum /etc/passwd /etc/shadow /etc/group /etc/gshadow /etc/shells; ls -la /etc | grep -v " skiff-core$" | sha256sum';
      const before = await dev.exec(snapshot);
      await dev.exec('touch /tmp/stamp && sleep 1');

      // A config change that makes the daemon write core's keys, then a reload.
      const extraKey = (await readFile(`${dev.keyPath}.pub`, 'utf8')).trim().replace(/\S+$/, 'planted-test-key');
      const written = await dev.exec(
        'cat > /mnt/persist/skiff/core/config.yaml.new && mv /mnt/persist/skiff/core/config.yaml.new /mnt/persist/skiff/core/config.yaml',
        {
          input: config(`\n      sshKeys:\n        - "${extraKey}"`),
        },
      );
      expect(written.code, written.stderr).toBe(0);
      const reload = await dev.exec(['skiff-core', 'reload']);
      expect(reload.code, reload.stderr).toBe(0);
      await waitFor(async () => (await dev.exec('grep -c planted-test-key /etc/skiff-core/authorized_keys/core')).stdout.trim() === '1', {
        what: "the new key in core's keys file",
        timeoutMs: 60_000,
      });

      const after = await dev.exec(snapshot);
      expect(after.stdout).toBe(before.stdout);
      const changed = await dev.exec('find /etc /root /home/core -xdev -newer /tmp/stamp | sort');
      expect(changed.stdout.split('\n').filter((p) => p && !p.startsWith('/etc/skiff-core/authorized_keys'))).toEqual([]);
      expect((await dev.exec('ls /etc/authorized_keys /etc/.skiff-core.yaml /etc/.skiff-core-setup.log 2>/dev/null; true')).stdout).toBe(
        '',
      );
      expect((await dev.exec('readlink /home/core/.ssh')).stdout.trim()).toBe('/etc');

      // The planted routing file is ignored: core still lands in its own container as core.
      const r = await dev.ssh('core', `cat ${MARKER}; whoami`);
      expect(r.stdout.toString(), r.stderr).toBe(`${core}\ncore\n`);
    });
  });

  /** Kills the device's daemon with SIGKILL: no clean-up of any kind runs. */
  async function killDaemon() {
    const r = await dev.exec('pkill -9 -f "[s]kiff-core.mjs daemon"; sleep 0.2; ! pgrep -f "[s]kiff-core.mjs daemon"');
    expect(r.code, `daemon still running: ${r.stdout}${r.stderr}`).toBe(0);
  }

  /** Starts the daemon again as the device's boot did; resolves once USER's socket answers. */
  async function startDaemonAgain(user: string) {
    await dev.exec(
      'rm -f /run/skiff-core/users/*.sock; setsid -f /usr/bin/skiff-core daemon --create-users >>/var/log/skiff-core.log 2>&1 </dev/null',
    );
    await socketReady(user);
  }

  /** An interactive shell through the real sshd, with ssh2's client (PTY, resize, exit code). */
  async function ptyShell(user: string) {
    const client = new ssh2.Client();
    await new Promise<void>((resolve, reject) => {
      client.once('ready', () => resolve());
      client.once('error', reject);
      client.connect({ host: '127.0.0.1', port: dev.sshPort, username: user, privateKey: readFileSync(dev.keyPath), readyTimeout: 30_000 });
    });
    const channel = await new Promise<ClientChannel>((resolve, reject) =>
      client.shell({ term: 'xterm', rows: 24, cols: 80 }, (err, ch) => (err ? reject(err) : resolve(ch))),
    );
    let out = '';
    channel.on('data', (d: Buffer) => (out += d.toString()));
    const exit = new Promise<number | undefined>((resolve) => channel.once('exit', (code: number | undefined) => resolve(code)));
    let n = 0;
    /** Runs SCRIPT and returns its output lines, found between markers the shell computes. */
    const ask = async (script: string) => {
      n += 1;
      out = '';
      channel.write(`echo "B=$((${n}+1000))"; ${script}; echo "E=$((${n}+2000))x"\n`);
      const re = new RegExp(`B=${n + 1000}\\r*\\n([\\s\\S]*?)E=${n + 2000}x`);
      const m = await waitFor(() => re.exec(out), { what: `the answer to ${script}`, timeoutMs: 20_000 }).catch((err: Error) => {
        throw new Error(`${err.message}\nterminal output so far: ${JSON.stringify(out)}`);
      });
      return (m[1] ?? '')
        .replace(/\r/g, '')
        .trim()
        .split('\n')
        .map((l) => l.trim());
    };
    return { client, channel, exit, ask };
  }

  it('sessions outlive the daemon: a PTY shell and `cat` through kill -9 and a new start, then resize and exit codes', async () => {
    await containersReady();
    await withLogs('daemon restart', async () => {
      const pty = await ptyShell('alice');
      const cat = dev.spawnSsh('alice', 'cat');
      let catOut = '';
      cat.stdout!.on('data', (d: Buffer) => (catOut += d.toString()));
      const catExit = new Promise<number | null>((resolve) => cat.once('close', (code) => resolve(code)));
      try {
        expect(await pty.ask('whoami')).toEqual(['alice']);
        cat.stdin!.write('before\n');
        await waitFor(() => catOut === 'before\n', { what: 'cat to echo before the restart', timeoutMs: 20_000 });

        await killDaemon();
        // Bytes flow with no daemon at all: they never went through it.
        cat.stdin!.write('while down\n');
        await waitFor(() => catOut === 'before\nwhile down\n', { what: 'cat to echo while the daemon is down', timeoutMs: 10_000 });
        expect(await pty.ask('echo typed-while-down')).toEqual(['typed-while-down']);

        await startDaemonAgain('alice');
        // A resize after the restart reaches the container (through the new daemon).
        pty.channel.setWindow(50, 120, 0, 0);
        let size: string[] = [];
        for (let i = 0; i < 40 && size[0] !== '50 120'; i++) {
          await new Promise((r) => setTimeout(r, 250));
          size = await pty.ask('stty size');
        }
        expect(size).toEqual(['50 120']);
        cat.stdin!.write('after\n');
        cat.stdin!.end();
        expect(await catExit).toBe(0);
        expect(catOut).toBe('before\nwhile down\nafter\n');
        pty.channel.write('exit 3\n');
        expect(await pty.exit).toBe(3);
      } finally {
        cat.kill('SIGKILL');
        pty.client.end();
      }
    });
  });

  it("a client that left while the daemon was down: its processes are gone within 5 s of the daemon's return", async () => {
    await containersReady();
    await withLogs('orphan after restart', async () => {
      const client = dev.spawnSsh('alice', 'sleep 1002');
      await waitFor(async () => (await processes(lite, 'sleep 1002')).length > 0, {
        what: 'sleep 1002 in the container',
        timeoutMs: 30_000,
      });
      await killDaemon();
      client.kill('SIGKILL');
      await new Promise((r) => setTimeout(r, 1000));
      // Nobody ends it while there is no daemon.
      expect(await processes(lite, 'sleep 1002')).toHaveLength(1);
      await startDaemonAgain('alice');
      const back = Date.now();
      await waitFor(async () => (await processes(lite, 'sleep 1002')).length === 0, {
        what: 'sleep 1002 to be ended',
        timeoutMs: 5000,
        intervalMs: 200,
      });
      console.log(`orphaned session ended ${Date.now() - back} ms after the daemon's socket was back`);
    });
  });

  // Last, so the build-in-progress test above sees the device's first minutes. The same suite
  // runs against the gateway in gateway.test.ts.
  conformanceSuite('OpenSSH + login shell', () => target);
});
