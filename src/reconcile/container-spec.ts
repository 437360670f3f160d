// The create body a configured container maps to, and the hash that detects drift from it.
import { createHash } from 'node:crypto';
import { parseDevice, parseMemory, parseUlimit } from '../config/limit-checks.js';
import type { Container } from '../config/schema.js';
import type { ContainerCreateBody, RestartPolicy } from '../engine/engine.js';
import { LABEL } from './labels.js';

/** Bump when the mapping below changes meaning, so existing containers are recreated once. */
const MAPPING_VERSION = 1;

export interface ContainerSpec {
  /** What the engine is asked to create, labels excluded (they depend on the run). */
  body: ContainerCreateBody;
  hash: string;
}

export function containerSpec(name: string, c: Container): ContainerSpec {
  const host: NonNullable<ContainerCreateBody['HostConfig']> = {
    Binds: c.mounts,
    Tmpfs: c.tmpFs,
    Privileged: c.privileged,
    CapAdd: c.capAdd,
    SecurityOpt: c.securityOpt,
    Dns: c.dns,
    DnsSearch: c.dnsSearch,
    ExtraHosts: c.hosts,
    // The engine's own init (docker-init) rather than the original's bind of /usr/bin/tini.
    Init: !c.disableInit,
  };
  if (c.hostNetwork) host.NetworkMode = 'host';
  if (c.hostIPC) host.IpcMode = 'host';
  if (c.hostPID) host.PidMode = 'host';
  if (c.hostUTS) host.UTSMode = 'host';
  if (c.restartPolicy) host.RestartPolicy = restartPolicy(c.restartPolicy);
  // Limits and devices appear only when set, so configs without them keep their spec hash.
  if (c.memory) host.Memory = parseMemory(c.memory)!;
  if (c.cpus) host.NanoCpus = Math.round(c.cpus * 1e9);
  if (c.pidsLimit) host.PidsLimit = c.pidsLimit;
  if (c.devices.length > 0) host.Devices = c.devices.map((d) => parseDevice(d)!);
  const ulimits = Object.entries(c.ulimits);
  if (ulimits.length > 0) host.Ulimits = ulimits.map(([Name, value]) => ({ Name, ...parseUlimit(value)! }));

  const body: ContainerCreateBody = { Image: c.image, Env: c.env, Tty: c.tty, HostConfig: host };
  if (c.entrypoint) body.Entrypoint = c.entrypoint;
  if (c.cmd) body.Cmd = c.cmd;
  if (c.workingDirectory) body.WorkingDir = c.workingDirectory;
  if (c.stopSignal) body.StopSignal = normalizeSignal(c.stopSignal);
  if (c.hostname) body.Hostname = c.hostname;
  if (c.ports.length > 0) {
    body.ExposedPorts = {};
    host.PortBindings = {};
    for (const { hostPort, containerPort } of c.ports) {
      const key = `${containerPort}/tcp`;
      body.ExposedPorts[key] = {};
      // An empty HostPort asks the engine for a free one.
      (host.PortBindings[key] ??= []).push({ HostPort: hostPort === 0 ? '' : String(hostPort) });
    }
  }
  return { body, hash: hashOf(name, body) };
}

/** The body with the labels that mark it ours; `image` replaces the reference (e.g. a snapshot). */
export function labelledBody(name: string, spec: ContainerSpec, opts: { baseImageId: string; image?: string }): ContainerCreateBody {
  return {
    ...spec.body,
    Image: opts.image ?? spec.body.Image,
    Labels: {
      [LABEL.managed]: 'true',
      [LABEL.container]: name,
      [LABEL.specHash]: spec.hash,
      [LABEL.imageRef]: spec.body.Image,
      [LABEL.baseImageId]: opts.baseImageId,
    },
  };
}

function restartPolicy(policy: string): RestartPolicy {
  const [name, count] = policy.split(':');
  if (name === 'on-failure') return { Name: 'on-failure', MaximumRetryCount: count ? Number(count) : 0 };
  return { Name: name as RestartPolicy['Name'] };
}

/** `SIGRTMIN+3`, `rtmin+3` and `RTMIN+3` are one signal; write it the way the engine prints it. */
function normalizeSignal(signal: string): string {
  if (/^\d+$/.test(signal)) return signal;
  const upper = signal.toUpperCase();
  return upper.startsWith('SIG') ? upper : `SIG${upper}`;
}

function hashOf(name: string, body: ContainerCreateBody): string {
  return createHash('sha256')
    .update(canonicalJson({ v: MAPPING_VERSION, name, body }))
    .digest('hex');
}

/** JSON with object keys sorted, so equal specs hash equally whatever their key order. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value && typeof value === 'object') {
    const entries = Object.entries(value)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
  }
  return JSON.stringify(value);
}
