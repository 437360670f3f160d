// The summary is checked against reports that vitest itself writes for a suite whose set-up
// throws, a file that cannot be imported and an unhandled error, so it keeps up with vitest.
import { execFile } from 'node:child_process';
import { mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const REPO = fileURLToPath(new URL('../../..', import.meta.url));
const VITEST = join(REPO, 'node_modules/vitest/vitest.mjs');
const SUMMARY = join(REPO, 'scripts/test-summary.mjs');

const FILES: Record<string, string> = {
  'passes.test.ts': `import { it, expect } from 'vitest';\nit('one', () => expect(1).toBe(1));\nit('two', () => expect(2).toBe(2));\n`,
  'setup-throws.test.ts': `import { beforeAll, describe, it } from 'vitest';\ndescribe('s', () => {\n  beforeAll(() => { throw new Error('setup boom'); });\n  it('a', () => {});\n  it('b', () => {});\n});\n`,
  'import-fails.test.ts': `import './missing-module.js';\nimport { it } from 'vitest';\nit('c', () => {});\n`,
  'unhandled.test.ts': `import { it } from 'vitest';\nit('d', async () => {\n  setTimeout(() => { throw new Error('unhandled boom'); }, 1);\n  await new Promise((r) => setTimeout(r, 100));\n});\n`,
  'fails.test.ts': `import { it, expect } from 'vitest';\nit('e', () => expect(1).toBe(2));\n`,
};

function run(args: string[], cwd: string): Promise<{ code: number; stdout: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, args, { cwd, timeout: 60_000 }, (err, stdout) => resolve({ code: err ? Number(err.code) : 0, stdout }));
  });
}

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'skt-summary-'));
  await symlink(join(REPO, 'node_modules'), join(dir, 'node_modules'));
  await writeFile(join(dir, 'vitest.config.mjs'), 'export default {};\n');
});
afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

/** vitest on the named files in the scratch folder; returns the summary's exit code and output. */
async function summaryOf(...names: string[]): Promise<{ code: number; stdout: string }> {
  const sub = await mkdtemp(join(dir, 'run-'));
  for (const name of names) await writeFile(join(sub, name), FILES[name]!);
  const report = join(sub, 'report.json');
  const v = await run(
    [VITEST, 'run', '--root', sub, '--config', join(dir, 'vitest.config.mjs'), '--reporter=json', `--outputFile.json=${report}`],
    dir,
  );
  return run([SUMMARY, `unit=${report}:${v.code}`], dir);
}

describe('scripts/test-summary.mjs', () => {
  it('passes a run whose tests all pass', async () => {
    const r = await summaryOf('passes.test.ts');
    expect(r.stdout.trim()).toBe('2 passed, 0 failed');
    expect(r.code).toBe(0);
  }, 60_000);

  it('counts a suite whose set-up throws as failed, naming it, not as skipped', async () => {
    const r = await summaryOf('passes.test.ts', 'setup-throws.test.ts');
    expect(r.stdout).toMatch(/^FAILED unit: .*setup-throws\.test\.ts failed before its tests ran \(2 not run\)/m);
    expect(r.stdout.trim().split('\n').at(-1)).toBe('2 passed, 2 failed');
    expect(r.code).toBe(1);
  }, 60_000);

  it('counts a file that cannot be imported, with the error', async () => {
    const r = await summaryOf('import-fails.test.ts');
    expect(r.stdout).toMatch(/import-fails\.test\.ts failed before its tests ran .*missing-module/);
    expect(r.stdout.trim().split('\n').at(-1)).toBe('0 passed, 1 failed');
    expect(r.code).toBe(1);
  }, 60_000);

  it('fails a run with an unhandled error even though every test passed', async () => {
    const r = await summaryOf('unhandled.test.ts');
    expect(r.stdout).toContain('an unhandled error');
    expect(r.stdout.trim().split('\n').at(-1)).toBe('1 passed, 1 failed');
    expect(r.code).toBe(1);
  }, 60_000);

  it('counts failed tests, and a run that wrote no report', async () => {
    const r = await summaryOf('fails.test.ts', 'passes.test.ts');
    expect(r.stdout.trim()).toBe('2 passed, 1 failed');
    expect(r.code).toBe(1);
    const none = await run([SUMMARY, `integration=${join(dir, 'nowhere.json')}:1`], dir);
    expect(none.stdout).toContain('integration: vitest wrote no report (exit code 1)');
    expect(none.code).toBe(1);
  }, 60_000);
});

describe('scripts/test-summary.mjs --problems', () => {
  it('counts each line of the problems file as a failure, and a missing file as none', async () => {
    const passing = await mkdtemp(join(dir, 'problems-'));
    await writeFile(join(passing, 'passes.test.ts'), FILES['passes.test.ts']!);
    const report = join(passing, 'report.json');
    const v = await run(
      [VITEST, 'run', '--root', passing, '--config', join(dir, 'vitest.config.mjs'), '--reporter=json', `--outputFile.json=${report}`],
      dir,
    );
    const problems = join(passing, 'problems.txt');
    const none = await run([SUMMARY, `--problems=${problems}`, `unit=${report}:${v.code}`], dir);
    expect(none.stdout.trim()).toBe('2 passed, 0 failed');
    await writeFile(problems, 'the run left content in the registry\n');
    const one = await run([SUMMARY, `--problems=${problems}`, `unit=${report}:${v.code}`], dir);
    expect(one.stdout).toContain('FAILED the run left content in the registry');
    expect(one.stdout.trim().split('\n').at(-1)).toBe('2 passed, 1 failed');
    expect(one.code).toBe(1);
  }, 60_000);
});
