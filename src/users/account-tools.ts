// The host's account tools behind one narrow interface, with an implementation for shadow
// (useradd, usermod, groupadd, gpasswd, chpasswd, passwd: Debian, Fedora, Alpine with shadow,
// Buildroot's shadow package) and one for BusyBox (adduser, addgroup, delgroup, chpasswd, passwd:
// Buildroot's default). detectAccountTools() picks one by what is on PATH.
//
// BusyBox has no applet for some changes (a login shell, a primary group, and — without its
// chpasswd applet — a literal hash). For those the BusyBox implementation edits /etc/passwd,
// /etc/shadow or /etc/group itself: one field of one line, written to a temp file with the old
// file's owner and mode and renamed over it, which is how BusyBox's own tools update these files.
//
// Password hashes are always computed by the caller (SHA-512 crypt) and handed over on stdin
// (`chpasswd -e`), never as an argument: argv is visible to every user in /proc.
import { join } from 'node:path';
import { SkiffError } from '../errors.js';
import type { CommandRunner } from './command-runner.js';
import { findExecutable, isExecutableFile, runChecked, searchPath } from './command-runner.js';
import { parseGroup, removeGroupMember, setField } from './passwd-files.js';
import { GROUP, GSHADOW, PASSWD, SHADOW, readOptional, replaceSystemFile } from './system-files.js';

export type AccountToolsKind = 'shadow' | 'busybox';

export interface CreateUserOptions {
  /** Login shell (absolute path). */
  shell: string;
  /** Home directory to create. */
  home: string;
  /** Existing group to use as the primary group; default: a new group named after the user. */
  group?: string;
}

/**
 * Changes to host accounts. Every method acts on the host ('/'): tools always do, and the
 * BusyBox file edits use the `root` the implementation was created with (a temp dir in tests).
 * Failures are SkiffError USER_COMMAND_FAILED (a tool exited non-zero, with its message),
 * USER_TOOLS_MISSING (the device lacks the tool) or IO.
 */
export interface AccountTools {
  readonly kind: AccountToolsKind;
  /** The tools found, by name, for `doctor` and logs. */
  readonly found: Readonly<Record<string, string>>;
  /** Creates the user with a home directory and no usable password (`!`). */
  createUser(name: string, options: CreateUserOptions): Promise<void>;
  createGroup(group: string): Promise<void>;
  setShell(name: string, shell: string): Promise<void>;
  /** Makes the existing `group` the user's primary group. */
  setPrimaryGroup(name: string, group: string): Promise<void>;
  /** Removes the user from `group`'s member list; `otherGroups` are the user's remaining ones. */
  removeFromGroup(name: string, group: string, otherGroups: readonly string[]): Promise<void>;
  /** Sets the password field to `hash` verbatim (a crypt string, or `*`). */
  setPasswordHash(name: string, hash: string): Promise<void>;
  /** Empties the password field (`passwd -d`): no password needed where empty ones are allowed. */
  clearPassword(name: string): Promise<void>;
}

function missingTool(tool: string, purpose: string): SkiffError {
  return new SkiffError(
    'USER_TOOLS_MISSING',
    `${tool} is not installed, so skiff-core cannot ${purpose}; install it (BusyBox applet or shadow package) or make the change by hand`,
  );
}

function checkHashInput(name: string, hash: string): void {
  if (/[:\n\r]/.test(hash)) throw new SkiffError('USAGE', `password hash for ${name} contains ":" or a newline`);
}

export interface ShadowToolPaths {
  useradd: string;
  usermod: string;
  groupadd: string;
  chpasswd: string;
  passwd: string;
  gpasswd?: string;
}

export function createShadowTools(runner: CommandRunner, paths: ShadowToolPaths): AccountTools {
  const found: Record<string, string> = { ...paths };
  return {
    kind: 'shadow',
    found,
    async createUser(name, { shell, home, group }) {
      const groupArgs = group === undefined ? ['-U'] : ['-g', group];
      await runChecked(runner, paths.useradd, ['-m', '-d', home, '-s', shell, ...groupArgs, '--', name], `creating user ${name}`);
    },
    async createGroup(group) {
      await runChecked(runner, paths.groupadd, ['--', group], `creating group ${group}`);
    },
    async setShell(name, shell) {
      await runChecked(runner, paths.usermod, ['-s', shell, '--', name], `setting the login shell of ${name}`);
    },
    async setPrimaryGroup(name, group) {
      await runChecked(runner, paths.usermod, ['-g', group, '--', name], `setting the primary group of ${name}`);
    },
    async removeFromGroup(name, group, otherGroups) {
      const what = `removing ${name} from group ${group}`;
      if (paths.gpasswd !== undefined) {
        await runChecked(runner, paths.gpasswd, ['-d', name, group], what);
      } else {
        await runChecked(runner, paths.usermod, ['-G', otherGroups.join(','), '--', name], what);
      }
    },
    async setPasswordHash(name, hash) {
      checkHashInput(name, hash);
      await runChecked(runner, paths.chpasswd, ['-e'], `setting the password of ${name}`, { stdin: `${name}:${hash}\n` });
    },
    async clearPassword(name) {
      await runChecked(runner, paths.passwd, ['-d', name], `removing the password of ${name}`);
    },
  };
}

export interface BusyBoxToolPaths {
  passwd: string;
  adduser?: string;
  addgroup?: string;
  delgroup?: string;
  chpasswd?: string;
}

/** Days since the epoch, as /etc/shadow's "last change" field counts. */
function shadowToday(now: Date): string {
  return String(Math.floor(now.getTime() / 86_400_000));
}

