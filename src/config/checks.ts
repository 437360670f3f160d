// Pure validators for the string formats a config may hold. Each returns undefined when the value
// is fine, or a message that tells the owner what is wrong and what to write instead.
import { isIP } from 'node:net';
import { parseImageRef } from '../engine/image-ref.js';
import { errorMessage } from '../errors.js';

const MOUNT_OPTIONS = new Set([
  'ro',
  'rw',
  'z',
  'Z',
  'nocopy',
  'consistent',
  'cached',
  'delegated',
  'shared',
  'rshared',
  'slave',
  'rslave',
  'private',
  'rprivate',
]);

// Docker's own rule for volume names (and container names).
const VOLUME_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/;

export function checkMount(spec: string): string | undefined {
  const parts = spec.split(':');
  if (parts.length < 2 || parts.length > 3) {
    return `mount "${spec}" must be SOURCE:DESTINATION or SOURCE:DESTINATION:OPTIONS`;
  }
  const [src = '', dst = '', opts] = parts;
  if (src === '') return `mount "${spec}" has an empty source`;
  if (!src.startsWith('/') && !VOLUME_NAME.test(src)) {
    return `mount source "${src}" must be an absolute host path or a volume name`;
  }
  if (!dst.startsWith('/')) return `mount destination "${dst}" must be an absolute path in the container`;
  if (opts !== undefined) {
    for (const opt of opts.split(',')) {
      if (!MOUNT_OPTIONS.has(opt)) {
        return `unknown mount option "${opt}" (known: ${[...MOUNT_OPTIONS].join(', ')})`;
      }
    }
  }
  return undefined;
}

const TMPFS_OPTION = /^(?:[a-z_]+(?:=[A-Za-z0-9%._+-]+)?)$/;

export function checkTmpfsPath(path: string): string | undefined {
  if (!path.startsWith('/')) return `tmpfs path "${path}" must be absolute`;
  if (path.includes(':')) return `tmpfs path "${path}" must not contain ":" (put options in the value)`;
  return undefined;
}

export function checkTmpfsOptions(options: string): string | undefined {
  if (options === '') return undefined;
  for (const opt of options.split(',')) {
    if (!TMPFS_OPTION.test(opt)) return `tmpfs option "${opt}" is not of the form NAME or NAME=VALUE`;
  }
  return undefined;
}

const ENV_NAME = /^[^=\s][^=]*$/;

export function checkEnv(entry: string): string | undefined {
  const eq = entry.indexOf('=');
  if (eq <= 0) return `environment entry "${entry}" must be NAME=VALUE`;
  if (!ENV_NAME.test(entry.slice(0, eq))) return `environment name in "${entry}" is not valid`;
  return undefined;
}

// Linux capabilities Docker accepts by name (without the CAP_ prefix), as of kernel 6.x.
export const CAPABILITIES = [
  'AUDIT_CONTROL',
  'AUDIT_READ',
  'AUDIT_WRITE',
  'BLOCK_SUSPEND',
  'BPF',
  'CHECKPOINT_RESTORE',
  'CHOWN',
  'DAC_OVERRIDE',
  'DAC_READ_SEARCH',
  'FOWNER',
  'FSETID',
  'IPC_LOCK',
  'IPC_OWNER',
  'KILL',
  'LEASE',
  'LINUX_IMMUTABLE',
  'MAC_ADMIN',
  'MAC_OVERRIDE',
  'MKNOD',
  'NET_ADMIN',
  'NET_BIND_SERVICE',
  'NET_BROADCAST',
  'NET_RAW',
  'PERFMON',
  'SETFCAP',
  'SETGID',
  'SETPCAP',
  'SETUID',
  'SYS_ADMIN',
  'SYS_BOOT',
  'SYS_CHROOT',
  'SYS_MODULE',
  'SYS_NICE',
  'SYS_PACCT',
  'SYS_PTRACE',
  'SYS_RAWIO',
  'SYS_RESOURCE',
  'SYS_TIME',
  'SYS_TTY_CONFIG',
  'SYSLOG',
  'WAKE_ALARM',
] as const;
const CAPABILITY_SET = new Set<string>(CAPABILITIES);

export function checkCapability(cap: string): string | undefined {
  const bare = cap.toUpperCase().replace(/^CAP_/, '');
  if (bare === 'ALL' || CAPABILITY_SET.has(bare)) return undefined;
  return `unknown capability "${cap}" (write a name like SYS_ADMIN or NET_ADMIN, or ALL)`;
}

