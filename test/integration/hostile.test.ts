// The hostile-client suite (issue 12): the built daemon process, attacked through every door a
// client has: its session socket, its SSH gateway, its config and build sources. After each
// group: the daemon is the same process, a normal login works, and its latency and the daemon's
// memory growth are recorded (printed at the end and written to .test-results/hostile.json).
//
// The session-socket attacks start from a recording of what the real login shell sends, so they
// follow the protocol when it changes. Two host accounts that exist everywhere play the parts:
// `daemon` attacks on its own socket, `root` logs in normally (SKIFF_CORE_USERS=lookup: the daemon
// only reads /etc/passwd, nothing on this machine changes).
import { execFileSync } from 'node:child_process';
import { mkdir, mkdtemp, rename, rm, symlink, writeFile } from 'node:fs/promises';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import ssh2 from 'ssh2';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createFrameDecoder, encodeFrame, encodeHeader, FRAME, MAX_HELLO } from '../../src/session/frames.js';
import { SESSION_LIMITS } from '../../src/session/session-server.js';
import { daemonPaths, startDaemonProcess, type DaemonPaths, type DaemonProcess } from './helpers/daemon.js';
import { BUSYBOX_IMAGE, cleanupByPrefix, execIn, integrationSkipReason, testDocker, uniquePrefix, waitFor } from './helpers/engine.js';
import { frameBounds, median, rawSession, realLogin, recordLogin, rss, seeded, type RawResult } from './helpers/hostile.js';
import { freePort } from '../support/net.js';

const VICTIM = 'root';
const ATTACKER = 'daemon';
const RESULTS = fileURLToPath(new URL('../../.test-results/hostile.json', import.meta.url));

interface GroupFigures {
  inputs: number;
  daemonRestarts: number;
  loginMs: number;
  rssGrowthMB: number;
  [extra: string]: unknown;
}

