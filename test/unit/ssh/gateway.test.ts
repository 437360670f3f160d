// The gateway's protocol layers against a real SSH client (ssh2's), on loopback, with a stand-in
// for the session routing: what reaches the handler, and what the client sees back. The routing
// itself, into real containers, is tested by test/integration/gateway.test.ts.
import { connect as tcpConnect } from 'node:net';
import { Writable } from 'node:stream';
import ssh2, { type ClientChannel, type ConnectConfig, type ParsedKey } from 'ssh2';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Config } from '../../../src/config/schema.js';
import { INTERNAL_ERROR_MESSAGE, SkiffError } from '../../../src/errors.js';
import { createLogger } from '../../../src/log.js';
import type { Hello } from '../../../src/session/frames.js';
import type { SessionIo } from '../../../src/session/relay.js';
import { SFTP_COMMAND } from '../../../src/ssh/channel.js';
import { startGateway, type Gateway } from '../../../src/ssh/gateway.js';
import { generateHostKey, type HostKey } from '../../../src/ssh/host-key.js';
import { ed25519KeyPair } from '../../../src/ssh/openssh-key.js';

const { Client, utils } = ssh2;

function keyPair() {
  const pair = ed25519KeyPair();
  return { privateKey: pair.private, line: pair.public };
}
const alice = keyPair();
const stranger = keyPair();

interface Seen {
  hello: Hello;
  closed: AbortSignal;
}

/** Stands in for the daemon's routing: the command says what to do. */
function fakeHandler(seen: Seen[]) {
  return async (user: string, hello: Hello, io: SessionIo): Promise<{ code: number }> => {
    seen.push({ hello, closed: io.closed });
    const [verb, arg] = (hello.command ?? 'shell').split(' ');
    const write = async (stream: Writable, data: Buffer | string) => {
      if (!stream.write(data)) await new Promise((r) => stream.once('drain', r));
    };
    switch (verb) {
      case 'exit':
        return { code: Number(arg) };
      case 'whoami':
        await write(io.stdout, `${user}\n`);
        return { code: 0 };
      case 'streams':
        await write(io.stdout, 'to stdout\n');
        await write(io.stderr, 'to stderr\n');
        return { code: 3 };
      case 'cat': {
        io.started();
        let bytes = 0;
        for await (const chunk of io.stdin) {
          bytes += (chunk as Buffer).length;
          if (arg !== 'count') await write(io.stdout, chunk as Buffer);
        }
        if (arg === 'count') await write(io.stdout, `${bytes}\n`);
        return { code: 0 };
      }
      case 'big': {
        const chunk = Buffer.alloc(64 * 1024, 'x');
        let full = 0;
        for (let sent = 0; sent < Number(arg); sent += chunk.length) {
          if (!io.stdout.write(chunk)) {
            full++;
            await new Promise((r) => io.stdout.once('drain', r));
          }
        }
        backpressure.push(full);
        return { code: 0 };
      }
      case 'progress':
        io.progress('pulling debian: 10%');
        io.progress('pulling debian: 60%');
        io.started();
        await write(io.stdout, 'ran\n');
        return { code: 0 };
      case 'crash':
        // Not one of ours: a bug, or a library's internals.
        throw new TypeError('Cannot read properties of undefined (reading "Id") at /usr/lib/skiff-core/skiff-core.mjs:123');
      case 'fail':
        io.progress('building core: step 1/2');
        throw new SkiffError('SESSION_REFUSED', 'setup failed: build step 2 failed');
      case 'resize': {
        const sizes: string[] = [];
        await new Promise<void>((resolve) =>
          io.onResize((cols, rows) => {
            sizes.push(`${cols}x${rows}`);
            if (sizes.length === 2) resolve();
          }),
        );
        await write(io.stdout, `${sizes.join(' ')}\n`);
        return { code: 0 };
      }
      case 'late-resize': {
        // The relay registers for resizes only once the exec runs, after any setup wait.
        await new Promise((r) => setTimeout(r, 300));
        const size = await new Promise<string>((resolve) => {
          io.onResize((cols, rows) => resolve(`${cols}x${rows}`));
          setTimeout(() => resolve('none'), 200);
        });
        await write(io.stdout, `${size}\n`);
        return { code: 0 };
      }
      case 'setup':
        // Still setting up: progress, and no start until the client goes.
        io.progress('waiting for container core to be set up');
        await new Promise((r) => io.closed.addEventListener('abort', r, { once: true }));
        return { code: 255 };
      case 'hang':
        io.started();
        await new Promise((r) => io.closed.addEventListener('abort', r, { once: true }));
        return { code: 255 };
      default:
        await write(io.stdout, `${JSON.stringify(hello)}\n`);
        return { code: 0 };
    }
  };
}
const backpressure: number[] = [];

