// The closing line of `npm test` ("N passed, N failed") from the JSON reports vitest writes, plus
// a line for each failure that is not a failed test: a file whose set-up (an import, beforeAll)
// threw reports its tests as skipped, and an unhandled error fails a run whose tests all passed.
// Either counts as failed here, so the line can never read "0 failed" over a suite that never ran.
//
//   node scripts/test-summary.mjs [--problems=FILE] NAME=REPORT.json:EXIT_CODE ...
//
// FILE, when it exists, holds one failure a line found outside any test (a global teardown's
// check): each counts as failed.
import { readFileSync } from 'node:fs';
import { relative } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * runs: [{ name, report (parsed JSON, or undefined when none was written), exitCode }].
 * Returns { passed, failed, skipped, problems: string[] }.
 */
export function summarize(runs) {
  let passed = 0;
  let failed = 0;
  let skipped = 0;
  const problems = [];
  for (const { name, report, exitCode } of runs) {
    if (!report) {
      failed += 1;
      problems.push(`${name}: vitest wrote no report (exit code ${exitCode}); its output above says why`);
      continue;
    }
    let explained = 0;
    for (const file of report.testResults ?? []) {
      const tests = file.assertionResults ?? [];
      const failedHere = tests.filter((t) => t.status === 'failed').length;
      const notRun = tests.filter((t) => t.status !== 'passed' && t.status !== 'failed').length;
      passed += tests.filter((t) => t.status === 'passed').length;
      failed += failedHere;
      explained += failedHere;
      if (file.status === 'failed' && failedHere === 0) {
        // The file failed outside any test: its tests never ran, so none of them passed.
        const lost = Math.max(1, notRun);
        failed += lost;
        explained += lost;
        const why = String(file.message ?? '').split('\n')[0] || 'its set-up (beforeAll/beforeEach/an import) threw';
        problems.push(`${name}: ${relative(process.cwd(), file.name)} failed before its tests ran (${lost} not run): ${why}`);
      } else {
        skipped += notRun;
      }
    }
    if ((report.success === false || exitCode !== 0) && explained === 0) {
      failed += 1;
      problems.push(`${name}: vitest failed (exit code ${exitCode}) with every test passing: an unhandled error, printed above`);
    }
  }
  return { passed, failed, skipped, problems };
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const args = process.argv.slice(2);
  const problemsArg = args.find((a) => a.startsWith('--problems='));
  const runs = args
    .filter((a) => a !== problemsArg)
    .map((arg) => {
      const m = /^([^=]+)=(.+):(-?\d+)$/.exec(arg);
      if (!m) throw new Error(`test-summary: expected NAME=REPORT.json:EXIT_CODE, got "${arg}"`);
      let report;
      try {
        report = JSON.parse(readFileSync(m[2], 'utf8'));
      } catch {
        report = undefined;
      }
      return { name: m[1], report, exitCode: Number(m[3]) };
    });
  const { passed, failed: failedTests, skipped, problems } = summarize(runs);
  let failed = failedTests;
  if (problemsArg) {
    let extra = [];
    try {
      extra = readFileSync(problemsArg.slice('--problems='.length), 'utf8').split('\n').filter(Boolean);
    } catch {
      // no file: nothing failed outside the tests
    }
    failed += extra.length;
    problems.push(...extra);
  }
  for (const p of problems) console.log(`FAILED ${p}`);
  console.log(`${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ''}`);
  process.exitCode = failed > 0 ? 1 : 0;
}