export function createBusyBoxTools(
  runner: CommandRunner,
  paths: BusyBoxToolPaths,
  options: { root?: string; now?: () => Date } = {},
): AccountTools {
  const root = options.root ?? '/';
  const now = options.now ?? (() => new Date());
  const found: Record<string, string> = Object.fromEntries(Object.entries(paths).filter(([, v]) => v !== undefined));

  async function editPasswdField(name: string, index: number, value: string, what: string): Promise<void> {
    const path = join(root, PASSWD);
    const content = await readOptional(path);
    const next = content === undefined ? undefined : setField(content, name, index, value);
    if (next === undefined) throw new SkiffError('IO', `${what}: ${name} has no entry in ${path}`);
    if (next !== content) await replaceSystemFile(path, next);
  }

  return {
    kind: 'busybox',
    found,
    async createUser(name, { shell, home, group }) {
      if (paths.adduser === undefined) throw missingTool('adduser', `create user ${name}`);
      const groupArgs = group === undefined ? [] : ['-G', group];
      // -D: no interactive passwd (the account starts with `!`, the caller sets the password).
      await runChecked(runner, paths.adduser, ['-D', '-s', shell, '-h', home, ...groupArgs, name], `creating user ${name}`);
    },
    async createGroup(group) {
      if (paths.addgroup === undefined) throw missingTool('addgroup', `create group ${group}`);
      await runChecked(runner, paths.addgroup, [group], `creating group ${group}`);
    },
    async setShell(name, shell) {
      await editPasswdField(name, 6, shell, `setting the login shell of ${name}`);
    },
    async setPrimaryGroup(name, group) {
      const groups = parseGroup((await readOptional(join(root, GROUP))) ?? '');
      const entry = groups.find((g) => g.name === group);
      if (!entry) throw new SkiffError('IO', `setting the primary group of ${name}: no group ${group} in ${join(root, GROUP)}`);
      await editPasswdField(name, 3, String(entry.gid), `setting the primary group of ${name}`);
    },
    async removeFromGroup(name, group) {
      if (paths.delgroup !== undefined) {
        await runChecked(runner, paths.delgroup, [name, group], `removing ${name} from group ${group}`);
        return;
      }
      for (const file of [GROUP, GSHADOW]) {
        const path = join(root, file);
        const content = await readOptional(path);
        const next = content === undefined ? undefined : removeGroupMember(content, group, name);
        if (next !== undefined) await replaceSystemFile(path, next);
      }
    },
    async setPasswordHash(name, hash) {
      checkHashInput(name, hash);
      if (paths.chpasswd !== undefined) {
        await runChecked(runner, paths.chpasswd, ['-e'], `setting the password of ${name}`, { stdin: `${name}:${hash}\n` });
        return;
      }
      const shadowPath = join(root, SHADOW);
      const shadow = await readOptional(shadowPath);
      if (shadow === undefined) {
        // A system without shadow passwords keeps the hash in /etc/passwd.
        await editPasswdField(name, 1, hash, `setting the password of ${name}`);
        return;
      }
      // The "last change" day as chpasswd sets it (0 would force a password change at login).
      const today = shadowToday(now());
      const withHash = setField(shadow, name, 1, hash);
      const next =
        withHash === undefined
          ? `${shadow}${shadow === '' || shadow.endsWith('\n') ? '' : '\n'}${name}:${hash}:${today}:0:99999:7:::\n`
          : (setField(withHash, name, 2, today) ?? withHash);
      await replaceSystemFile(shadowPath, next);
    },
    async clearPassword(name) {
      await runChecked(runner, paths.passwd, ['-d', name], `removing the password of ${name}`);
    },
  };
}

export interface DetectOptions {
  runner: CommandRunner;
  /** Where the BusyBox implementation edits files; default '/'. */
  root?: string;
  /** Directories to search; default PATH plus the usual sbin/bin directories. */
  searchPath?: readonly string[];
  isExecutable?: (path: string) => Promise<boolean>;
}

/**
 * Shadow when useradd, usermod, groupadd, chpasswd and passwd are all found; else BusyBox when
 * passwd is found (adduser/addgroup/delgroup/chpasswd are used when present, see
 * createBusyBoxTools); else USER_TOOLS_MISSING.
 */
export async function detectAccountTools(options: DetectOptions): Promise<AccountTools> {
  const dirs = options.searchPath ?? searchPath();
  const isExecutable = options.isExecutable ?? isExecutableFile;
  const find = (name: string) => findExecutable(name, dirs, isExecutable);

  const [useradd, usermod, groupadd, chpasswd, passwd, gpasswd, adduser, addgroup, delgroup] = await Promise.all(
    ['useradd', 'usermod', 'groupadd', 'chpasswd', 'passwd', 'gpasswd', 'adduser', 'addgroup', 'delgroup'].map(find),
  );
  if (useradd && usermod && groupadd && chpasswd && passwd) {
    return createShadowTools(options.runner, {
      useradd,
      usermod,
      groupadd,
      chpasswd,
      passwd,
      ...(gpasswd === undefined ? {} : { gpasswd }),
    });
  }
  if (passwd) {
    const optional = { adduser, addgroup, delgroup, chpasswd };
    return createBusyBoxTools(
      options.runner,
      { passwd, ...Object.fromEntries(Object.entries(optional).filter(([, v]) => v !== undefined)) },
      { root: options.root ?? '/' },
    );
  }
  throw new SkiffError(
    'USER_TOOLS_MISSING',
    `no account tools found in ${dirs.join(':')}: skiff-core needs shadow's useradd/usermod/groupadd/chpasswd/passwd or BusyBox's adduser/passwd to manage host users`,
  );
}
