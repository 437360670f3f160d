// Runs the built skiff-core bundle the way a person or systemd would, and collects what it prints.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export const CLI = fileURLToPath(new URL('../../../dist/skiff-core.mjs', import.meta.url));
/** The compiled launcher: also the login client (`-c CMD`), built by `npm run build`. */
export const LAUNCHER = fileURLToPath(new URL('../../../dist/skiff-core-launcher', import.meta.url));

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

export function runCli(args: string[], options: { env?: NodeJS.ProcessEnv; timeoutMs?: number } = {}): Promise<CliResult> {
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run "npm run build" first (npm test does)`);
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], {
      // lookup: setup and the daemon only read /etc/passwd; tests never change this machine's accounts.
      env: { ...process.env, NO_COLOR: '1', SKIFF_CORE_USERS: 'lookup', ...options.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`skiff-core ${args.join(' ')} still running after ${options.timeoutMs ?? 240_000} ms\n${stderr}`));
    }, options.timeoutMs ?? 240_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}
