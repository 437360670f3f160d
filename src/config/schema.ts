// The config file's schema: the single source of truth for its keys, defaults, documentation
// (descriptions feed `skiff-core config schema`) and TypeScript types.
import { z } from 'zod';
import {
  checkBuildSource,
  checkCapability,
  checkContainerName,
  checkContainerUser,
  checkDomain,
  checkEnv,
  checkHostEntry,
  checkImageRef,
  checkIp,
  checkListenAddress,
  checkMetricsListen,
  checkLoginName,
  checkMount,
  checkRestartPolicy,
  checkSourceSubpath,
  checkSshKey,
  checkPasswordHash,
  checkFreeSpace,
  checkStopSignal,
  checkTmpfsOptions,
  checkTmpfsPath,
  checkHostname,
} from './checks.js';
import { checkDevice, checkMemory, checkUlimit, checkUlimitName } from './limit-checks.js';

type Check = (value: string) => string | undefined;

/** A string that must pass a format check; the check's message becomes the issue. */
function formatted(check: Check) {
  return z.string().check((ctx) => {
    const message = check(ctx.value);
    if (message) ctx.issues.push({ code: 'custom', message, input: ctx.value });
  });
}

/**
 * A map whose keys must pass a check. The check runs even when values have problems (`when`), so
 * one bad key does not hide the errors inside its value; `onKey` makes the loader point at the key.
 */
function keyedRecord<T extends z.ZodType>(check: Check, value: T) {
  return z.record(z.string(), value).check(
    z.superRefine(
      (map, ctx) => {
        if (typeof map !== 'object' || map === null) return;
        for (const key of Object.keys(map)) {
          const message = check(key);
          if (message) ctx.addIssue({ code: 'custom', message, input: key, path: [key], params: { onKey: true } });
        }
      },
      { when: () => true },
    ),
  );
}

const flag = (description: string) => z.boolean().default(false).meta({ description });
const list = <T extends z.ZodType>(item: T, description: string) => z.array(item).default([]).meta({ description });

export const PullPolicy = z.enum(['always', 'ifnotpresent', 'ifbuildfails']).meta({
  description:
    'always: pull on every setup (fall back to a present image if the pull fails); ifnotpresent: pull only when missing; ifbuildfails: build first, pull if the build fails.',
});
export type PullPolicy = z.infer<typeof PullPolicy>;

export const ImagePull = z
  .object({
    pullPolicy: PullPolicy.default('ifnotpresent'),
    registry: z.string().min(1).optional().meta({ description: 'Pull REGISTRY/REF instead of REF, then tag the result as REF.' }),
  })
  .strict()
  .meta({ description: 'How the image is pulled.' });
export type ImagePull = z.infer<typeof ImagePull>;

export const ImageBuild = z
  .object({
    source: formatted(checkBuildSource).meta({
      description: 'An absolute local directory, a git URL (git://… or ….git), or a .tar.gz path or http(s) URL.',
    }),
    root: formatted(checkSourceSubpath).optional().meta({ description: 'Directory inside the source used as the build context.' }),
    dockerfile: formatted(checkSourceSubpath)
      .optional()
      .meta({ description: 'Dockerfile path inside the build root (default: Dockerfile).' }),
    buildArgs: z
      .record(z.string(), z.union([z.string(), z.null()]))
      .default({})
      .meta({ description: 'Build arguments; a null value passes the argument without a value.' }),
    preserveIntermediate: flag('Keep intermediate build containers.'),
    squash: flag('Squash the built layers into one (needs an engine with experimental features).'),
    scratchBuild: flag('Deprecated and ignored: the architecture-rewriting builder of the original.'),
  })
  .strict()
  .meta({ description: 'How the image is built.' });
export type ImageBuild = z.infer<typeof ImageBuild>;

export const Image = z
  .object({
    pull: ImagePull.optional(),
    build: ImageBuild.optional(),
  })
  .strict();
export type Image = z.infer<typeof Image>;

export const Port = z
  .object({
    hostPort: z.int().min(0).max(65535).meta({ description: 'Host TCP port; 0 picks a free one.' }),
    containerPort: z.int().min(1).max(65535).meta({ description: 'Container TCP port.' }),
  })
  .strict();
