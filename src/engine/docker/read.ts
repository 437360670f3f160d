// Lenient readers of what the engine answers, and the paths it is asked on: anything unexpected
// in an answer becomes an empty value rather than an exception.
import type { ContainerInfo, ContainerSummary, EngineEvent, ImageInfo } from '../engine.js';

// Lenient readers for engine data: anything unexpected becomes an empty value.
export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
export function rec(value: unknown): Record<string, unknown> {
  return isRecord(value) ? value : {};
}
export function str(value: unknown): string {
  return typeof value === 'string' ? value : '';
}
export function optStr(value: unknown): string | undefined {
  return typeof value === 'string' && value !== '' ? value : undefined;
}
export function num(value: unknown): number {
  return typeof value === 'number' && Number.isFinite(value) ? value : 0;
}
function bool(value: unknown): boolean {
  return value === true;
}
function strArr(value: unknown): string[] {
  return Array.isArray(value) ? value.filter((v): v is string => typeof v === 'string') : [];
}
function strRecord(value: unknown): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(rec(value))) if (typeof v === 'string') out[k] = v;
  return out;
}
/** The engine's zero time (`0001-01-01T00:00:00Z`) means "never". */
function time(value: unknown): string | undefined {
  const text = optStr(value);
  return text === undefined || text.startsWith('0001-01-01') ? undefined : text;
}

export function parseImage(raw: unknown): ImageInfo {
  const image = rec(raw);
  const created = image['Created'];
  return {
    id: str(image['Id']),
    repoTags: strArr(image['RepoTags']).filter((t) => t !== '<none>:<none>'),
    repoDigests: strArr(image['RepoDigests']).filter((d) => d !== '<none>@<none>'),
    labels: strRecord(isRecord(image['Config']) ? image['Config']['Labels'] : image['Labels']),
    size: num(image['Size']),
    ...(typeof image['Architecture'] === 'string' ? { architecture: image['Architecture'] } : {}),
    ...(typeof image['Os'] === 'string' ? { os: image['Os'] } : {}),
    ...(typeof image['Variant'] === 'string' && image['Variant'] ? { variant: image['Variant'] } : {}),
    created:
      typeof created === 'number'
        ? new Date(created * 1000).toISOString()
        : typeof created === 'string'
          ? created
          : new Date(0).toISOString(),
  };
}

export function parseContainerSummary(raw: unknown): ContainerSummary {
  const c = rec(raw);
  return {
    id: str(c['Id']),
    names: strArr(c['Names']).map((n) => n.replace(/^\//, '')),
    image: str(c['Image']),
    imageId: str(c['ImageID']),
    state: str(c['State']),
    labels: strRecord(c['Labels']),
  };
}

export function parseContainer(raw: unknown): ContainerInfo {
  const c = rec(raw);
  const state = rec(c['State']);
  const config = rec(c['Config']);
  const host = rec(c['HostConfig']);
  const restart = rec(host['RestartPolicy']);
  const labels = strRecord(config['Labels']);
  return {
    id: str(c['Id']),
    name: str(c['Name']).replace(/^\//, ''),
    imageId: str(c['Image']),
    created: str(c['Created']),
    state: {
      status: str(state['Status']),
      running: bool(state['Running']),
      restarting: bool(state['Restarting']),
      paused: bool(state['Paused']),
      exitCode: num(state['ExitCode']),
      startedAt: time(state['StartedAt']),
      finishedAt: time(state['FinishedAt']),
      error: str(state['Error']),
      pid: num(state['Pid']),
      oomKilled: bool(state['OOMKilled']),
    },
    restartCount: num(c['RestartCount']),
    labels,
    config: {
      image: str(config['Image']),
      env: strArr(config['Env']),
      user: str(config['User']),
      tty: bool(config['Tty']),
      openStdin: bool(config['OpenStdin']),
      workingDir: str(config['WorkingDir']),
      entrypoint: strArr(config['Entrypoint']),
      cmd: strArr(config['Cmd']),
      hostname: str(config['Hostname']),
      stopSignal: optStr(config['StopSignal']),
      labels,
    },
    hostConfig: {
      binds: strArr(host['Binds']),
      privileged: bool(host['Privileged']),
      capAdd: strArr(host['CapAdd']),
      securityOpt: strArr(host['SecurityOpt']),
      networkMode: str(host['NetworkMode']),
      ipcMode: str(host['IpcMode']),
      pidMode: str(host['PidMode']),
      utsMode: str(host['UTSMode']),
      dns: strArr(host['Dns']),
      dnsSearch: strArr(host['DnsSearch']),
      extraHosts: strArr(host['ExtraHosts']),
      tmpfs: strRecord(host['Tmpfs']),
      restartPolicy: { name: str(restart['Name']), maximumRetryCount: num(restart['MaximumRetryCount']) },
      init: typeof host['Init'] === 'boolean' ? host['Init'] : undefined,
    },
  };
}

export function parseEvent(raw: unknown): EngineEvent | undefined {
  const e = rec(raw);
  const actor = rec(e['Actor']);
  const action = str(e['Action']) || str(e['status']);
  if (action === '') return undefined;
  const attributes = strRecord(actor['Attributes']);
  const nanos = e['timeNano'];
  const seconds = e['time'];
  const ms = typeof nanos === 'number' ? Math.floor(nanos / 1e6) : typeof seconds === 'number' ? seconds * 1000 : Date.now();
  return {
    type: str(e['Type']) || 'container',
    action,
    id: str(actor['ID']) || str(e['id']),
    name: attributes['name'],
    attributes,
    time: new Date(ms),
  };
}

/** `since` in the engine's `seconds.nanoseconds` form. */
export function engineTime(date: Date): string {
  const ms = date.getTime();
  const seconds = Math.floor(ms / 1000);
  return `${seconds}.${String((ms - seconds * 1000) * 1_000_000).padStart(9, '0')}`;
}

/** Image references keep their `/` and `:` in the path (the engine's router expects them raw). */
export function imagePath(ref: string, suffix = ''): string {
  return `/images/${ref.replace(/[^A-Za-z0-9._:/@+-]/g, encodeURIComponent)}${suffix}`;
}

export function containerPath(id: string, suffix = ''): string {
  return `/containers/${encodeURIComponent(id)}${suffix}`;
}