describe.skipIf(integrationSkipReason())('hostile clients against the built daemon', () => {
  const docker = testDocker();
  const prefix = uniquePrefix();
  const container = `${prefix}-h`;
  let dir: string;
  let paths: DaemonPaths;
  let daemon: DaemonProcess;
  let pid: number;
  let port: number;
  let privateKey: Buffer;
  let baseConfig: string;
  let idleLoginMs: number;
  let baseRss: number;
  const figures: Record<string, unknown> = {};

  /** Replaces the config the way editors do (temp file, rename). */
  async function edit(yaml: string) {
    await writeFile(`${paths.config}.swp`, yaml);
    await rename(`${paths.config}.swp`, paths.config);
  }

  async function normalLogins(n: number): Promise<number[]> {
    const times: number[] = [];
    for (let i = 0; i < n; i++) {
      const r = await realLogin(paths.runDir, VICTIM, 'echo ok');
      expect(r.stderr).toBe('');
      expect(r.stdout).toBe('ok\n');
      expect(r.code).toBe(0);
      times.push(r.ms);
    }
    return times;
  }

  /** After a group: same process, a normal login works; returns the figures. */
  async function checkpoint(group: string, inputs: number, extra: Record<string, unknown> = {}): Promise<GroupFigures> {
    expect(daemon.child.exitCode, `the daemon exited during "${group}":\n${daemon.logs().slice(-3000)}`).toBeNull();
    expect((await daemon.status()).daemon.pid).toBe(pid);
    const loginMs = median(await normalLogins(3));
    const out: GroupFigures = {
      inputs,
      daemonRestarts: 0,
      loginMs: Math.round(loginMs),
      rssGrowthMB: +((rss(pid) - baseRss) / 1048576).toFixed(1),
      ...extra,
    };
    figures[group] = out;
    return out;
  }

  /** An ssh2 client logged in to the gateway as the victim, from `localAddress`. */
  function gatewayClient(localAddress = '127.0.0.1'): Promise<ssh2.Client> {
    return new Promise((resolve, reject) => {
      const client = new ssh2.Client();
      client.on('error', reject);
      client.on('ready', () => resolve(client));
      client.connect({ host: '127.0.0.1', port, username: VICTIM, privateKey, localAddress, readyTimeout: 30_000 });
    });
  }

  /** Runs `command` on a channel of `client`; `before` may send raw requests on it first. */
  function gatewayExec(
    client: ssh2.Client,
    command: string,
    before?: (channelId: number) => void,
  ): Promise<{ code: number | null; stdout: string }> {
    return new Promise((resolve, reject) => {
      client.exec(command, (err, channel) => {
        if (err) return reject(err);
        before?.((channel as unknown as { outgoing: { id: number } }).outgoing.id);
        let stdout = '';
        let code: number | null = null;
        channel.on('data', (c: Buffer) => (stdout += c.toString()));
        channel.on('exit', (c: number | null) => (code = c));
        channel.on('close', () => resolve({ code, stdout }));
      });
    });
  }

  async function gatewayLogin(command: string, localAddress = '127.0.0.1'): Promise<{ code: number | null; stdout: string; ms: number }> {
    const t0 = performance.now();
    const client = await gatewayClient(localAddress);
    try {
      return { ...(await gatewayExec(client, command)), ms: performance.now() - t0 };
    } finally {
      client.end();
    }
  }

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), `${prefix}-`));
    const key = join(dir, 'id_ed25519');
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', key]);
    privateKey = execFileSync('cat', [key]);
    const publicKey = execFileSync('ssh-keygen', ['-y', '-f', key]).toString().trim();
    paths = daemonPaths(dir);
    await mkdir(join(dir, 'persist'), { recursive: true });
    baseConfig = `containers:
  ${container}:
    image: ${BUSYBOX_IMAGE}
    cmd: ["sleep", "1000000"]
    startAfterCreate: true
users:
  ${VICTIM}:
    container: ${container}
    auth:
      sshKeys:
        - ${publicKey}
  ${ATTACKER}:
    container: ${container}
`;
    await writeFile(paths.config, baseConfig);
    port = await freePort();
    daemon = await startDaemonProcess(paths, {}, [
      '--ssh-listen',
      `127.0.0.1:${port}`,
      '--host-key',
      join(dir, 'host_key'),
      '--log-level',
      'info',
    ]);
    await daemon.until((s) => s.containers.some((c) => c.name === container && c.state === 'running'), `${container} running`, 120_000);
    pid = (await daemon.status()).daemon.pid!;
    await waitFor(() => daemon.logs().includes('SSH gateway listening'), { what: 'the gateway', timeoutMs: 30_000 });
    await normalLogins(2); // warm up: the first login resolves users and starts a waiting exec
    idleLoginMs = median(await normalLogins(5));
    baseRss = rss(pid);
    figures['idle'] = { loginMs: Math.round(idleLoginMs), daemonRssMB: +(baseRss / 1048576).toFixed(1) };
  }, 240_000);

  afterAll(async () => {
    console.log(`[hostile] figures: ${JSON.stringify(figures, null, 2)}`);
    await mkdir(join(RESULTS, '..'), { recursive: true });
    await writeFile(RESULTS, `${JSON.stringify(figures, null, 2)}\n`);
    await daemon?.stop('SIGKILL');
    await cleanupByPrefix(prefix, docker);
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('session socket: a recorded real login replayed, doubled, truncated, bit-flipped, byte by byte, and random bytes', async () => {
    const recorded = await recordLogin(paths.runDir, join(dir, 'proxy'), ATTACKER, 'cat; echo done', 'hello\n');
    expect(recorded.code).toBe(0);
    expect(recorded.stdout).toBe('hello\ndone\n');
    const sent = recorded.sent;
    const bounds = frameBounds(sent);
    expect(bounds.length).toBeGreaterThanOrEqual(3); // hello, stdin, end of stdin
    const random = seeded(12);
    const inputs: { name: string; parts: Buffer[]; gapMs?: number }[] = [];

    inputs.push({ name: 'replay', parts: [sent] });
    // Doubled: a second hello, and stdin after the end of stdin (the frame that ended the daemon).
    inputs.push({ name: 'doubled', parts: [sent, sent] });
    inputs.push({ name: 'stdin after its end', parts: [sent, encodeFrame(FRAME.stdin, 'late'), encodeFrame(FRAME.stdinEnd)] });
    for (const [offset] of bounds.slice(1))
      inputs.push({ name: `truncated at frame boundary ${offset}`, parts: [sent.subarray(0, offset)] });
    for (let i = 0; i < 10; i++) {
      const cut = 1 + Math.floor(random() * (sent.length - 1));
      inputs.push({ name: `truncated at ${cut}`, parts: [sent.subarray(0, cut)] });
    }
    for (let i = 0; i < 20; i++) {
      const flipped = Buffer.from(sent);
      const bit = Math.floor(random() * flipped.length * 8);
      flipped[bit >> 3]! ^= 1 << (bit & 7);
      inputs.push({ name: `bit ${bit} flipped`, parts: [flipped] });
    }
    inputs.push({ name: 'one byte at a time', parts: [...sent].map((b) => Buffer.from([b])), gapMs: 2 });
    for (let i = 0; i < 20; i++) {
      const bytes = Buffer.from(Array.from({ length: 1 + Math.floor(random() * 4096) }, () => Math.floor(random() * 256)));
      inputs.push({ name: `random ${bytes.length} bytes`, parts: [bytes] });
    }

    const results: [string, RawResult][] = [];
    for (let i = 0; i < inputs.length; i += 8) {
      const batch = inputs.slice(i, i + 8);
      const done = await Promise.all(
        batch.map((input) => rawSession(paths.runDir, ATTACKER, input.parts, { ...(input.gapMs ? { gapMs: input.gapMs } : {}) })),
      );
      batch.forEach((input, j) => results.push([input.name, done[j]!]));
    }
    // Every connection ended, none was left hanging; the honest ones did what they asked.
    expect(results.filter(([, r]) => r.closedBy !== 'daemon').map(([n]) => n)).toEqual([]);
    for (const name of ['replay', 'doubled', 'stdin after its end', 'one byte at a time']) {
      const r = results.find(([n]) => n === name)![1];
      expect({ name, exit: r.exit, stdout: r.stdout }).toEqual({ name, exit: 0, stdout: 'hello\ndone\n' });
    }
    await checkpoint('session socket: malformed input', inputs.length);
  }, 300_000);

  it("session socket: another user's session cannot be taken back, resized or signalled, even with its token", async () => {
    // The victim's session, handed off: the raw socket drops the descriptor, the control stays.
    const victim = connect(join(paths.runDir, 'users', `${VICTIM}.sock`));
    const frames: [number, Buffer][] = [];
    const decoder = createFrameDecoder(
      (type, payload) => frames.push([type, payload]),
      () => victim.destroy(),
    );
    victim.on('data', (c: Buffer) => decoder.push(c));
    victim.on('error', () => undefined);
    await new Promise((r) => victim.once('connect', r));
    victim.write(encodeFrame(FRAME.hello, { v: 1, tty: false, handoff: true, command: 'exec sleep 31', env: {} }));
    try {
      const handoff = await waitFor(() => frames.find(([t]) => t === FRAME.handoff), { what: 'the hand-off frame', timeoutMs: 30_000 });
      const given = JSON.parse(handoff[1].toString()) as { session: string; token: string };
      const sleeping = () => execIn(docker, container, ['sh', '-c', 'ps -o args | grep -cx "sleep 31" || true']);
      await waitFor(async () => (await sleeping()).trim() === '1', { what: 'sleep 31 in the container', timeoutMs: 10_000 });

      const attempts: [string, string, { session: string; token: string }][] = [
        ['their token, on my socket', ATTACKER, given],
        ['a forged token, on their socket', VICTIM, { session: given.session, token: 'f'.repeat(64) }],
        ['a forged token, on my socket', ATTACKER, { session: given.session, token: 'f'.repeat(64) }],
        ['no such session', ATTACKER, { session: '0'.repeat(64), token: given.token }],
      ];
      for (const [name, user, resume] of attempts) {
        const r = await rawSession(paths.runDir, user, [
          encodeFrame(FRAME.hello, { v: 1, tty: false, env: {}, resume }),
          encodeFrame(FRAME.resize, { cols: 10, rows: 10 }),
          encodeFrame(FRAME.signal, { name: 'KILL' }),
          encodeFrame(FRAME.done),
        ]);
        expect({ name, error: r.error, exit: r.exit }).toEqual({ name, error: 'no such session for this account', exit: undefined });
      }
      // Nothing reached it: the victim's process runs on.
      expect((await sleeping()).trim()).toBe('1');
      await checkpoint('session socket: taking over sessions', attempts.length);
    } finally {
      victim.destroy();
    }
  }, 120_000);

  it('session socket: 300 connections holding large partial hellos, and silent ones, while a user logs in', async () => {
    const holders: Socket[] = [];
    let refused = 0;
    let peak = rss(pid);
    const sampler = setInterval(() => (peak = Math.max(peak, rss(pid))), 100);
    try {
      const open = (bytes: Buffer | undefined) =>
        new Promise<void>((resolve) => {
          const s = connect(join(paths.runDir, 'users', `${ATTACKER}.sock`));
          s.on('error', () => undefined);
          s.on('data', (c: Buffer) => {
            if (c.includes('the most allowed')) refused++;
          });
          s.once('connect', () => {
            if (bytes) s.write(bytes);
            resolve();
          });
          holders.push(s);
        });
      // A hello announcing just under the limit, most of it sent, the rest never.
      const partial = Buffer.concat([encodeHeader(FRAME.hello, MAX_HELLO - 1), Buffer.alloc(48 * 1024, 0x20)]);
      for (let i = 0; i < 300; i++) await open(partial);
      for (let i = 0; i < 20; i++) await open(undefined);
      await new Promise((r) => setTimeout(r, 500));
      const during = await normalLogins(5);
      clearInterval(sampler);
      peak = Math.max(peak, rss(pid));
      const growth = (peak - baseRss) / 1048576;
      // All but the few allowed to wait for their hello were turned away at once: the daemon
      // holds a few MiB for them.
      expect(refused).toBeGreaterThanOrEqual(320 - SESSION_LIMITS.waitingForHello);
      expect(growth).toBeLessThan(64);
      await checkpoint('session socket: partial-message flood', 320, {
        refusedByCap: refused,
        peakRssGrowthMB: +growth.toFixed(1),
        loginMsDuringFlood: Math.round(median(during)),
        loginMsIdle: Math.round(idleLoginMs),
      });
    } finally {
      clearInterval(sampler);
      for (const s of holders) s.destroy();
    }
  }, 180_000);

  it('gateway: repeated and out-of-order channel requests end at most that channel', async () => {
    type Proto = {
      exec(id: number, cmd: string, reply: boolean): void;
      shell(id: number, reply: boolean): void;
      subsystem(id: number, name: string, reply: boolean): void;
      pty(id: number, rows: number, cols: number, h: number, w: number, term: string, modes: null, reply: boolean): void;
      env(id: number, k: string, v: string, reply: boolean): void;
      windowChange(id: number, rows: number, cols: number, h: number, w: number): void;
      signal(id: number, name: string): void;
    };
    const client = await gatewayClient();
    const proto = (client as unknown as { _protocol: Proto })._protocol;
    try {
      // A second exec, a shell and a subsystem on the same channel, then requests that belong
      // before the command: a pty, env, an absurd window size, a signal it does not forward.
      const result = await gatewayExec(client, 'sleep 1; echo first', (id) => {
        proto.exec(id, 'echo second', true);
        proto.shell(id, true);
        proto.subsystem(id, 'sftp', true);
        proto.pty(id, 24, 80, 0, 0, 'xterm', null, true);
        proto.env(id, 'LANG', 'C', true);
        proto.windowChange(id, 0xffffffff, 0xffffffff, 0, 0);
        proto.signal(id, 'SEGV');
      });
      expect(result).toEqual({ stdout: 'first\n', code: 0 });
      // Requests on a channel before its command: a window change and a signal, nothing running.
      proto.windowChange(0, 10, 10, 0, 0);
      proto.signal(0, 'KILL');
      expect(await gatewayExec(client, 'echo later')).toEqual({ stdout: 'later\n', code: 0 });
    } finally {
      client.end();
    }
    expect(daemon.logs()).toContain('Refused a second session request on one channel');
    await checkpoint('gateway: channel requests', 9);
  }, 120_000);

  it('gateway: a pre-authentication flood from one address does not lock out a login from another; a silent client is cut off', async () => {
    const idle = median([
      (await gatewayLogin('true', '127.0.0.3')).ms,
      (await gatewayLogin('true', '127.0.0.3')).ms,
      (await gatewayLogin('true', '127.0.0.3')).ms,
    ]);
    const flood: Socket[] = [];
    let closedByDaemon = 0;
    try {
      for (let i = 0; i < 200; i++) {
        const s = connect({ host: '127.0.0.1', port, localAddress: '127.0.0.2' });
        s.on('error', () => undefined);
        s.on('close', () => closedByDaemon++);
        // Half send the version line and stall; half send nothing at all.
        if (i % 2) s.once('connect', () => s.write('SSH-2.0-flood\r\n'));
        flood.push(s);
      }
      await new Promise((r) => setTimeout(r, 500));
      const during = await gatewayLogin('echo in', '127.0.0.3');
      expect(during.stdout).toBe('in\n');
      expect(during.code).toBe(0);
      // The flood's address holds at most its share of the slots: the rest were refused.
      expect(closedByDaemon).toBeGreaterThanOrEqual(180);

      // A client that never finishes its version line is cut off by the deadline.
      const t0 = Date.now();
      const slow = connect({ host: '127.0.0.1', port, localAddress: '127.0.0.4' });
      slow.on('error', () => undefined);
      const trickle = setInterval(() => slow.writable && slow.write('S'), 500);
      await new Promise((r) => slow.once('close', r));
      clearInterval(trickle);
      const cutOffMs = Date.now() - t0;
      expect(cutOffMs).toBeLessThan(20_000);
      await checkpoint('gateway: pre-auth flood', 201, {
        secondAddressLoginOk: true,
        gatewayLoginMsIdle: Math.round(idle),
        gatewayLoginMsDuringFlood: Math.round(during.ms),
        floodConnectionsRefused: closedByDaemon,
        slowVersionLineCutOffMs: cutOffMs,
      });
    } finally {
      for (const s of flood) s.destroy();
    }
  }, 120_000);

  it('config and build sources: 20,000 aliases, a .dockerignore and a Dockerfile that are symlinks to a FIFO or /dev/zero', async () => {
    // Aliases: an invalid edit (unknown key) that is still parsed in full before it is refused.
    const aliases = `${baseConfig}x-bomb: &a "v"\nx-list:\n${'  - *a\n'.repeat(20_000)}`;
    const t0 = Date.now();
    await edit(aliases);
    await daemon.until((s) => !s.config.ok, 'the alias-laden edit to be refused', 60_000);
    const aliasParseMs = Date.now() - t0;
    const duringAliases = await normalLogins(1);

    // Build sources: a directory whose .dockerignore is a symlink to a FIFO, one whose
    // Dockerfile is a symlink to /dev/zero.
    const fifoDir = join(dir, 'fifo-src');
    const zeroDir = join(dir, 'zero-src');
    await mkdir(fifoDir, { recursive: true });
    await mkdir(zeroDir, { recursive: true });
    execFileSync('mkfifo', [join(fifoDir, 'pipe')]);
    await writeFile(join(fifoDir, 'Dockerfile'), `FROM ${BUSYBOX_IMAGE}\n`);
    await symlink(join(fifoDir, 'pipe'), join(fifoDir, '.dockerignore'));
    await symlink('/dev/zero', join(zeroDir, 'Dockerfile'));
    const fifoImage = `${prefix}/fifo:1`;
    const zeroImage = `${prefix}/zero:1`;
    await edit(
      `${baseConfig.replace('users:', `  ${prefix}-b1:\n    image: ${fifoImage}\n  ${prefix}-b2:\n    image: ${zeroImage}\nusers:`)}images:\n  ${fifoImage}:\n    build:\n      source: ${fifoDir}\n  ${zeroImage}:\n    build:\n      source: ${zeroDir}\n`,
    );
    const s = await daemon.until(
      (x) => x.config.ok && [fifoImage, zeroImage].every((ref) => x.images.some((i) => i.ref === ref && i.state === 'failed')),
      'both hostile builds to fail',
      60_000,
    );
    expect(s.images.find((i) => i.ref === fifoImage)?.message).toContain('.dockerignore is a symlink');
    expect(s.images.find((i) => i.ref === zeroImage)?.message).toMatch(/Dockerfile/);
    await edit(baseConfig);
    await daemon.until((x) => x.config.ok && !x.images.some((i) => i.ref === fifoImage), 'the plain config back', 60_000);
    await checkpoint('config and build inputs', 3, {
      aliasEditRefusedAfterMs: aliasParseMs,
      loginMsDuringAliasReload: Math.round(duringAliases[0]!),
    });
  }, 180_000);
});
