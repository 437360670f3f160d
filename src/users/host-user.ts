// One mapped host user brought in line with the config: the account (created only when allowed),
// its login shell (the skiff-core launcher, listed in /etc/shells), no docker group (membership is
// root-equivalent: the Go original added every mapped user to it), its password per `auth`, and
// its SSH keys in the root-owned keys directory. Nothing in the user's home is read or written.
//
// Call it for one user at a time (the account tools and /etc/shells are not safe to change
// concurrently). It returns what changed and what the owner should know; failures are
// SkiffErrors whose message says what to do.
import { join } from 'node:path';
import { checkLoginName } from '../config/checks.js';
import { SkiffError } from '../errors.js';
import type { UserAuth } from '../config/schema.js';
import type { AccountTools } from './account-tools.js';
import { writeAuthorizedKeys } from './authorized-keys.js';
import type { KeysChange } from './authorized-keys.js';
import { checkLauncherPath, ensureLoginShellListed } from './login-shells.js';
import type { ShellsChange } from './login-shells.js';
import { currentHash, supplementaryGroups } from './passwd-files.js';
import type { PasswdEntry } from './passwd-files.js';
import { applyPasswordAction, passwordPolicy, planPassword, sha512Hasher } from './password.js';
import type { PasswordHasher, PasswordMode } from './password.js';
import { isExecutableFile } from './command-runner.js';
import { readAccountFiles } from './system-files.js';
import type { AccountFiles, Owner } from './system-files.js';

export const DOCKER_GROUP = 'docker';

export interface HostUserSpec {
  /** Host login name (the key under `users:`). */
  name: string;
  /** Absolute path of the skiff-core launcher as sshd will exec it, e.g. /usr/bin/skiff-core. */
  shell: string;
  /** Home directory for a new account; default /home/NAME. Existing accounts keep theirs. */
  home?: string;
  auth?: Partial<UserAuth>;
  /** Create the account when missing (`setup --create-users`, SKIFF_CORE_CREATE_USERS). */
  createUsers: boolean;
}

export interface HostUserDeps {
  tools: AccountTools;
  /** Filesystem root the account files, /etc/shells and the keys directory are under; default '/'. */
  root?: string;
  /** Root's authorized_keys for auth.copyRootKeys; default ROOT/root/.ssh/authorized_keys. */
  rootKeysPath?: string;
  /** Owner of files skiff-core creates (keys, /etc/shells); default root. */
  owner?: Owner;
  /** Default DOCKER_GROUP. */
  dockerGroup?: string;
  hasher?: PasswordHasher;
}

export type HostUserChange =
  | { kind: 'created'; uid: number; home: string; shell: string }
  | { kind: 'shell-set'; from: string; to: string }
  | {
      kind: 'docker-group-left';
      group: string;
      /** Whether it was the primary group (BusyBox `adduser -G docker`), replaced by `newPrimaryGroup`. */
      wasPrimary: boolean;
      newPrimaryGroup?: string;
    }
  | { kind: 'password'; mode: PasswordMode }
  | ShellsChange
  | KeysChange;

export interface HostUserOutcome {
  name: string;
  /** `missing`: the account does not exist and createUsers was false; nothing else was done. */
  state: 'ready' | 'missing';
  uid?: number;
  gid?: number;
  home?: string;
  /** Password policy in force (ready users). */
  password?: PasswordMode;
  /** Number of SSH keys installed (ready users). */
  keys?: number;
  changes: HostUserChange[];
  warnings: string[];
}

/** One line for logs and `skiff-core status`. */
export function describeHostUserChange(name: string, change: HostUserChange): string {
  switch (change.kind) {
    case 'created':
      return `created user ${name} (uid ${change.uid}, home ${change.home}, shell ${change.shell})`;
    case 'shell-set':
      return `set the login shell of ${name} to ${change.to} (was ${change.from || '(empty)'})`;
    case 'docker-group-left':
      return change.wasPrimary
        ? `removed ${name} from the ${change.group} group (root-equivalent), which was its primary group; primary group is now ${change.newPrimaryGroup ?? '?'}`
        : `removed ${name} from the ${change.group} group (root-equivalent)`;
    case 'password':
      return {
        password: `set the password of ${name} from the config`,
        hash: `set the password of ${name} from the config's passwordHash`,
        random: `set a random password for ${name} (log in with an SSH key)`,
        empty: `emptied the password of ${name} (auth.allowEmptyPassword)`,
        disabled: `disabled password logins for ${name} (auth.locked; SSH keys still work)`,
      }[change.mode];
    case 'shells-listed':
      return change.created ? `created ${change.path} listing ${change.shell}` : `added ${change.shell} to ${change.path}`;
    case 'keys-written':
      return `wrote ${change.count} SSH key${change.count === 1 ? '' : 's'} for ${name} to ${change.path}`;
    case 'keys-removed':
      return `removed ${change.path} (no SSH keys configured for ${name})`;
    case 'keys-dir-fixed':
      return `fixed ${change.path}: ${change.what}`;
  }
}

function find(files: AccountFiles, name: string): PasswdEntry | undefined {
  return files.passwd.find((e) => e.name === name);
}

