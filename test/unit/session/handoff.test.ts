// Records and tokens of handed-off sessions (src/session/handoff.ts): what lets a restarted daemon
// give a session back to its own client and to nobody else.
import { mkdtemp, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openSessionRecords } from '../../../src/session/handoff.js';

const EXEC = 'a'.repeat(64);
const OTHER = 'b'.repeat(64);
let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'skt-handoff-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('session records', () => {
  it('a token is good for its user and exec only, and for the next daemon too', async () => {
    const runDir = join(dir, 'run1');
    const first = await openSessionRecords(runDir);
    const token = first.token('alice', EXEC);
    expect(first.verify('alice', EXEC, token)).toBe(true);
    expect(first.verify('bob', EXEC, token)).toBe(false);
    expect(first.verify('alice', OTHER, token)).toBe(false);
    expect(
      first.verify(
        'alice',
        EXEC,
        token.replace(/.$/, (c) => (c === '0' ? '1' : '0')),
      ),
    ).toBe(false);
    expect(first.verify('alice', EXEC, '')).toBe(false);
    // A restarted daemon reads the same key.
    const second = await openSessionRecords(runDir);
    expect(second.verify('alice', EXEC, token)).toBe(true);
    expect((await stat(join(runDir, 'session.key'))).mode & 0o777).toBe(0o600);
  });

  it('a key cut short by a crash is replaced (old tokens stop working)', async () => {
    const runDir = join(dir, 'run2');
    const before = await openSessionRecords(runDir);
    const token = before.token('alice', EXEC);
    await writeFile(join(runDir, 'session.key'), Buffer.alloc(5));
    const after = await openSessionRecords(runDir);
    expect(after.verify('alice', EXEC, token)).toBe(false);
  });

  it('saves, lists and removes records; ignores names that are not exec ids', async () => {
    const runDir = join(dir, 'run3');
    const records = await openSessionRecords(runDir);
    const record = { execId: EXEC, user: 'alice', containerId: 'c'.repeat(64), container: 'core', tty: true };
    await records.save(record);
    await writeFile(join(runDir, 'sessions', 'not-an-id.json'), '{}');
    await writeFile(join(runDir, 'sessions', `${OTHER}.json`), 'garbage');
    expect(await records.list()).toEqual([record]);
    expect(await records.get(EXEC)).toEqual(record);
    expect(await records.get('../session')).toBeUndefined();
    await records.remove(EXEC);
    expect(await records.list()).toEqual([]);
    expect((await readdir(join(runDir, 'sessions'))).filter((n) => n.startsWith('.'))).toEqual([]);
  });
});
