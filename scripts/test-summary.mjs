// Prints one closing line for the whole test run ("N passed, N failed"), from the JSON reports
// the unit and integration runs write: CI and people read one number instead of two tables.
import { readFile } from 'node:fs/promises';

let passed = 0;
let failed = 0;
let skipped = 0;
for (const name of ['unit', 'integration']) {
  const report = JSON.parse(await readFile(new URL(`../.test-results/${name}.json`, import.meta.url), 'utf8'));
  passed += report.numPassedTests;
  failed += report.numFailedTests;
  skipped += report.numPendingTests + (report.numTodoTests ?? 0);
}
console.log(`${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ''}`);
process.exitCode = failed > 0 ? 1 : 0;
