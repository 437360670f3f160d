// Handing an exec's engine connection to the login client, and what lets a later daemon take the
// session back. The client holds one exec's stream only (the engine never reads API calls on a
// hijacked connection); the daemon keeps the control: resize, signals, the exit status, and
// killing the session's processes when the client goes away.
//
// Crash-only: each handed-off session has a record in RUN_DIR/sessions/ from before the hand-off
// until its end. A new daemon gives clients a moment to come back with their token (an HMAC of
// user and exec id under a key kept in RUN_DIR), then ends the sessions nobody claimed.
import { spawn, type ChildProcess } from 'node:child_process';
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { mkdir, open, readdir, readFile, rm } from 'node:fs/promises';
import type { Socket } from 'node:net';
import { join } from 'node:path';
import type { Duplex } from 'node:stream';
import { stopReading } from '../engine/socket-reading.js';
import { writeFileAtomic } from '../fs/atomic.js';
import type { AgentRequest, AgentSocket } from './agent.js';

export interface SessionRecord {
  execId: string;
  user: string;
  containerId: string;
  container: string;
  tty: boolean;
  /** The session's forwarded agent socket, removed when the session ends. */
  agent?: AgentSocket;
}

export interface SessionRecords {
  token(user: string, execId: string): string;
  verify(user: string, execId: string, token: string): boolean;
  save(record: SessionRecord): Promise<void>;
  get(execId: string): Promise<SessionRecord | undefined>;
  remove(execId: string): Promise<void>;
  list(): Promise<SessionRecord[]>;
}

const EXEC_ID = /^[0-9a-f]{64}$/;

/** The key survives daemon restarts (RUN_DIR is a tmpfs: a reboot ends sessions anyway). */
async function sessionKey(runDir: string): Promise<Buffer> {
  const path = join(runDir, 'session.key');
  await mkdir(runDir, { recursive: true, mode: 0o755 });
  try {
    const handle = await open(path, 'wx', 0o600);
    const key = randomBytes(32);
    await handle.writeFile(key);
    await handle.sync();
    await handle.close();
    return key;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
  }
  const key = await readFile(path);
  // A key cut short by a crash while it was written: start over (no session can hold a token of it).
  if (key.length === 32) return key;
  await rm(path, { force: true });
  return sessionKey(runDir);
}

export async function openSessionRecords(runDir: string): Promise<SessionRecords> {
  const key = await sessionKey(runDir);
  const dir = join(runDir, 'sessions');
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const token = (user: string, execId: string) => createHmac('sha256', key).update(`${user}\0${execId}`).digest('hex');
  const file = (execId: string) => join(dir, `${execId}.json`);

  async function get(execId: string): Promise<SessionRecord | undefined> {
    if (!EXEC_ID.test(execId)) return undefined;
    try {
      const r = JSON.parse(await readFile(file(execId), 'utf8')) as SessionRecord;
      return r.execId === execId && typeof r.user === 'string' && typeof r.containerId === 'string' ? r : undefined;
    } catch {
      return undefined;
    }
  }

  return {
    token,
    verify(user, execId, given) {
      const want = Buffer.from(token(user, execId));
      const got = Buffer.from(given);
      return got.length === want.length && timingSafeEqual(got, want);
    },
    // On every login: no fsync, a power cut ends the sessions with their records.
    save: (record) => writeFileAtomic(file(record.execId), JSON.stringify(record), { mode: 0o600, durable: false }),
    get,
    remove: (execId) => rm(file(execId), { force: true }),
    async list() {
      const names = await readdir(dir).catch(() => [] as string[]);
      // Temporary files of a write in progress (or cut by a crash) end in a random suffix.
      const records = await Promise.all(names.filter((n) => n.endsWith('.json')).map((n) => get(n.slice(0, -5))));
      return records.filter((r): r is SessionRecord => r !== undefined);
    },
  };
}

/**
 * Stops the daemon reading `stream` and returns what it had read but not consumed. Draining the
 * buffer restarts reads; stopping them again in the same synchronous step leaves every later
 * byte in the kernel, for the client.
 */
export function detachStream(stream: Duplex): Buffer {
  stream.removeAllListeners('data');
  stopReading(stream);
  const chunks: Buffer[] = [];
  for (let chunk = stream.read() as Buffer | null; chunk !== null; chunk = stream.read() as Buffer | null) chunks.push(chunk);
  stopReading(stream);
  return Buffer.concat(chunks);
}

export interface HandoffHelper {
  /** Sends `engine`'s descriptor to the client on `client` (launcher/handoff.c). */
  pass(client: Socket, engine: Duplex): Promise<void>;
  /** Has the helper make the agent socket in the container and send it to the client. */
  agent(client: Socket, request: AgentRequest): Promise<void>;
  close(): void;
}

const PASS_TIMEOUT_MS = 5000;

/**
 * One helper process for all hand-offs, started on first use and again if it dies: starting a
 * process per login cost 12 ms of the daemon's time, a message on the channel costs a fraction.
 */
export function createHandoffHelper(path: string): HandoffHelper {
  let child: ChildProcess | undefined;
  let nextId = 1;
  const pending = new Map<number, { resolve: () => void; reject: (err: Error) => void; timer: NodeJS.Timeout }>();

  const settle = (id: number, err?: Error) => {
    const p = pending.get(id);
    if (!p) return;
    pending.delete(id);
    clearTimeout(p.timer);
    if (err) p.reject(err);
    else p.resolve();
  };

  function helper(): ChildProcess {
    if (child && child.connected) return child;
    const started = spawn(path, [], { argv0: 'skiff-core-handoff', stdio: ['ignore', 'ignore', 'inherit', 'ipc'] });
    started.on('message', (m: { id?: unknown; error?: unknown }) => {
      if (typeof m?.id === 'number') settle(m.id, typeof m.error === 'string' ? new Error(m.error) : undefined);
    });
    started.on('error', () => undefined);
    started.once('exit', (code, signal) => {
      if (child === started) child = undefined;
      for (const id of [...pending.keys()]) settle(id, new Error(`the hand-off helper exited (${signal ?? code})`));
    });
    // The daemon's exit must not wait for it; it exits when its channel closes.
    started.unref();
    (started.channel as { unref?(): void } | undefined)?.unref?.();
    child = started;
    return started;
  }

  /** Sends what `send` sends and waits for the helper's answer to `id`. */
  const ask = (id: number, send: (h: ChildProcess, failed: (err: Error | null) => void) => void) =>
    new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => settle(id, new Error('the hand-off helper did not answer')), PASS_TIMEOUT_MS);
      pending.set(id, { resolve, reject, timer });
      send(helper(), (err) => err && settle(id, err));
    });

  return {
    pass(client, engine) {
      const id = nextId++;
      return ask(id, (h, failed) => {
        // The client's socket stays the daemon's too (the control channel); the engine's is
        // closed here once the helper has it.
        h.send({ id, role: 'client' }, client, { keepOpen: true }, failed);
        h.send({ id, role: 'engine' }, engine as Socket, { keepOpen: false }, failed);
      });
    },
    agent(client, request) {
      const clientId = nextId++;
      const id = nextId++;
      return ask(id, (h, failed) => {
        h.send({ id: clientId, role: 'client' }, client, { keepOpen: true }, failed);
        h.send({ id, role: 'agent', client: clientId, ...request }, failed);
      });
    },
    close() {
      child?.kill();
      child = undefined;
    },
  };
}
