// Runs src/users for real inside a test container (bundled by test/integration/users.test.ts and
// executed with the host's node bind-mounted in). Never run it on a machine whose accounts matter:
// it creates users and rewrites /etc/passwd, /etc/shadow and /etc/group.
//
// Usage: node users-driver.mjs '{"op":"ensureHostUser","spec":{...},"searchPath":["/opt/bb"]}'
// Prints one JSON line: {"ok":true,"kind":"shadow","outcome":{...}} or {"ok":false,"code":...}.
import { isSkiffError } from '../../../src/errors.js';
import { detectAccountTools } from '../../../src/users/account-tools.js';
import { createCommandRunner } from '../../../src/users/command-runner.js';
import { ensureHostUser } from '../../../src/users/host-user.js';
import type { HostUserSpec } from '../../../src/users/host-user.js';

interface Request {
  op: 'ensureHostUser';
  spec: HostUserSpec;
  /** Where to look for account tools (e.g. only a BusyBox directory); default PATH. */
  searchPath?: string[];
}

async function main(): Promise<number> {
  const request = JSON.parse(process.argv[2] ?? '{}') as Request;
  if (request.op !== 'ensureHostUser') throw new Error(`unknown op ${String(request.op)}`);
  const tools = await detectAccountTools({
    runner: createCommandRunner(),
    root: '/',
    ...(request.searchPath ? { searchPath: request.searchPath } : {}),
  });
  try {
    const outcome = await ensureHostUser(request.spec, { tools, root: '/' });
    process.stdout.write(`${JSON.stringify({ ok: true, kind: tools.kind, outcome })}\n`);
    return 0;
  } catch (err) {
    const code = isSkiffError(err) ? err.code : 'UNEXPECTED';
    process.stdout.write(`${JSON.stringify({ ok: false, kind: tools.kind, code, message: (err as Error).message })}\n`);
    return 1;
  }
}

process.exitCode = await main();
