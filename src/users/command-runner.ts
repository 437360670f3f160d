// Running the host's account tools: argument arrays only (no shell ever parses a user name), secrets
// only on stdin (argv is world-readable in /proc), a fixed environment (nothing like LD_PRELOAD or a
// localised message catalogue reaches a setuid-capable tool) and a time limit.
import { spawn } from 'node:child_process';
import { constants } from 'node:fs';
import { access, stat } from 'node:fs/promises';
import { basename, isAbsolute, join } from 'node:path';
import { SkiffError, errorMessage } from '../errors.js';

export interface CommandResult {
  exitCode: number;
  stdout: string;
  stderr: string;
}

export interface RunOptions {
  /** Written to the command's stdin, then stdin is closed. Never logged, never put in errors. */
  stdin?: string;
  /** Default 60 s; the command is killed and the call fails with TIMEOUT after this long. */
  timeoutMs?: number;
}

/** Runs `file` (an absolute path) with `args`; resolves with the exit code, whatever it is. */
export interface CommandRunner {
  run(file: string, args: readonly string[], options?: RunOptions): Promise<CommandResult>;
}

/** The directories tools are looked for in, after PATH: root's usual ones, sbin included. */
export const STANDARD_PATH: readonly string[] = ['/usr/local/sbin', '/usr/local/bin', '/usr/sbin', '/usr/bin', '/sbin', '/bin'];

const OUTPUT_LIMIT = 64 * 1024;

/** The real runner: child_process.spawn without a shell. */
export function createCommandRunner(): CommandRunner {
  return {
    run(file, args, options = {}) {
      const timeoutMs = options.timeoutMs ?? 60_000;
      return new Promise((resolve, reject) => {
        const child = spawn(file, [...args], {
          shell: false,
          stdio: ['pipe', 'pipe', 'pipe'],
          env: { PATH: STANDARD_PATH.join(':'), LANG: 'C', LC_ALL: 'C' },
        });
        let stdout = '';
        let stderr = '';
        const collect = (current: string, chunk: Buffer) =>
          current.length >= OUTPUT_LIMIT ? current : current + chunk.toString('utf8').slice(0, OUTPUT_LIMIT - current.length);
        child.stdout.on('data', (chunk: Buffer) => (stdout = collect(stdout, chunk)));
        child.stderr.on('data', (chunk: Buffer) => (stderr = collect(stderr, chunk)));
        let timedOut = false;
        const timer = setTimeout(() => {
          timedOut = true;
          child.kill('SIGKILL');
        }, timeoutMs);
        child.on('error', (err) => {
          clearTimeout(timer);
          reject(new SkiffError('USER_COMMAND_FAILED', `cannot run ${file}: ${errorMessage(err)}`, { cause: err }));
        });
        child.on('close', (code, signal) => {
          clearTimeout(timer);
          if (timedOut) {
            reject(new SkiffError('TIMEOUT', `${basename(file)} did not finish within ${timeoutMs} ms and was killed`));
            return;
          }
          resolve({ exitCode: code ?? (signal ? 128 : -1), stdout, stderr });
        });
        // A tool that exits without reading stdin must not turn into an EPIPE crash.
        child.stdin.on('error', () => {});
        child.stdin.end(options.stdin ?? '');
      });
    },
  };
}

/**
 * Runs a tool and fails with USER_COMMAND_FAILED (naming the command, its exit code and its own
 * message) unless it exits 0. `what` says what was being done, for the message.
 */
export async function runChecked(
  runner: CommandRunner,
  file: string,
  args: readonly string[],
  what: string,
  options: RunOptions = {},
): Promise<CommandResult> {
  const result = await runner.run(file, args, options);
  if (result.exitCode !== 0) {
    const said = (result.stderr.trim() || result.stdout.trim()).split('\n').slice(-3).join(' / ');
    throw new SkiffError(
      'USER_COMMAND_FAILED',
      `${what} failed: \`${[basename(file), ...args].join(' ')}\` exited with ${result.exitCode}${said ? `: ${said}` : ''}`,
    );
  }
  return result;
}

/** Whether `path` is an executable regular file (symlinks followed). */
export async function isExecutableFile(path: string): Promise<boolean> {
  try {
    const info = await stat(path);
    if (!info.isFile()) return false;
    await access(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** The search path: PATH's absolute entries, then STANDARD_PATH, without duplicates. */
export function searchPath(pathEnv: string | undefined = process.env['PATH']): string[] {
  const dirs = (pathEnv ?? '').split(':').filter((d) => isAbsolute(d));
  return [...new Set([...dirs, ...STANDARD_PATH])];
}

/** The first `dir/name` that is executable, or undefined. */
export async function findExecutable(
  name: string,
  dirs: readonly string[],
  isExecutable: (path: string) => Promise<boolean> = isExecutableFile,
): Promise<string | undefined> {
  for (const dir of dirs) {
    const candidate = join(dir, name);
    if (await isExecutable(candidate)) return candidate;
  }
  return undefined;
}
