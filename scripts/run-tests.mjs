// `npm test` after the type check and the build: the unit tests, then the integration tests
// against the real engine (both run even when one fails, so one run shows everything), then one
// closing line for the whole run. Exits non-zero when anything failed.
import { spawnSync } from 'node:child_process';
import { mkdirSync, rmSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const results = `${root}.test-results`;
mkdirSync(results, { recursive: true });
const vitest = `${root}node_modules/vitest/vitest.mjs`;
// Failures found outside any test (the integration teardown's registry check) land here.
const problems = `${results}/problems.txt`;
rmSync(problems, { force: true });
const runs = [];
for (const project of ['unit', 'integration']) {
  const report = `${results}/${project}.json`;
  rmSync(report, { force: true }); // a stale report must not stand in for a run that wrote none
  const r = spawnSync(
    process.execPath,
    [vitest, 'run', '--project', project, '--reporter=default', '--reporter=json', `--outputFile.json=${report}`, ...process.argv.slice(2)],
    { cwd: root, stdio: 'inherit' },
  );
  runs.push(`${project}=${report}:${r.status ?? 1}`);
}
const summary = spawnSync(process.execPath, [`${root}scripts/test-summary.mjs`, `--problems=${problems}`, ...runs], {
  cwd: root,
  stdio: 'inherit',
});
process.exit(summary.status ?? 1);