export type Port = z.infer<typeof Port>;

export const Container = z
  .object({
    image: formatted(checkImageRef).meta({
      description: 'Image reference: a key of `images`, or a plain reference pulled when absent.',
    }),
    tty: flag('Allocate a terminal for PID 1.'),
    workingDirectory: z.string().optional().meta({ description: 'Working directory of PID 1.' }),
    entrypoint: z.array(z.string()).optional().meta({ description: "Entrypoint argv, replacing the image's." }),
    cmd: z.array(z.string()).optional().meta({ description: "Command argv, replacing the image's." }),
    env: list(formatted(checkEnv), 'Environment entries, NAME=VALUE.'),
    mounts: list(formatted(checkMount), 'Bind mounts or volumes, SOURCE:DESTINATION[:OPTIONS] as in docker -v.'),
    disableInit: flag("Do not run the engine's init as PID 1 (set this when PID 1 is systemd)."),
    privileged: flag('Run privileged (all devices and capabilities).'),
    capAdd: list(formatted(checkCapability), 'Capabilities to add, e.g. SYS_ADMIN, or ALL.'),
    securityOpt: list(z.string().min(1), 'Security options, e.g. seccomp=unconfined.'),
    tmpFs: keyedRecord(checkTmpfsPath, formatted(checkTmpfsOptions))
      .default({})
      .meta({ description: 'tmpfs mounts: container path → mount options.' }),
    hostNetwork: flag('Share the host network namespace.'),
    hostIPC: flag('Share the host IPC namespace.'),
    hostPID: flag('Share the host PID namespace.'),
    hostUTS: flag('Share the host UTS namespace (hostname).'),
    dns: list(formatted(checkIp), 'DNS servers.'),
    dnsSearch: list(formatted(checkDomain), 'DNS search domains.'),
    hosts: list(formatted(checkHostEntry), 'Extra /etc/hosts entries, NAME:IP.'),
    ports: list(Port, 'Published TCP ports.'),
    restartPolicy: formatted(checkRestartPolicy)
      .optional()
      .meta({ description: 'no, always, unless-stopped, on-failure or on-failure:N.' }),
    startAfterCreate: flag('Start the container once it is created.'),
    stopSignal: formatted(checkStopSignal).optional().meta({ description: 'Signal that stops PID 1, e.g. RTMIN+3 for systemd.' }),
    hostname: formatted(checkHostname).optional().meta({ description: "The container's host name (an addition to the original format)." }),
    memory: formatted(checkMemory).optional().meta({ description: 'Memory limit, e.g. 512m or 2g, as docker run --memory.' }),
    cpus: z.number().min(0.01).max(1024).optional().meta({ description: 'CPU limit in cores, e.g. 1.5, as docker run --cpus.' }),
    readyCommand: z.array(z.string()).min(1).optional().meta({
      description: 'Argv run in the container that exits 0 once it is ready; gates image updates (with systemd, its state does).',
    }),
    readyTimeoutSec: z
      .int()
      .min(1)
      .optional()
      .meta({ description: "Seconds a new container may take to become ready (default: the daemon's --ready-timeout, 120)." }),
    pidsLimit: z.int().min(1).optional().meta({ description: 'Most processes the container may have (stops fork bombs).' }),
    devices: list(formatted(checkDevice), 'Host devices, HOST[:CONTAINER[:PERMISSIONS]] as in docker run --device.'),
    ulimits: keyedRecord(checkUlimitName, z.union([z.int().min(-1), formatted(checkUlimit)]))
      .default({})
      .meta({ description: 'Resource limits by name (nofile, nproc, core…): SOFT[:HARD], -1 for unlimited.' }),
  })
  .strict();
export type Container = z.infer<typeof Container>;

export const UserAuth = z
  .object({
    copyRootKeys: flag("Also accept the keys in root's authorized_keys."),
    sshKeys: list(formatted(checkSshKey), 'SSH public keys accepted for this user.'),
    password: z.string().optional().meta({ description: 'Login password (plain text; prefer passwordHash). Empty: a random one.' }),
    passwordHash: formatted(checkPasswordHash)
      .optional()
      .meta({ description: 'Login password as a SHA-512 crypt hash (openssl passwd -6), so no plain text is stored.' }),
    allowEmptyPassword: flag('With an empty password, allow logging in without one.'),
    locked: flag('Disable password logins for this user.'),
    agentForwarding: flag(
      'Forward the SSH agent of `ssh -A` logins into the container (SSH_AUTH_SOCK, for that session only). Needs AllowAgentForwarding in sshd.',
    ),
  })
  .strict();
