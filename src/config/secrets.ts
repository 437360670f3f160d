// A config that holds plain-text passwords must be readable by root only. The daemon tightens
// the file's mode when it loads such a config; `doctor` reports it before that.
import { chmod, stat } from 'node:fs/promises';
import type { Config } from './schema.js';

/** The users whose config entry holds a plain-text password. */
export function plainPasswordUsers(config: Config): string[] {
  return Object.entries(config.users)
    .filter(([, u]) => typeof u.auth?.password === 'string' && u.auth.password !== '')
    .map(([name]) => name);
}

/** Whether a file of this mode can be read by anyone but its owner. */
export function readableByOthers(mode: number): boolean {
  return (mode & 0o077) !== 0;
}

/**
 * Makes `path` readable by its owner only when `config` (loaded from it) holds a plain-text
 * password and others can read it. Returns the users named, when it changed the mode.
 */
export async function protectPlainPasswords(path: string, config: Config): Promise<string[] | undefined> {
  const users = plainPasswordUsers(config);
  if (users.length === 0) return undefined;
  const { mode } = await stat(path);
  if (!readableByOthers(mode)) return undefined;
  await chmod(path, mode & 0o700);
  return users;
}