export async function ensureHostUser(spec: HostUserSpec, deps: HostUserDeps): Promise<HostUserOutcome> {
  const { name, shell } = spec;
  const root = deps.root ?? '/';
  const dockerGroup = deps.dockerGroup ?? DOCKER_GROUP;
  const tools = deps.tools;
  const badName = checkLoginName(name);
  if (badName) throw new SkiffError('USAGE', badName);
  checkLauncherPath(shell);
  const { policy, warnings } = passwordPolicy(spec.auth);
  const changes: HostUserChange[] = [];

  // 1. The account.
  let files = await readAccountFiles(root);
  let entry = find(files, name);
  if (!entry) {
    if (!spec.createUsers) {
      return {
        name,
        state: 'missing',
        changes,
        warnings: [
          ...warnings,
          `host user ${name} does not exist; run skiff-core with --create-users (or SKIFF_CORE_CREATE_USERS=1) to create it, or create it yourself with login shell ${shell}`,
        ],
      };
    }
    const home = spec.home ?? `/home/${name}`;
    const ownGroup = files.group.some((g) => g.name === name);
    await tools.createUser(name, { shell, home, ...(ownGroup ? { group: name } : {}) });
    files = await readAccountFiles(root);
    entry = find(files, name);
    if (!entry)
      throw new SkiffError(
        'USER_COMMAND_FAILED',
        `creating user ${name} reported success but ${join(root, 'etc/passwd')} has no entry for it`,
      );
    changes.push({ kind: 'created', uid: entry.uid, home: entry.home, shell: entry.shell });
  }
  if (entry.uid === 0) {
    throw new SkiffError(
      'USER_REFUSED',
      `refusing to manage ${name}: it has uid 0 (root); its login shell and password would be replaced. Map a normal user instead`,
    );
  }

  // 2. The login shell, and /etc/shells.
  const listed = await ensureLoginShellListed(shell, { root, ...(deps.owner ? { owner: deps.owner } : {}) });
  if (listed) changes.push(listed);
  if (!(await isExecutableFile(join(root, shell)))) {
    warnings.push(`login shell ${shell} does not exist or is not executable: sshd refuses logins for ${name} until it does`);
  }
  if (entry.shell !== shell) {
    await tools.setShell(name, shell);
    changes.push({ kind: 'shell-set', from: entry.shell, to: shell });
  }

  // 3. Out of the docker group, supplementary and primary.
  const docker = files.group.find((g) => g.name === dockerGroup);
  if (docker) {
    const member = docker.members.includes(name);
    const primary = entry.gid === docker.gid;
    if (member || primary) {
      let newPrimaryGroup: string | undefined;
      if (member) {
        const others = supplementaryGroups(files.group, name).filter((g) => g !== dockerGroup);
        await tools.removeFromGroup(name, dockerGroup, others);
      }
      if (primary) {
        newPrimaryGroup = name === dockerGroup ? 'users' : name;
        if (!files.group.some((g) => g.name === newPrimaryGroup)) await tools.createGroup(newPrimaryGroup);
        await tools.setPrimaryGroup(name, newPrimaryGroup);
      }
      files = await readAccountFiles(root);
      const after = find(files, name);
      const dockerAfter = files.group.find((g) => g.name === dockerGroup);
      if (!after || (dockerAfter && (dockerAfter.members.includes(name) || after.gid === dockerAfter.gid))) {
        throw new SkiffError(
          'USER_COMMAND_FAILED',
          `${name} is still in the ${dockerGroup} group after removing it; remove it by hand (it gives root-equivalent access to the Docker socket)`,
        );
      }
      entry = after;
      changes.push({ kind: 'docker-group-left', group: dockerGroup, wasPrimary: primary, ...(newPrimaryGroup ? { newPrimaryGroup } : {}) });
      warnings.push(
        `${name} was in the ${dockerGroup} group (root-equivalent; the Go skiff-core put it there) and has been removed; sessions already running keep the group until they end`,
      );
    }
  }

  // 4. The password.
  const action = planPassword(policy, currentHash(entry, files.shadow), deps.hasher ?? sha512Hasher);
  if (await applyPasswordAction(tools, name, action)) changes.push({ kind: 'password', mode: policy.kind });

  // 5. SSH keys, in the root-owned directory.
  const keys = await writeAuthorizedKeys(
    name,
    { copyRootKeys: spec.auth?.copyRootKeys ?? false, sshKeys: spec.auth?.sshKeys ?? [] },
    { root, ...(deps.rootKeysPath ? { rootKeysPath: deps.rootKeysPath } : {}), ...(deps.owner ? { owner: deps.owner } : {}) },
  );
  changes.push(...keys.changes);
  warnings.push(...keys.warnings);
  if (keys.count === 0 && (policy.kind === 'random' || policy.kind === 'disabled')) {
    warnings.push(
      `${name} has no SSH keys and no password it can log in with: add auth.sshKeys or auth.copyRootKeys, or set auth.password`,
    );
  }

  return {
    name,
    state: 'ready',
    uid: entry.uid,
    gid: entry.gid,
    home: entry.home,
    password: policy.kind,
    keys: keys.count,
    changes,
    warnings,
  };
}