export type UserAuth = z.infer<typeof UserAuth>;

export const User = z
  .object({
    container: formatted(checkContainerName).meta({ description: 'The container this user logs in to.' }),
    containerUser: formatted(checkContainerUser)
      .optional()
      .meta({ description: 'User inside the container; empty means the image default.' }),
    containerShell: z
      .array(z.string().min(1))
      .min(1)
      .optional()
      .meta({ description: "Shell argv inside the container (default: the user's shell there, else /bin/sh)." }),
    createContainerUser: flag('Create the container user (with a home directory) when missing.'),
    auth: UserAuth.optional().meta({ description: 'How the user authenticates to the host (SSH keys, password).' }),
  })
  .strict();
export type User = z.infer<typeof User>;

export const Gateway = z
  .object({
    listen: z
      .array(formatted(checkListenAddress))
      .default([])
      .meta({ description: 'Addresses the built-in SSH server listens on, HOST:PORT (e.g. 0.0.0.0:2222). Empty: off.' }),
    hostKey: z
      .string()
      .optional()
      .meta({ description: 'Host key file (created on first start, mode 0600); default: ssh_host_ed25519_key beside the config.' }),
    maxSessionsPerUser: z.int().min(1).default(16).meta({ description: 'Concurrent sessions one user may have.' }),
    authTimeoutSec: z.int().min(1).default(30).meta({ description: 'Seconds a connection may take to authenticate.' }),
    idleTimeoutSec: z.int().min(0).default(0).meta({ description: 'Close connections idle this long (0: never).' }),
    maxAuthFailures: z
      .int()
      .min(1)
      .default(10)
      .meta({ description: 'Failed authentications one source address may make per minute before it is refused.' }),
  })
  .strict()
  .meta({ description: 'Built-in SSH server (an addition to the original format): users log in with their keys without host accounts.' });
export type Gateway = z.infer<typeof Gateway>;

export const Storage = z
  .object({
    keepSnapshots: z.int().min(1).default(3).meta({
      description: 'Snapshots kept per container (each config change that recreates a container makes one); older ones are removed.',
    }),
    minFree: formatted(checkFreeSpace).default('1GB').meta({
      description: 'Free space the engine\'s data root must keep ("500MB", "2GB" or "10%"): below it no pull, build or snapshot starts.',
    }),
  })
  .strict()
  .meta({ description: "How much of the engine's disk skiff-core may use (an addition to the original format)." });
export type Storage = z.infer<typeof Storage>;
export const DEFAULT_STORAGE: Storage = Storage.parse({});

export const Metrics = z
  .object({
    listen: formatted(checkMetricsListen).meta({
      description: 'Where the Prometheus endpoint (GET /metrics) listens: HOST:PORT (e.g. 127.0.0.1:9120) or a Unix socket path.',
    }),
  })
  .strict()
  .meta({ description: 'Prometheus metrics (an addition to the original format); off unless listen is set.' });
export type Metrics = z.infer<typeof Metrics>;

export const Config = z
  .object({
    containers: keyedRecord(checkContainerName, Container).default({}).meta({ description: 'Containers, by name.' }),
    users: keyedRecord(checkLoginName, User).default({}).meta({ description: 'Host users, by login name.' }),
    images: keyedRecord(checkImageRef, Image).default({}).meta({ description: 'Images, by exact name:tag.' }),
    gateway: Gateway.optional(),
    storage: Storage.optional(),
    metrics: Metrics.optional(),
  })
  .strict()
  .meta({ title: 'skiff-core configuration' });
export type Config = z.infer<typeof Config>;

/** JSON Schema of the file as a person writes it (defaults make keys optional). */
export function configJsonSchema(): Record<string, unknown> {
  return z.toJSONSchema(Config, { io: 'input', target: 'draft-2020-12' }) as Record<string, unknown>;
}