function makeConfig(gateway: Record<string, unknown> = {}, auth: Record<string, unknown> = { sshKeys: [alice.line] }) {
  return Config.parse({
    containers: { core: { image: 'debian:12' } },
    users: { core: { container: 'core', auth } },
    gateway,
  });
}

describe('ssh/gateway', () => {
  let hostKey: HostKey;
  let gateway: Gateway | undefined;
  let port = 0;
  let logs: Record<string, unknown>[] = [];
  let seen: Seen[] = [];
  let config: Config;
  const clients: InstanceType<typeof Client>[] = [];

  beforeAll(() => {
    const text = generateHostKey();
    const parsed = utils.parseKey(text) as ParsedKey;
    hostKey = { path: '/dev/null', privateKey: text, type: parsed.type, fingerprint: 'SHA256:test', publicKey: '', created: false };
  });
  afterEach(async () => {
    for (const c of clients.splice(0)) c.end();
    await gateway?.close();
    gateway = undefined;
  });

  async function start(cfg: Config = makeConfig(), failureDelayMs = 50) {
    config = cfg;
    // This gateway's own arrays: a connection of the last test may still be closing.
    const mine: Record<string, unknown>[] = [];
    logs = mine;
    seen = [];
    const sink = new Writable({
      write(chunk: Buffer, _e, done) {
        for (const line of chunk.toString().split('\n')) if (line) mine.push(JSON.parse(line) as Record<string, unknown>);
        done();
      },
    });
    gateway = startGateway({
      hostKey,
      config: () => config,
      sessions: fakeHandler(seen),
      log: createLogger({ level: 'debug', stream: sink, pretty: false }),
      failureDelayMs,
      rootKeysPath: '/nonexistent',
    });
    expect(await gateway.listen(['127.0.0.1:0'])).toEqual([]);
    port = Number(gateway.addresses()[0]!.split(':')[1]);
  }

  function connect(options: Partial<ConnectConfig> = {}): Promise<InstanceType<typeof Client>> {
    const client = new Client();
    clients.push(client);
    return new Promise((resolve, reject) => {
      client.once('ready', () => resolve(client));
      client.once('error', reject);
      client.connect({ host: '127.0.0.1', port, username: 'core', privateKey: alice.privateKey, ...options });
    });
  }

  interface Run {
    stdout: string;
    stderr: string;
    code: number | undefined;
  }
  function exec(
    client: InstanceType<typeof Client>,
    command: string,
    options: ssh2.ExecOptions = {},
    input?: Buffer | string,
  ): Promise<Run> {
    return new Promise((resolve, reject) => {
      client.exec(command, options, (err, stream) => {
        if (err) return reject(err);
        collect(stream, resolve);
        if (input !== undefined) stream.end(input);
      });
    });
  }
  function collect(stream: ClientChannel, resolve: (r: Run) => void) {
    let stdout = '';
    let stderr = '';
    let code: number | undefined;
    stream.on('data', (d: Buffer) => (stdout += d.toString()));
    stream.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    stream.on('exit', (c: number | null) => (code = c ?? undefined));
    stream.on('close', () => resolve({ stdout, stderr, code }));
  }

  it('runs exec requests through the handler: user, exit codes, stdout and stderr apart', async () => {
    await start();
    const client = await connect();
    expect(await exec(client, 'whoami')).toEqual({ stdout: 'core\n', stderr: '', code: 0 });
    expect((await exec(client, 'exit 42')).code).toBe(42);
    expect((await exec(client, 'exit 1')).code).toBe(1);
    expect(await exec(client, 'streams')).toEqual({ stdout: 'to stdout\n', stderr: 'to stderr\n', code: 3 });
    expect(logs).toContainEqual(expect.objectContaining({ msg: 'SSH login', user: 'core', method: 'publickey' }));
  });

  it("passes stdin through and ends it at the client's EOF", async () => {
    await start();
    const client = await connect();
    expect(await exec(client, 'cat count', {}, 'hi\n')).toMatchObject({ stdout: '3\n', code: 0 });
    const big = Buffer.alloc(8 * 1024 * 1024, 'y');
    expect(await exec(client, 'cat count', {}, big)).toMatchObject({ stdout: `${big.length}\n`, code: 0 });
  });

  it('holds the session back while the client does not read (backpressure), losing nothing', async () => {
    await start();
    const client = await connect();
    backpressure.length = 0;
    const total = 24 * 1024 * 1024;
    const received = await new Promise<number>((resolve, reject) => {
      client.exec(`big ${total}`, (err, stream) => {
        if (err) return reject(err);
        let bytes = 0;
        stream.pause();
        setTimeout(() => stream.resume(), 500);
        stream.on('data', (d: Buffer) => (bytes += d.length));
        stream.on('close', () => resolve(bytes));
      });
    });
    expect(received).toBe(total);
    expect(backpressure[0]).toBeGreaterThan(0);
  });

  it('builds the hello from pty-req and env (allowlisted), with the connection in SSH_CONNECTION', async () => {
    await start();
    const client = await connect();
    const run = await exec(client, 'hello', {
      pty: { term: 'xterm-256color', cols: 120, rows: 40 },
      env: { LANG: 'C.UTF-8', LD_PRELOAD: '/evil.so', NODE_OPTIONS: '--x' },
    });
    const hello = JSON.parse(run.stdout.trim()) as Hello;
    expect(hello).toMatchObject({ v: 1, tty: true, cols: 120, rows: 40, command: 'hello' });
    expect(hello.env).toMatchObject({ TERM: 'xterm-256color', LANG: 'C.UTF-8' });
    expect(hello.env.SSH_CONNECTION).toMatch(new RegExp(`^127\\.0\\.0\\.1 \\d+ 127\\.0\\.0\\.1 ${port}$`));
    expect(Object.keys(hello.env).sort()).toEqual(['LANG', 'SSH_CLIENT', 'SSH_CONNECTION', 'TERM']);
  });

  it("sends a shell request without a command, and sftp as the container's sftp-server without a tty", async () => {
    await start();
    const client = await connect();
    const shell = await new Promise<Run>((resolve, reject) =>
      client.shell(false, (err, stream) => {
        if (err) return reject(err);
        collect(stream, resolve);
        stream.end();
      }),
    );
    expect(JSON.parse(shell.stdout.trim())).not.toHaveProperty('command');
    await new Promise<void>((resolve, reject) =>
      client.subsys('sftp', (err, stream) => {
        if (err) return reject(err);
        stream.on('close', () => resolve());
        stream.resume();
        stream.end();
      }),
    );
    expect(seen.at(-1)?.hello).toMatchObject({ command: SFTP_COMMAND, tty: false });
  });

  it('forwards window changes to the session', async () => {
    await start();
    const client = await connect();
    const run = await new Promise<Run>((resolve, reject) =>
      client.exec('resize', { pty: { cols: 80, rows: 24 } }, (err, stream) => {
        if (err) return reject(err);
        collect(stream, resolve);
        setTimeout(() => stream.setWindow(30, 100, 0, 0), 100);
        setTimeout(() => stream.setWindow(50, 132, 0, 0), 200);
      }),
    );
    expect(run.stdout.trim()).toBe('100x30 132x50');
  });

  it('hands a resize made during the setup wait to the session once it registers', async () => {
    await start();
    const client = await connect();
    const run = await new Promise<Run>((resolve, reject) =>
      client.exec('late-resize', { pty: { cols: 80, rows: 24 } }, (err, stream) => {
        if (err) return reject(err);
        collect(stream, resolve);
        setTimeout(() => stream.setWindow(33, 99, 0, 0), 50);
      }),
    );
    expect(run.stdout.trim()).toBe('99x33');
  });

  it('shows setup progress on stderr, or redrawn in place on a terminal, then the output', async () => {
    await start();
    const client = await connect();
    expect(await exec(client, 'progress')).toEqual({ stdout: 'ran\n', stderr: 'pulling debian: 10%\npulling debian: 60%\n', code: 0 });
    const tty = await exec(client, 'progress', { pty: { cols: 80, rows: 24 } });
    // (The handler's own "\n" stays as it is: translating it is the container's pty's job.)
    expect(tty.stdout).toBe('\r\u001b[2Kpulling debian: 10%\r\u001b[2Kpulling debian: 60%\r\u001b[2Kran\n');
  });

  it('shows why a session cannot start, and exits 1', async () => {
    await start();
    const client = await connect();
    expect(await exec(client, 'fail')).toEqual({
      stdout: '',
      stderr: 'building core: step 1/2\nskiff-core: setup failed: build step 2 failed\n',
      code: 1,
    });
  });

  it('shows a generic message for an error that is not one of ours, and the operator the whole of it', async () => {
    await start();
    const client = await connect();
    expect(await exec(client, 'crash')).toEqual({ stdout: '', stderr: `skiff-core: ${INTERNAL_ERROR_MESSAGE}\n`, code: 1 });
    const logged = logs.filter((l) => l['msg'] === 'Session failed');
    expect(logged).toHaveLength(1);
    // Told apart from other logins of the same user by the connection's and channel's ids.
    expect(logged[0]).toMatchObject({
      user: 'core',
      source: '127.0.0.1',
      conn: expect.stringMatching(/^[0-9a-f]{8}$/),
      channel: expect.stringMatching(/^[0-9a-f]{6}$/),
    });
    expect(JSON.stringify(logged[0])).toContain('reading \\"Id\\") at /usr/lib/skiff-core/skiff-core.mjs:123');
  });

  it('tells the session when the client goes away', async () => {
    await start();
    const client = await connect();
    client.exec('hang', () => undefined);
    await expect.poll(() => seen.length).toBe(1);
    expect(seen[0]!.closed.aborted).toBe(false);
    client.end();
    await expect.poll(() => seen[0]!.closed.aborted).toBe(true);
  });

  it('lets ^C on a terminal abandon a setup wait (exit 130); the wait sees the client go', async () => {
    await start();
    const client = await connect();
    const run = await new Promise<Run>((resolve, reject) =>
      client.exec('setup', { pty: { cols: 80, rows: 24 } }, (err, stream) => {
        if (err) return reject(err);
        collect(stream, resolve);
        stream.once('data', () => stream.write('\u0003'));
      }),
    );
    expect(run).toEqual({
      stdout: '\r\u001b[2Kwaiting for container core to be set up\r\nskiff-core: stopped waiting; setup continues in the background.\r\n',
      stderr: '',
      code: 130,
    });
    await expect.poll(() => seen[0]!.closed.aborted).toBe(true);
  });

  it('on close, disconnects its clients and waits for their sessions to end', async () => {
    await start();
    const client = await connect();
    const closedByServer = new Promise<void>((resolve) => client.once('close', () => resolve()));
    client.exec('hang', () => undefined);
    await expect.poll(() => seen.length).toBe(1);
    await gateway!.close();
    expect(seen[0]!.closed.aborted).toBe(true);
    await closedByServer;
    gateway = undefined;
  });

  it('caps sessions per user, saying so on stderr', async () => {
    await start(makeConfig({ maxSessionsPerUser: 1 }));
    const client = await connect();
    client.exec('hang', () => undefined);
    await expect.poll(() => seen.length).toBe(1);
    const refused = await exec(client, 'whoami');
    expect(refused).toEqual({
      stdout: '',
      stderr: expect.stringMatching(/^skiff-core: core already has 1 sessions, the most allowed/),
      code: 1,
    });
    const other = await connect();
    expect((await exec(other, 'whoami')).code).toBe(1);
    client.end();
    await expect.poll(() => seen[0]!.closed.aborted).toBe(true);
    await expect.poll(async () => (await exec(other, 'whoami')).stdout).toBe('core\n');
  });

  it('refuses port, socket and remote forwarding with a reason', async () => {
    await start();
    // strictVendor off: ssh2's client only asks OpenSSH servers for socket forwarding.
    const client = await connect({ strictVendor: false });
    const local = await new Promise<Error>((resolve) => client.forwardOut('127.0.0.1', 1234, '127.0.0.1', 22, (err) => resolve(err!)));
    expect(local.message).toContain('port forwarding is not available through the skiff-core gateway');
    const socket = await new Promise<Error>((resolve) =>
      client.openssh_forwardOutStreamLocal('/var/run/docker.sock', (err) => resolve(err!)),
    );
    expect(socket.message).toContain('socket forwarding is not available');
    const remote = await new Promise<Error | undefined>((resolve) => client.forwardIn('127.0.0.1', 0, (err) => resolve(err)));
    expect(remote).toBeInstanceOf(Error);
    expect(logs.filter((l) => String(l.msg).startsWith('Refused')).map((l) => l.msg)).toEqual([
      'Refused TCP forwarding: not available through the gateway',
      'Refused socket forwarding: not available through the gateway',
      'Refused remote forwarding: not available through the gateway',
    ]);
  });

  /** Tries to log in; returns what the server answered to each attempt and how long it took. */
  async function failedLogin(options: Partial<ConnectConfig>): Promise<{ answers: string[]; ms: number; error: string }> {
    const answers: string[] = [];
    const started = Date.now();
    const tries: ssh2.AuthenticationType[] = [];
    const client = new Client();
    clients.push(client);
    const error = await new Promise<string>((resolve) => {
      client.once('ready', () => resolve('logged in'));
      client.once('error', (err: Error) => {
        // Like OpenSSH, give up and disconnect.
        client.end();
        resolve(err.message);
      });
      client.connect({
        host: '127.0.0.1',
        port,
        username: 'core',
        ...options,
        authHandler: (methodsLeft, _partial, next) => {
          if (methodsLeft) answers.push(methodsLeft.join(','));
          const method = [options.privateKey ? 'publickey' : undefined, options.password !== undefined ? 'password' : undefined].find(
            (m) => m && !tries.includes(m as ssh2.AuthenticationType),
          ) as ssh2.AuthenticationType | undefined;
          if (!method) return next(false as unknown as ssh2.AuthenticationType);
          tries.push(method);
          if (method === 'publickey')
            return next({
              type: 'publickey',
              username: options.username ?? 'core',
              key: options.privateKey!,
            } as unknown as ssh2.AuthenticationType);
          return next({
            type: 'password',
            username: options.username ?? 'core',
            password: options.password!,
          } as unknown as ssh2.AuthenticationType);
        },
      });
    });
    return { answers, ms: Date.now() - started, error };
  }

  it('answers a wrong key, an unknown user and a password the same way, after the same delay', async () => {
    await start(makeConfig({ maxAuthFailures: 100 }), 300);
    const wrongKey = await failedLogin({ privateKey: stranger.privateKey });
    const unknownUser = await failedLogin({ username: 'mallory', privateKey: alice.privateKey });
    const password = await failedLogin({ password: 'guess' });
    for (const attempt of [wrongKey, unknownUser, password]) {
      expect(attempt.error).toBe('All configured authentication methods failed');
      expect(attempt.answers).toEqual(['publickey']);
      expect(attempt.ms).toBeGreaterThanOrEqual(290);
    }
    expect(logs.some((l) => JSON.stringify(l).includes('guess'))).toBe(false);
  });

  it('takes a configured password (and advertises password for every user name then)', async () => {
    await start(makeConfig({}, { password: 'open sesame' }));
    const client = await connect({ privateKey: undefined, password: 'open sesame' });
    expect((await exec(client, 'whoami')).stdout).toBe('core\n');
    const unknown = await failedLogin({ username: 'nobody', password: 'open sesame' });
    expect(unknown.answers).toEqual(['publickey,password']);
    expect(logs.some((l) => JSON.stringify(l).includes('sesame'))).toBe(false);
  });

  it('refuses a source after too many failed logins in a minute, and says so in the log', async () => {
    await start(makeConfig({ maxAuthFailures: 2 }));
    await failedLogin({ privateKey: stranger.privateKey });
    await failedLogin({ privateKey: stranger.privateKey });
    await expect.poll(() => logs.filter((l) => l.msg === 'SSH login failed').length).toBe(2);
    const refused = await failedLogin({ privateKey: alice.privateKey });
    expect(refused.error).not.toBe('logged in');
    expect(logs).toContainEqual(
      expect.objectContaining({
        level: 'warn',
        source: '127.0.0.1',
        msg: 'Refusing SSH connections from this address: too many failed logins in the last minute',
      }),
    );
  });

  it('closes connections that do not authenticate in time, and idle ones', async () => {
    await start(makeConfig({ authTimeoutSec: 1, idleTimeoutSec: 1 }));
    const started = Date.now();
    await new Promise<void>((resolve) => {
      const socket = tcpConnect(port, '127.0.0.1');
      socket.on('error', () => undefined);
      socket.on('close', () => resolve());
      socket.resume();
    });
    expect(Date.now() - started).toBeLessThan(3000);
    expect(logs).toContainEqual(expect.objectContaining({ msg: 'Closed an SSH connection that did not authenticate in time' }));

    const client = await connect();
    client.exec('hang', () => undefined);
    await expect.poll(() => seen[0]?.closed.aborted, { timeout: 4000 }).toBe(true);
    expect(logs).toContainEqual(expect.objectContaining({ msg: 'Closed an idle SSH connection', user: 'core' }));
  });

  it('follows a changed listen set and reports addresses it cannot take', async () => {
    await start();
    const taken = gateway!.addresses()[0]!;
    const second = await import('node:net').then((net) => net.createServer().listen(0, '127.0.0.1'));
    await new Promise((r) => second.once('listening', r));
    const busy = `127.0.0.1:${(second.address() as { port: number }).port}`;
    const failures = await gateway!.listen(['127.0.0.1:0', busy]);
    expect(failures).toEqual([{ address: busy, reason: expect.stringContaining('EADDRINUSE') }]);
    expect(gateway!.addresses()).toEqual([taken]);
    second.close();
    // Closing a listener leaves its connections be, and does not wait for them.
    const client = await connect();
    await gateway!.listen([]);
    expect(gateway!.addresses()).toEqual([]);
    expect((await exec(client, 'whoami')).stdout).toBe('core\n');
  });
});

describe('pre-authentication early drop (MaxStartups)', () => {
  it('keeps every connection below the start, drops at random between, and all at full', async () => {
    const { earlyDrop, PREAUTH } = await import('../../../src/ssh/gateway.js');
    expect(earlyDrop(PREAUTH.start - 1, () => 0)).toBe(false);
    expect(earlyDrop(PREAUTH.start, () => PREAUTH.rate - 0.01)).toBe(true);
    expect(earlyDrop(PREAUTH.start, () => PREAUTH.rate + 0.01)).toBe(false);
    expect(earlyDrop(PREAUTH.full, () => 0.999)).toBe(true);
    // Halfway, the chance is halfway between the rate and 1.
    const mid = (PREAUTH.start + PREAUTH.full) / 2;
    expect(earlyDrop(mid, () => (PREAUTH.rate + 1) / 2 - 0.01)).toBe(true);
    expect(earlyDrop(mid, () => (PREAUTH.rate + 1) / 2 + 0.01)).toBe(false);
  });
});