const SIGNAL_NAMES = new Set([
  'HUP',
  'INT',
  'QUIT',
  'ILL',
  'TRAP',
  'ABRT',
  'IOT',
  'BUS',
  'FPE',
  'KILL',
  'USR1',
  'SEGV',
  'USR2',
  'PIPE',
  'ALRM',
  'TERM',
  'STKFLT',
  'CHLD',
  'CONT',
  'STOP',
  'TSTP',
  'TTIN',
  'TTOU',
  'URG',
  'XCPU',
  'XFSZ',
  'VTALRM',
  'PROF',
  'WINCH',
  'IO',
  'POLL',
  'PWR',
  'SYS',
  'RTMIN',
  'RTMAX',
]);
// RTMIN = 34 and RTMAX = 64 on Linux, so offsets stay within 0..30.
const RT_SIGNAL = /^RT(MIN|MAX)([+-])(\d+)$/;

export function checkStopSignal(signal: string): string | undefined {
  if (/^\d+$/.test(signal)) {
    const n = Number(signal);
    return n >= 1 && n <= 64 ? undefined : `signal number ${signal} is outside 1..64`;
  }
  const name = signal.toUpperCase().replace(/^SIG/, '');
  if (SIGNAL_NAMES.has(name)) return undefined;
  const rt = RT_SIGNAL.exec(name);
  if (rt) {
    const [, base, sign, offset] = rt;
    const ok = (base === 'MIN' && sign === '+') || (base === 'MAX' && sign === '-');
    if (ok && Number(offset) <= 30) return undefined;
  }
  return `unknown stop signal "${signal}" (examples: SIGTERM, RTMIN+3, 15)`;
}

export function checkRestartPolicy(policy: string): string | undefined {
  if (['no', 'always', 'unless-stopped', 'on-failure'].includes(policy)) return undefined;
  const m = /^on-failure:(\d+)$/.exec(policy);
  if (m && Number(m[1]) >= 1) return undefined;
  return `unknown restart policy "${policy}" (one of: no, always, unless-stopped, on-failure, on-failure:N)`;
}

/** HOST:PORT or [IPv6]:PORT split into its parts (port 0 included); undefined when it is neither. */
export function splitListenAddress(address: string): { host: string; port: number; v6: boolean } | undefined {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(address);
  const port = Number(m?.[3]);
  if (!m || port > 65535) return undefined;
  return { host: m[1] ?? m[2] ?? '', port, v6: m[1] !== undefined };
}

/** HOST:PORT or [IPv6]:PORT for a listening socket. */
export function checkListenAddress(address: string): string | undefined {
  const at = splitListenAddress(address);
  if (!at || at.port < 1) return `"${address}" is not HOST:PORT (e.g. 0.0.0.0:2222 or [::]:2222)`;
  const { host } = at;
  if (at.v6 ? isIP(host) !== 6 : !(isIP(host) === 4 || HOSTNAME.test(host))) return `"${host}" is not an address to listen on`;
  return undefined;
}

/** Where the metrics endpoint listens: HOST:PORT, or the absolute path of a Unix socket. */
export function checkMetricsListen(address: string): string | undefined {
  if (address.startsWith('/')) return address.length > 100 ? `socket path "${address}" is longer than 100 characters` : undefined;
  return checkListenAddress(address) && `"${address}" is neither HOST:PORT (e.g. 127.0.0.1:9120) nor an absolute socket path`;
}

// POSIX portable login names, as shadow's useradd accepts them by default.
const LOGIN_NAME = /^[a-z_][a-z0-9_-]*\$?$/;

export function checkLoginName(name: string): string | undefined {
  if (name.length > 32) return `login name "${name}" is longer than 32 characters`;
  if (!LOGIN_NAME.test(name)) {
    return `"${name}" is not a valid login name (lower-case letters, digits, "_" and "-", not starting with a digit or "-")`;
  }
  return undefined;
}

// A container user is a name or a numeric uid, optionally with :group or :gid.
const CONTAINER_USER = /^(?:[a-z_][a-z0-9_.-]*\$?|\d+)(?::(?:[a-z_][a-z0-9_.-]*|\d+))?$/i;

export function checkContainerUser(user: string): string | undefined {
  return CONTAINER_USER.test(user) ? undefined : `"${user}" is not a user name, uid, or USER:GROUP`;
}

export function checkContainerName(name: string): string | undefined {
  if (name.length >= 2 && VOLUME_NAME.test(name)) return undefined;
  return `"${name}" is not a valid container name (letters, digits, "_", "." and "-", starting with a letter or digit)`;
}

/** Image references exactly as the engine parses them. */
export function checkImageRef(ref: string): string | undefined {
  try {
    parseImageRef(ref);
    return undefined;
  } catch (err) {
    return `${errorMessage(err)} (write it like name:tag or registry/name:tag)`;
  }
}

export function checkIp(address: string): string | undefined {
  return isIP(address) ? undefined : `"${address}" is not an IP address`;
}

const HOSTNAME = /^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?$/;

export function checkDomain(domain: string): string | undefined {
  return HOSTNAME.test(domain) ? undefined : `"${domain}" is not a valid domain name`;
}

