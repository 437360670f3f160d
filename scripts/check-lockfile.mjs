// Fails when package-lock.json holds an entry `npm ci` cannot install. npm 11 can write an
// optional dependency the registry did not serve as an entry with no version; `npm ci` then stops
// with a bare "Invalid Version:", which names neither the entry nor the fix.
//
//   node scripts/check-lockfile.mjs [LOCKFILE]     (default: the checkout's package-lock.json)
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/** The problems of a parsed lockfile, one sentence each; empty when `npm ci` can use it. */
export function lockfileProblems(lock) {
  if (typeof lock !== 'object' || lock === null) return ['it is not a JSON object'];
  if (!(lock.lockfileVersion >= 2)) return [`lockfileVersion is ${lock.lockfileVersion}; npm 7 or later writes 2 or 3`];
  if (typeof lock.packages !== 'object' || lock.packages === null) return ['it has no "packages" section'];
  const problems = [];
  for (const [path, entry] of Object.entries(lock.packages)) {
    if (path === '' || entry?.link === true) continue; // the project itself; workspace links
    if (typeof entry?.version !== 'string' || !/^\d+\.\d+\.\d+(?:[-+].*)?$/.test(entry.version)) {
      problems.push(`"${path}" has ${entry?.version === undefined ? 'no version' : `the version ${JSON.stringify(entry.version)}`}`);
    }
  }
  return problems;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const file = process.argv[2] ?? fileURLToPath(new URL('../package-lock.json', import.meta.url));
  let problems;
  try {
    problems = lockfileProblems(JSON.parse(readFileSync(file, 'utf8')));
  } catch (err) {
    problems = [err instanceof SyntaxError ? `it is not valid JSON: ${err.message}` : err.message];
  }
  if (problems.length) {
    process.stderr.write(
      `${file}: npm ci cannot install from this lockfile:\n${problems.map((p) => `  - ${p}\n`).join('')}` +
        'Regenerate it from scratch and commit the result: rm -rf node_modules package-lock.json && npm install\n',
    );
    process.exit(1);
  }
  process.stdout.write(`${file}: ${Object.keys(JSON.parse(readFileSync(file, 'utf8')).packages).length - 1} entries, all installable\n`);
}
