// /etc/shells: the launcher must be listed there for everything that checks a login shell against
// it (PAM's pam_shells, chsh, some FTP/SFTP setups, BusyBox login with shells checks). sshd itself
// only needs the shell to exist and be executable.
import { join } from 'node:path';
import { SkiffError, errorMessage } from '../errors.js';
import { ROOT_OWNER, SHELLS, readOptional, replaceFile, replaceSystemFile } from './system-files.js';
import type { Owner } from './system-files.js';

/** The shells glibc's getusershell() assumes when /etc/shells is missing; kept when we create it. */
const IMPLIED_SHELLS = ['/bin/sh'];

/** `content` with `shell` appended, or undefined when it is already listed. Pure. */
export function addShell(content: string | undefined, shell: string): string | undefined {
  if (content === undefined) return [...IMPLIED_SHELLS, shell].map((s) => `${s}\n`).join('');
  const listed = content
    .split('\n')
    .map((line) => line.trim())
    .some((line) => line === shell);
  if (listed) return undefined;
  return `${content}${content === '' || content.endsWith('\n') ? '' : '\n'}${shell}\n`;
}

export function checkLauncherPath(shell: string): void {
  if (!shell.startsWith('/') || /[:\n\r\0]/.test(shell)) {
    throw new SkiffError('USAGE', `login shell ${JSON.stringify(shell)} must be an absolute path without ":" or newlines`);
  }
}

export interface ShellsChange {
  kind: 'shells-listed';
  /** The file changed (under the root given). */
  path: string;
  shell: string;
  /** Whether the file did not exist and was created. */
  created: boolean;
}

/**
 * Lists `shell` in ROOT/etc/shells (atomically, keeping the file's mode and owner) unless it is
 * there; a missing file is created with /bin/sh and `shell`, owned by `owner` (default root).
 */
export async function ensureLoginShellListed(
  shell: string,
  options: { root?: string; owner?: Owner } = {},
): Promise<ShellsChange | undefined> {
  checkLauncherPath(shell);
  const path = join(options.root ?? '/', SHELLS);
  const content = await readOptional(path);
  const next = addShell(content, shell);
  if (next === undefined) return undefined;
  if (content === undefined) {
    await replaceFile(path, next, { mode: 0o644, ...(options.owner ?? ROOT_OWNER) }).catch((err: unknown) => {
      throw new SkiffError('IO', `cannot create ${path}: ${errorMessage(err)}`, { cause: err });
    });
  } else {
    await replaceSystemFile(path, next);
  }
  return { kind: 'shells-listed', path, shell, created: content === undefined };
}
