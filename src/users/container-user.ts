// The user a login runs as inside its container: looked up in the container's passwd (getent,
// else /etc/passwd itself for images without getent), created with a home directory when the
// config says createContainerUser, and the shell a session should start. Commands run in the
// container as 0:0 (works even in images whose passwd lacks "root") with argument arrays only.
import type { Engine, ExecResult } from '../engine/engine.js';
import { SkiffError } from '../errors.js';
import { findPasswdEntry, parsePasswdLine } from './passwd-files.js';
import type { PasswdEntry } from './passwd-files.js';

export type ContainerUserEngine = Pick<Engine, 'execRun'>;

export const DEFAULT_CONTAINER_SHELL = '/bin/sh';

export interface ContainerUserOptions {
  /** The config's containerUser: a name, a uid, or either with `:GROUP`. */
  user: string;
  /** The config's containerShell (argv), which wins over the passwd entry. */
  shell?: readonly string[];
  /** Create the user when missing (createContainerUser); default true. */
  create?: boolean;
  signal?: AbortSignal;
  /** Per command; default 60 s. */
  timeoutMs?: number;
}

export interface ContainerUser {
  /** The login name in the container (the uid as given when the passwd has no entry). */
  name: string;
  uid: number;
  gid: number;
  home: string;
  /** The session's shell argv: containerShell, else the passwd shell, else /bin/sh. */
  shell: string[];
  /** Whether this call created the user. */
  created: boolean;
  warnings: string[];
}

/** `name`, `1000`, `name:group`, `1000:1000` → the user part and the optional group part. Pure. */
export function splitContainerUser(spec: string): { user: string; group: string | undefined } {
  const colon = spec.indexOf(':');
  return colon < 0 ? { user: spec, group: undefined } : { user: spec.slice(0, colon), group: spec.slice(colon + 1) };
}

const NO_LOGIN_SHELLS = /\/(nologin|false)$/;

/** The session shell from the config and the passwd entry. Pure. */
export function resolveContainerShell(configured: readonly string[] | undefined, entry: Pick<PasswdEntry, 'shell'> | undefined): string[] {
  if (configured !== undefined && configured.length > 0) return [...configured];
  if (entry !== undefined && entry.shell !== '') return [entry.shell];
  return [DEFAULT_CONTAINER_SHELL];
}

/** Exit codes of an exec whose program is missing (the runtime's 126/127). */
function notFound(result: ExecResult): boolean {
  return result.exitCode === 126 || result.exitCode === 127;
}

function said(result: ExecResult): string {
  return (result.stderr.trim() || result.stdout.trim()).split('\n').slice(-3).join(' / ');
}

async function lookup(
  engine: ContainerUserEngine,
  containerId: string,
  user: string,
  exec: { user: string; timeoutMs: number; signal?: AbortSignal },
): Promise<PasswdEntry | undefined> {
  const got = await engine.execRun(containerId, ['getent', 'passwd', user], exec);
  if (got.exitCode === 0) {
    const entry = parsePasswdLine(got.stdout.split('\n')[0] ?? '');
    if (entry) return entry;
  } else if (got.exitCode === 2) {
    return undefined;
  } else if (!notFound(got)) {
    throw new SkiffError(
      'CONTAINER_USER_FAILED',
      `looking up ${user} in container ${containerId} failed: getent exited with ${got.exitCode}: ${said(got)}`,
    );
  }
  // No getent in the image: read the file.
  const cat = await engine.execRun(containerId, ['cat', '/etc/passwd'], exec);
  if (cat.exitCode !== 0) {
    if (notFound(cat) || /No such file/i.test(said(cat))) return undefined;
    throw new SkiffError('CONTAINER_USER_FAILED', `reading /etc/passwd in container ${containerId} failed: ${said(cat)}`);
  }
  return findPasswdEntry(cat.stdout, user);
}

/**
 * Resolves (and with `create`, creates) the container user of a mapped host user. The container
 * must be running. Creating runs `useradd -m -s SHELL NAME` when the image has useradd, else
 * BusyBox's `adduser -D -s SHELL NAME`; SHELL is containerShell's program when it is an absolute
 * path, else /bin/sh. A missing user without `create`, a uid with no entry to create, or a failing
 * tool is CONTAINER_USER_FAILED; engine failures keep their engine codes.
 */
export async function ensureContainerUser(
  engine: ContainerUserEngine,
  containerId: string,
  options: ContainerUserOptions,
): Promise<ContainerUser> {
  const { user } = splitContainerUser(options.user);
  if (user === '') throw new SkiffError('USAGE', 'ensureContainerUser needs a container user name or uid');
  const exec = { user: '0:0', timeoutMs: options.timeoutMs ?? 60_000, ...(options.signal ? { signal: options.signal } : {}) };
  const warnings: string[] = [];
  let created = false;

  let entry = await lookup(engine, containerId, user, exec);
  if (!entry) {
    if (options.create === false) {
      throw new SkiffError(
        'CONTAINER_USER_FAILED',
        `user ${user} does not exist in container ${containerId}; set createContainerUser: true or add the user to the image`,
      );
    }
    if (/^\d+$/.test(user)) {
      throw new SkiffError(
        'CONTAINER_USER_FAILED',
        `uid ${user} has no passwd entry in container ${containerId} and a user cannot be created from a uid alone; use a name as containerUser`,
      );
    }
    const program = options.shell?.[0];
    const loginShell = program !== undefined && program.startsWith('/') ? program : DEFAULT_CONTAINER_SHELL;
    let result = await engine.execRun(containerId, ['useradd', '-m', '-s', loginShell, '--', user], exec);
    if (notFound(result)) {
      result = await engine.execRun(containerId, ['adduser', '-D', '-s', loginShell, user], exec);
      if (notFound(result)) {
        throw new SkiffError(
          'CONTAINER_USER_FAILED',
          `cannot create ${user} in container ${containerId}: the image has neither useradd nor adduser; add the user to the image instead`,
        );
      }
    }
    if (result.exitCode !== 0) {
      throw new SkiffError(
        'CONTAINER_USER_FAILED',
        `creating ${user} in container ${containerId} failed (exit ${result.exitCode}): ${said(result)}`,
      );
    }
    entry = await lookup(engine, containerId, user, exec);
    if (!entry) {
      throw new SkiffError(
        'CONTAINER_USER_FAILED',
        `created ${user} in container ${containerId}, but its passwd still has no entry for it`,
      );
    }
    created = true;
  }

  const shell = resolveContainerShell(options.shell, entry);
  if (options.shell === undefined && NO_LOGIN_SHELLS.test(entry.shell)) {
    warnings.push(`${user}'s shell in container ${containerId} is ${entry.shell}, so logins end at once; set containerShell`);
  }
  return { name: entry.name, uid: entry.uid, gid: entry.gid, home: entry.home || '/', shell, created, warnings };
}
