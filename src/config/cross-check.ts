// Checks that relate one part of the config to another. They read the raw data defensively so
// they still run (and report) when the schema found problems elsewhere in the file.
import { closest } from './checks.js';
import type { ConfigPath, Diagnostic, Position } from './diagnostics.js';
import { normalizeImageRef, withRegistry } from '../engine/image-ref.js';
import { errorMessage } from '../errors.js';

type Locate = (path: ConfigPath, onKey?: boolean) => Position | undefined;

function record(value: unknown): Record<string, unknown> | undefined {
  return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;
}

function entries(value: unknown): [string, Record<string, unknown>][] {
  return Object.entries(record(value) ?? {}).filter(
    (e): e is [string, Record<string, unknown>] => typeof e[1] === 'object' && e[1] !== null && !Array.isArray(e[1]),
  );
}

function strings(value: unknown): string[] {
  return Array.isArray(value) ? value.filter((v): v is string => typeof v === 'string') : [];
}

function safeNormalize(ref: string): string {
  try {
    return normalizeImageRef(ref);
  } catch {
    return ref;
  }
}

export function crossCheck(data: Record<string, unknown>, fileOf: (path: ConfigPath) => string, locate: Locate): Diagnostic[] {
  const out: Diagnostic[] = [];
  const report = (severity: Diagnostic['severity'], path: ConfigPath, message: string, onKey = false) => {
    const position = locate(path, onKey);
    out.push({ severity, file: fileOf(path), path, message, ...(position ? { position } : {}) });
  };

  const containers = entries(data.containers);
  const containerNames = containers.map(([name]) => name);
  const imageKeys = entries(data.images).map(([ref]) => ref);
  const normalizedImages = new Set(imageKeys.map(safeNormalize));

  for (const [user, spec] of entries(data.users)) {
    const target = spec.container;
    if (typeof target !== 'string' || containerNames.includes(target)) continue;
    const hint = closest(target, containerNames);
    report(
      'error',
      ['users', user, 'container'],
      `no container named "${target}" in containers` +
        (hint ? `; did you mean "${hint}"?` : containerNames.length ? ` (defined: ${containerNames.join(', ')})` : ''),
    );
  }

  for (const [ref, image] of entries(data.images)) {
    const registry = record(image.pull)?.registry;
    if (typeof registry !== 'string') continue;
    try {
      withRegistry(registry, ref);
    } catch (err) {
      report('error', ['images', ref, 'pull', 'registry'], errorMessage(err));
    }
  }

  const hostPorts = new Map<number, string>();
  for (const [name, spec] of containers) {
    const base = ['containers', name];
    if (typeof spec.image === 'string' && !normalizedImages.has(safeNormalize(spec.image))) {
      const hint = closest(spec.image, imageKeys);
      if (hint) {
        report('warning', [...base, 'image'], `"${spec.image}" is not in images and will be pulled as is; did you mean "${hint}"?`);
      }
    }

    // The engine refuses two mounts on one destination; say so before it does.
    const seen = new Map<string, ConfigPath>();
    const destinations: [string, ConfigPath][] = [
      ...strings(spec.mounts).map((m, i): [string, ConfigPath] => [m.split(':')[1] ?? '', [...base, 'mounts', i]]),
      ...Object.keys(record(spec.tmpFs) ?? {}).map((p): [string, ConfigPath] => [p, [...base, 'tmpFs', p]]),
    ];
    for (const [dest, path] of destinations) {
      const clean = dest.replace(/\/+$/, '') || '/';
      const first = seen.get(clean);
      if (first) {
        report('error', path, `"${clean}" is already mounted (${first.slice(2).join('.')}); mount it once`, path[2] === 'tmpFs');
      } else seen.set(clean, path);
    }

    if (typeof spec.hostname === 'string' && (spec.hostUTS === true || spec.hostNetwork === true)) {
      const shared = spec.hostUTS === true ? 'hostUTS' : 'hostNetwork';
      report('error', [...base, 'hostname'], `a hostname cannot be set with ${shared}: the container uses the host's; remove one of them`);
    }

    const ports = Array.isArray(spec.ports) ? spec.ports : [];
    if (spec.hostNetwork === true && ports.length > 0) {
      report('warning', [...base, 'ports'], "ports have no effect with hostNetwork: the container already uses the host's ports");
    }
    ports.forEach((port: unknown, i: number) => {
      const hostPort = (port as { hostPort?: unknown } | null)?.hostPort;
      if (typeof hostPort !== 'number' || hostPort === 0) return;
      const owner = hostPorts.get(hostPort);
      if (owner) report('error', [...base, 'ports', i, 'hostPort'], `host port ${hostPort} is already published by container "${owner}"`);
      else hostPorts.set(hostPort, name);
    });
  }

  for (const [user, spec] of entries(data.users)) {
    const auth = record(spec.auth);
    if (!auth) continue;
    const path = ['users', user, 'auth'];
    if (auth.allowEmptyPassword === true && typeof auth.password === 'string' && auth.password !== '') {
      report('warning', [...path, 'allowEmptyPassword'], 'has no effect: a password is set');
    }
    if (auth.locked === true && typeof auth.password === 'string' && auth.password !== '') {
      report('warning', [...path, 'password'], 'is not used: the account is locked for password logins');
    }
    if (typeof auth.passwordHash === 'string') {
      if (typeof auth.password === 'string' && auth.password !== '')
        report('error', [...path, 'passwordHash'], 'and password are both set; keep one (passwordHash stores no plain text)');
      if (auth.locked === true) report('warning', [...path, 'passwordHash'], 'is not used: the account is locked for password logins');
      if (auth.allowEmptyPassword === true) report('warning', [...path, 'allowEmptyPassword'], 'has no effect: a password hash is set');
    }
  }
  return out;
}
