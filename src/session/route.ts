// Where a login goes and what runs there, decided from the config alone. Nothing the user
// controls (files in their home, fields of their request) can change the container, the
// container user or the shell; the request only says interactive or `-c CMD`, and the terminal.
import type { Config } from '../config/schema.js';

export interface Route {
  user: string;
  container: string;
  /** Exec user inside the container; undefined = the image's default user. */
  containerUser: string | undefined;
  /** Configured shell argv, if any (else the container user's shell from its passwd). */
  shell: string[] | undefined;
  createContainerUser: boolean;
  /** auth.agentForwarding: `ssh -A` reaches into the container. */
  agentForwarding: boolean;
}

export function routeFor(config: Config, user: string): Route | undefined {
  const spec = config.users[user];
  if (!spec || !config.containers[spec.container]) return undefined;
  return {
    user,
    container: spec.container,
    containerUser: spec.containerUser,
    shell: spec.containerShell,
    createContainerUser: spec.createContainerUser,
    agentForwarding: spec.auth?.agentForwarding ?? false,
  };
}

/** Variables a client may pass into the session; nothing that changes how programs load. */
export function allowedEnv(env: Record<string, string>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [key, value] of Object.entries(env)) {
    if (typeof value !== 'string' || value.length > 4096) continue;
    if (
      ['TERM', 'LANG', 'COLORTERM', 'SSH_CONNECTION', 'SSH_CLIENT', 'SSH_TTY', 'SSH_ORIGINAL_COMMAND'].includes(key) ||
      /^LC_[A-Z_]+$/.test(key)
    ) {
      out[key] = value;
    }
  }
  return out;
}

/** The names an sftp request arrives under (sshd's Subsystem line runs them through the shell). */
export function isSftpCommand(command: string): boolean {
  const first = command.trim().split(/\s+/)[0] ?? '';
  return first === 'internal-sftp' || /(^|\/)sftp-server$/.test(first);
}

/** Where distributions keep OpenSSH's sftp-server, most common first. */
export const SFTP_SERVER_PATHS = [
  '/usr/lib/openssh/sftp-server', // Debian, Ubuntu
  '/usr/libexec/openssh/sftp-server', // Fedora, RHEL
  '/usr/lib/ssh/sftp-server', // Arch, Alpine
  '/usr/libexec/sftp-server', // Alpine (older), BusyBox systems
  '/usr/lib64/misc/sftp-server', // Gentoo (64-bit)
  '/usr/lib/misc/sftp-server', // Gentoo
  '/run/current-system/sw/libexec/sftp-server', // NixOS
] as const;

export interface ExecPlan {
  cmd: string[];
  /** The whole environment of the exec: `identityEnv` then what the client passed. */
  env: string[];
  /** SHELL, USER, LOGNAME, HOME: the same for every login of this user. */
  identityEnv: string[];
  /** The allowlisted variables from the client (TERM, LANG, SSH_*…). */
  clientEnv: [string, string][];
  workingDir: string | undefined;
  user: string | undefined;
}

/**
 * The exec for a request: an interactive login shell in the home directory, `SHELL -c CMD`,
 * or the container's sftp-server.
 */
export function execPlan(
  route: Route,
  resolved: { shell: string[]; home: string | undefined; sftpServer: string | undefined },
  request: { command?: string | undefined; env: Record<string, string> },
): ExecPlan | { error: string } {
  const clientEnv = Object.entries(allowedEnv(request.env));
  const shell = resolved.shell;
  const name = route.containerUser?.split(':')[0];
  const identity: Record<string, string> = { SHELL: shell[0] ?? '/bin/sh' };
  if (name && !/^\d+$/.test(name)) Object.assign(identity, { USER: name, LOGNAME: name });
  if (resolved.home) identity.HOME = resolved.home;
  const identityEnv = Object.entries(identity).map(([k, v]) => `${k}=${v}`);
  const common = {
    env: [...identityEnv, ...clientEnv.map(([k, v]) => `${k}=${v}`)],
    identityEnv,
    clientEnv,
    workingDir: resolved.home,
    user: route.containerUser,
  };

  if (request.command === undefined) return { ...common, cmd: [...shell, '-l'] };
  if (isSftpCommand(request.command)) {
    if (!resolved.sftpServer) {
      return {
        error: `no sftp-server in container ${route.container} (looked in ${SFTP_SERVER_PATHS.join(', ')}); install OpenSSH's sftp server there`,
      };
    }
    return { ...common, cmd: [resolved.sftpServer] };
  }
  return { ...common, cmd: [...shell, '-c', request.command] };
}