export function checkHostEntry(entry: string): string | undefined {
  const colon = entry.indexOf(':');
  if (colon <= 0) return `host entry "${entry}" must be NAME:IP`;
  const name = entry.slice(0, colon);
  const ip = entry.slice(colon + 1);
  if (!HOSTNAME.test(name)) return `host name "${name}" in "${entry}" is not valid`;
  if (ip !== 'host-gateway' && !isIP(ip)) return `"${ip}" in "${entry}" is not an IP address (or host-gateway)`;
  return undefined;
}

const SSH_KEY =
  /^(?:ssh-(?:rsa|dss|ed25519)|ecdsa-sha2-nistp(?:256|384|521)|sk-(?:ssh-ed25519|ecdsa-sha2-nistp256)@openssh\.com)\s+[A-Za-z0-9+/]+={0,3}(?:\s.*)?$/;

export function checkSshKey(key: string): string | undefined {
  return SSH_KEY.test(key.trim()) ? undefined : 'not an SSH public key (expected a line like "ssh-ed25519 AAAA... comment")';
}

/**
 * A path inside a build source. Absolute paths are read relative to the source (as the original
 * did); anything that climbs out of the source is refused.
 */
export function checkSourceSubpath(path: string): string | undefined {
  const parts = path.split('/').filter((p) => p !== '' && p !== '.');
  let depth = 0;
  for (const part of parts) {
    depth += part === '..' ? -1 : 1;
    if (depth < 0) return `"${path}" leaves the build source; give a path inside it`;
  }
  return undefined;
}

export type BuildSourceKind = 'directory' | 'git' | 'tarball';

export function buildSourceKind(source: string): BuildSourceKind | undefined {
  if (/^git:\/\//.test(source) || /^git@[^:]+:/.test(source) || /\.git\/?$/.test(source)) return 'git';
  if (/\.(?:tar\.gz|tgz)$/.test(source)) {
    if (/^https?:\/\//.test(source) || source.startsWith('/')) return 'tarball';
    return undefined;
  }
  if (source.startsWith('/')) return 'directory';
  return undefined;
}

export function checkBuildSource(source: string): string | undefined {
  return buildSourceKind(source)
    ? undefined
    : `build source "${source}" must be an absolute directory, a git URL (git://… or ….git), or a .tar.gz path or http(s) URL`;
}

/** Levenshtein distance, for "did you mean" hints. */
export function editDistance(a: string, b: string): number {
  const prev = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let diag = prev[0]!;
    prev[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const up = prev[j]!;
      prev[j] = Math.min(up + 1, prev[j - 1]! + 1, diag + (a[i - 1] === b[j - 1] ? 0 : 1));
      diag = up;
    }
  }
  return prev[b.length]!;
}

export function closest(word: string, candidates: readonly string[]): string | undefined {
  const lower = word.toLowerCase();
  let best: string | undefined;
  let bestScore = Infinity;
  for (const candidate of candidates) {
    const score = candidate.toLowerCase() === lower ? 0 : editDistance(lower, candidate.toLowerCase());
    if (score < bestScore) {
      best = candidate;
      bestScore = score;
    }
  }
  const limit = Math.max(2, Math.floor(word.length / 3));
  return bestScore <= limit ? best : undefined;
}

const MAX_HASH_ROUNDS = 500_000;

/** A crypt(3) SHA-512 hash, the one scheme both the host's shadow file and the gateway check. */
export function checkPasswordHash(hash: string): string | undefined {
  const m = /^\$6\$(?:rounds=(\d+)\$)?[./0-9A-Za-z]{1,16}\$[./0-9A-Za-z]{86}$/.exec(hash);
  if (!m) return 'must be a SHA-512 crypt hash ("$6$SALT$HASH"); make one with: openssl passwd -6';
  // Each login attempt costs this many rounds: a huge number would let anyone burn the CPU.
  if (m[1] !== undefined && Number(m[1]) > MAX_HASH_ROUNDS)
    return `uses ${m[1]} rounds, more than ${MAX_HASH_ROUNDS}; make one with: openssl passwd -6`;
  return undefined;
}

/** `500MB`, `2GB`, `10%`: how much of the engine's disk must stay free. */
export function checkFreeSpace(spec: string): string | undefined {
  const m = /^(\d+(?:\.\d+)?)\s*(B|KB|MB|GB|TB|%)$/i.exec(spec.trim());
  if (!m) return 'must be a size like "500MB" or "2GB", or a share like "10%"';
  if (m[2] === '%' && Number(m[1]) >= 100) return 'must be a share below 100%';
  return undefined;
}

export function checkHostname(value: string): string | undefined {
  return HOSTNAME.test(value) && !value.endsWith('.')
    ? undefined
    : `"${value}" is not a host name (letters, digits and "-", dot-separated)`;
}
