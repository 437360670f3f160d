// Reads the host's sshd configuration and says what in it undoes skiff-core's isolation: an
// internal sftp server serves the host's files without running the login shell, and forwarding
// lets a mapped user reach the host's network and sockets from outside their container.
import { readFile } from 'node:fs/promises';
import { dirname, isAbsolute, join } from 'node:path';
import { AUTHORIZED_KEYS_DIR } from './authorized-keys.js';

/** Keyword (lower case) → values of its first occurrence outside Match blocks, as sshd reads it. */
export type SshdSettings = Map<string, string[]>;

export interface Finding {
  severity: 'error' | 'warning';
  setting: string;
  message: string;
}

/** Parses sshd_config text, following Include (relative to /etc/ssh) through `read`. */
export async function parseSshdConfig(
  path: string,
  read: (path: string) => Promise<string | undefined> = (p) => readFile(p, 'utf8').catch(() => undefined),
  depth = 0,
  into: SshdSettings = new Map(),
): Promise<SshdSettings> {
  const text = await read(path);
  if (text === undefined || depth > 8) return into;
  let inMatch = false;
  for (const raw of text.split('\n')) {
    const line = raw.replace(/#.*/, '').trim();
    if (!line) continue;
    const [keyword = '', ...values] = line.split(/\s+|=/).filter(Boolean);
    const key = keyword.toLowerCase();
    if (key === 'match') {
      inMatch = true;
      continue;
    }
    if (key === 'include') {
      for (const pattern of values) {
        const full = isAbsolute(pattern) ? pattern : join('/etc/ssh', pattern);
        for (const file of await expand(full)) await parseSshdConfig(file, read, depth + 1, into);
      }
      continue;
    }
    // Settings inside Match blocks apply to some connections only; the defaults are what we judge.
    if (inMatch) continue;
    // sshd keeps the first value it reads for most keywords.
    if (!into.has(key)) into.set(key, values);
  }
  return into;
}

async function expand(pattern: string): Promise<string[]> {
  if (!pattern.includes('*')) return [pattern];
  const { readdir } = await import('node:fs/promises');
  const dir = dirname(pattern);
  const re = new RegExp(
    `^${pattern
      .slice(dir.length + 1)
      .replace(/[.+^${}()|[\]\\]/g, '\\$&')
      .replace(/\*/g, '.*')}$`,
  );
  const names = await readdir(dir).catch(() => [] as string[]);
  return names
    .filter((n) => re.test(n))
    .sort()
    .map((n) => join(dir, n));
}

const yes = (values: string[] | undefined, byDefault: boolean) =>
  values === undefined ? byDefault : !['no', 'none'].includes((values[0] ?? '').toLowerCase());

/** `agentUsers`: the users whose config has auth.agentForwarding, for whom sshd must allow it. */
export function checkSshdSettings(settings: SshdSettings, options: { agentUsers?: string[] } = {}): Finding[] {
  const findings: Finding[] = [];
  const agentUsers = options.agentUsers ?? [];
  const subsystem = settings.get('subsystem');
  if (subsystem && subsystem[0]?.toLowerCase() === 'sftp' && subsystem[1] === 'internal-sftp') {
    findings.push({
      severity: 'error',
      setting: 'Subsystem sftp internal-sftp',
      message:
        "sshd serves SFTP itself and never runs the login shell: mapped users see the host's files, not their container. Use an external server: Subsystem sftp /usr/lib/openssh/sftp-server (skiff-core runs the container's).",
    });
  }
  const keys = settings.get('authorizedkeysfile') ?? ['.ssh/authorized_keys', '.ssh/authorized_keys2'];
  if (!keys.some((k) => k.startsWith(AUTHORIZED_KEYS_DIR))) {
    findings.push({
      severity: 'error',
      setting: `AuthorizedKeysFile ${keys.join(' ')}`,
      message: `skiff-core writes mapped users' keys to ${AUTHORIZED_KEYS_DIR}/USER (root-owned, never in their home): add it, e.g. AuthorizedKeysFile .ssh/authorized_keys ${AUTHORIZED_KEYS_DIR}/%u`,
    });
  }
  const forwarding: [string, boolean, string][] = [
    [
      'allowtcpforwarding',
      true,
      "AllowTcpForwarding: mapped users can reach the host's network and local services through the SSH connection",
    ],
    [
      'allowstreamlocalforwarding',
      true,
      "AllowStreamLocalForwarding: mapped users can connect to the host's unix sockets through the SSH connection",
    ],
    [
      'allowagentforwarding',
      true,
      "AllowAgentForwarding: sshd makes the agent socket on the host, where a mapped user's container cannot reach it; with auth.agentForwarding: true for a user, skiff-core forwards it into their container for the session",
    ],
    ['x11forwarding', false, 'X11Forwarding: X11 is forwarded to the host, not the container'],
    ['permittunnel', false, 'PermitTunnel: tun devices on the host'],
  ];
  if (agentUsers.length > 0 && !yes(settings.get('allowagentforwarding'), true)) {
    findings.push({
      severity: 'warning',
      setting: `allowagentforwarding ${(settings.get('allowagentforwarding') ?? []).join(' ')}`,
      message: `auth.agentForwarding is on for ${agentUsers.join(', ')}, but sshd refuses agent forwarding: set AllowAgentForwarding yes (for those users at least, in a Match block). The agent socket sshd makes is the user's own, on the host; skiff-core relays it into their container for the session only`,
    });
  }
  for (const [key, byDefault, message] of forwarding) {
    // Wanted, then: the users who forward their agent need it.
    if (key === 'allowagentforwarding' && agentUsers.length > 0) continue;
    if (yes(settings.get(key), byDefault)) {
      findings.push({
        severity: 'warning',
        setting: `${key} ${(settings.get(key) ?? ['(default)']).join(' ')}`,
        message: `${message}; set it to no (or in a Match block for mapped users)`,
      });
    }
  }
  if (yes(settings.get('permituserenvironment'), false)) {
    findings.push({
      severity: 'warning',
      setting: 'PermitUserEnvironment',
      message: "users' ~/.ssh/environment reaches the login shell; set it to no",
    });
  }
  if (settings.has('forcecommand')) {
    findings.push({
      severity: 'warning',
      setting: 'ForceCommand',
      message: 'a ForceCommand runs instead of the login shell, outside the container',
    });
  }
  return findings;
}
