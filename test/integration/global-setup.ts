// vitest globalSetup for the `integration` project: make sure the real Docker engine and the
// base images from scripts/provision.sh are there before any integration test runs.
//
// - Engine unreachable or base images missing: fail the run with a message saying what to do.
// - Same, but SKIFF_CORE_SKIP_INTEGRATION=1: print a loud notice and provide the skip reason to
//   the tests (`inject('skiffIntegrationSkip')`), which use
//   `describe.skipIf(integrationSkipReason())` so that they are reported as skipped, not passed.
import { appendFile, mkdir } from 'node:fs/promises';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { TestProject } from 'vitest/node';
import Docker from 'dockerode';
import { BASE_IMAGES, PROVISION_COMMAND, SKIP_ENV, TEST_REGISTRY, dockerStatus, engineAddress } from './helpers/engine.js';
import { collectRegistryGarbage, registryFootprint } from './helpers/registry.js';

const PING_TIMEOUT_MS = 10_000;
/** Failures found outside any test; scripts/run-tests.mjs hands them to the summary. */
const PROBLEMS_FILE = fileURLToPath(new URL('../../.test-results/problems.txt', import.meta.url));

function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    promise,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what}: no answer within ${ms} ms`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

function banner(lines: string[]): string {
  const rule = '!'.repeat(78);
  return ['', rule, ...lines.map((l) => `!! ${l}`), rule, ''].join('\n');
}

/** Returns a description of what is missing, or undefined when the engine is ready. */
async function checkEngine(docker: Docker): Promise<{ problem: string; fix: string } | undefined> {
  const where = engineAddress();
  try {
    await withTimeout(docker.ping(), PING_TIMEOUT_MS, 'GET /_ping');
  } catch (err) {
    return {
      problem: `The Docker engine at ${where} is unreachable (${errorMessage(err)}).`,
      fix: `Run \`${PROVISION_COMMAND}\` as root (installs and starts dockerd, the test registry and the base images) or start dockerd yourself`,
    };
  }

  const missing: string[] = [];
  for (const image of BASE_IMAGES) {
    try {
      await withTimeout(docker.getImage(image).inspect(), PING_TIMEOUT_MS, `inspect ${image}`);
    } catch (err) {
      if (dockerStatus(err) === 404) missing.push(image);
      else throw new Error(`Checking base image ${image} on ${where} failed: ${errorMessage(err)}`, { cause: err });
    }
  }
  if (missing.length > 0) {
    return {
      problem: `Base image${missing.length > 1 ? 's' : ''} ${missing.join(', ')} missing on the engine at ${where}.`,
      fix: `Run \`${PROVISION_COMMAND}\` as root to build ${missing.length > 1 ? 'them' : 'it'}`,
    };
  }
  return undefined;
}

async function registryAnswers(): Promise<boolean> {
  try {
    const res = await fetch(`http://${TEST_REGISTRY}/v2/`, { signal: AbortSignal.timeout(5_000) });
    return res.ok;
  } catch {
    return false;
  }
}

/**
 * After the run: the registry's garbage collection, then a check that the run left nothing
 * behind in it (each test file removes what it pushed, see cleanupByPrefix).
 */
async function registryTeardown(before: Awaited<ReturnType<typeof registryFootprint>>): Promise<void> {
  if (!before) return;
  await collectRegistryGarbage(TEST_REGISTRY);
  const after = await registryFootprint(TEST_REGISTRY);
  if (!after) return;
  const added = after.repositories.filter((r) => !before.repositories.includes(r));
  console.log(`[integration] registry ${TEST_REGISTRY}: ${before.bytes} bytes before the run, ${after.bytes} after`);
  if (added.length > 0 || after.bytes > before.bytes) {
    // vitest only logs an error thrown here; the file makes `npm test`'s summary count it.
    const problem =
      `the integration run left content in the registry at ${TEST_REGISTRY}: ${after.bytes - before.bytes} more bytes` +
      `${added.length ? `, repositories ${added.join(', ')}` : ''}; a test pushes without removing it (cleanupByPrefix does)`;
    console.error(`[integration] ${problem}`);
    await mkdir(dirname(PROBLEMS_FILE), { recursive: true });
    await appendFile(PROBLEMS_FILE, `${problem}\n`);
  }
}

export default async function setup(project: TestProject): Promise<(() => Promise<void>) | void> {
  const skipRequested = process.env[SKIP_ENV] === '1';
  const docker = new Docker({ timeout: PING_TIMEOUT_MS });
  const trouble = await checkEngine(docker);

  if (trouble === undefined) {
    project.provide('skiffIntegrationSkip', '');
    if (!(await registryAnswers())) {
      // Not fatal: only tests that push/pull need it, and they will say so when they fail.
      console.warn(
        `[integration] warning: no registry answers at http://${TEST_REGISTRY}/v2/ ` +
          `(run \`${PROVISION_COMMAND}\` or set SKIFF_TEST_REGISTRY); registry tests will fail.`,
      );
      return;
    }
    const before = await registryFootprint(TEST_REGISTRY);
    return () => registryTeardown(before);
  }

  if (skipRequested) {
    const reason = `${trouble.problem} ${SKIP_ENV}=1 is set: SKIPPING ALL INTEGRATION TESTS.`;
    console.warn(
      banner([
        'INTEGRATION TESTS SKIPPED — nothing against a real engine was verified.',
        trouble.problem,
        `${SKIP_ENV}=1 is set, so the integration suite is reported as skipped.`,
        `${trouble.fix}, then rerun without ${SKIP_ENV} to run it.`,
      ]),
    );
    project.provide('skiffIntegrationSkip', reason);
    return;
  }

  throw new Error(
    `${trouble.problem} ${trouble.fix}; or set ${SKIP_ENV}=1 to skip the integration tests (they are then reported as skipped).`,
  );
}
