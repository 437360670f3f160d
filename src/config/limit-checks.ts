// Formats of the container limits and devices: docker run's own (--memory, --device, --ulimit).
import { closest } from './checks.js';

const SIZE_UNITS: Record<string, number> = { '': 1, b: 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3 };
/** Docker's smallest memory limit. */
const MIN_MEMORY = 6 * 1024 ** 2;

/** "2g", "512m", "65536k" or bytes, as docker run --memory takes them; undefined when invalid. */
export function parseMemory(value: string): number | undefined {
  const m = /^(\d+(?:\.\d+)?)([bkmg]?)$/i.exec(value.trim());
  if (!m) return undefined;
  return Math.floor(Number(m[1]) * SIZE_UNITS[m[2]!.toLowerCase()]!);
}

export function checkMemory(value: string): string | undefined {
  const bytes = parseMemory(value);
  if (bytes === undefined) return `"${value}" is not a size (e.g. 512m or 2g)`;
  if (bytes < MIN_MEMORY) return `"${value}" is below the engine's smallest memory limit, 6m`;
  return undefined;
}

/** HOST[:CONTAINER[:PERMISSIONS]] as in docker run --device. */
export function parseDevice(value: string): { PathOnHost: string; PathInContainer: string; CgroupPermissions: string } | undefined {
  const [host, container, perms, ...rest] = value.split(':');
  if (!host || rest.length > 0) return undefined;
  const inContainer = container || host;
  const permissions = perms ?? 'rwm';
  if (!host.startsWith('/') || !inContainer.startsWith('/') || !/^[rwm]{1,3}$/.test(permissions)) return undefined;
  if (new Set(permissions).size !== permissions.length) return undefined;
  return { PathOnHost: host, PathInContainer: inContainer, CgroupPermissions: permissions };
}

export function checkDevice(value: string): string | undefined {
  return parseDevice(value) ? undefined : `"${value}" is not HOST[:CONTAINER[:PERMISSIONS]] (e.g. /dev/ttyUSB0:/dev/ttyUSB0:rwm)`;
}

export const ULIMIT_NAMES = [
  'as',
  'core',
  'cpu',
  'data',
  'fsize',
  'locks',
  'memlock',
  'msgqueue',
  'nice',
  'nofile',
  'nproc',
  'rss',
  'rtprio',
  'rttime',
  'sigpending',
  'stack',
] as const;

export function checkUlimitName(name: string): string | undefined {
  if ((ULIMIT_NAMES as readonly string[]).includes(name)) return undefined;
  const hint = closest(name, [...ULIMIT_NAMES]);
  return `unknown limit "${name}"${hint ? `; did you mean "${hint}"?` : ` (known: ${ULIMIT_NAMES.join(', ')})`}`;
}

/** SOFT[:HARD] (-1: unlimited); a single number sets both. */
export function parseUlimit(value: string | number): { Soft: number; Hard: number } | undefined {
  const [soft, hard, ...rest] = String(value).split(':');
  const n = (s: string | undefined) => (s !== undefined && /^-?\d+$/.test(s) && Number(s) >= -1 ? Number(s) : undefined);
  const s = n(soft);
  const h = hard === undefined ? s : n(hard);
  if (rest.length || s === undefined || h === undefined) return undefined;
  if (s !== -1 && h !== -1 && s > h) return undefined;
  if (s === -1 && h !== -1) return undefined;
  return { Soft: s, Hard: h };
}

export function checkUlimit(value: string): string | undefined {
  return parseUlimit(value) ? undefined : `"${value}" is not SOFT[:HARD] with SOFT at most HARD (-1: unlimited)`;
}
