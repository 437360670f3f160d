import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
// @ts-expect-error plain ESM script without types
import { lockfileProblems } from '../../../scripts/check-lockfile.mjs';

const SCRIPT = fileURLToPath(new URL('../../../scripts/check-lockfile.mjs', import.meta.url));
const VERSIONLESS = fileURLToPath(new URL('../../fixtures/lockfiles/versionless-optional.json', import.meta.url));
const REPO_LOCK = fileURLToPath(new URL('../../../package-lock.json', import.meta.url));

function run(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [SCRIPT, ...args], (err, stdout, stderr) => resolve({ code: err ? Number(err.code) : 0, stdout, stderr }));
  });
}

describe('scripts/check-lockfile.mjs', () => {
  it('fails on an entry without a version, naming it and the fix', async () => {
    const r = await run(VERSIONLESS);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('"node_modules/vite/node_modules/napi-windows-process-start-time" has no version');
    expect(r.stderr).toContain('rm -rf node_modules package-lock.json && npm install');
  });

  it("passes the project's own lockfile", async () => {
    const r = await run(REPO_LOCK);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
  });

  it('reports malformed versions, old lockfile formats and broken JSON', async () => {
    const lock = JSON.parse(await readFile(VERSIONLESS, 'utf8'));
    expect(lockfileProblems({ ...lock, lockfileVersion: 1 })).toEqual(['lockfileVersion is 1; npm 7 or later writes 2 or 3']);
    lock.packages['node_modules/vite'].version = '';
    expect(lockfileProblems(lock)).toHaveLength(2);
    expect(lockfileProblems({ lockfileVersion: 3, packages: { '': {}, 'node_modules/a': { link: true } } })).toEqual([]);
    const r = await run(SCRIPT); // a file that is not JSON
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('not valid JSON');
  });
});
