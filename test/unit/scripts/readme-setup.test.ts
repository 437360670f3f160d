// The README's set-up is two lines a newcomer copies as they are; .ci/run runs the test one.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';

const readme = readFileSync(new URL('../../../README.md', import.meta.url), 'utf8');
const ciRun = readFileSync(new URL('../../../.ci/run', import.meta.url), 'utf8');

function gettingStartedCommands(): string[] {
  const start = readme.indexOf('## Getting started');
  const end = readme.indexOf('\n## ', start + 1);
  const section = readme.slice(start, end);
  return [...section.matchAll(/```sh\n([\s\S]*?)```/g)].flatMap((m) => m[1]!.split('\n').filter((l) => l.trim() && !l.startsWith('#')));
}

describe('README set-up', () => {
  it('has the main job and the test line as its first two commands, one line each', () => {
    const [main, tests] = gettingStartedCommands();
    expect(main).toBe('npm ci && npm start');
    expect(tests).toBe('npm ci && bash scripts/provision.sh && npm test');
  });

  it('is what .ci/run runs', () => {
    const tests = gettingStartedCommands()[1];
    expect(ciRun).toContain(`TEST_LINE='${tests}'`);
    expect(ciRun).toMatch(/^bash -c "\$TEST_LINE" <\/dev\/null$/m);
    // No fallback that installs something other than the lockfile.
    expect(ciRun).not.toMatch(/npm install\b/);
  });
});
