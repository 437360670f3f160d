// The container engine as the rest of skiff-core sees it. Only src/engine/docker-engine.ts
// implements it against Docker; everything else (the reconciler, sessions, tests' fakes) talks
// to this interface.
//
// Error contract (SkiffError codes from src/errors.ts), for every method unless stated:
// - ENGINE_UNREACHABLE: the engine's socket cannot be reached (message names the socket);
// - ENGINE_NOT_FOUND: HTTP 404 (the container/image does not exist);
// - ENGINE_CONFLICT: HTTP 409 (name in use, container running, image in use…);
// - ENGINE_ERROR: any other engine failure, with the engine's own message;
// - CANCELLED: the call's AbortSignal fired.
// Engine data is parsed leniently: missing fields become empty values, never exceptions.

import type { BuildProgress, PullProgress } from './progress.js';

export type { BuildProgress, LayerProgress, PullProgress } from './progress.js';

/** Every method accepts an AbortSignal; aborting rejects with SkiffError CANCELLED. */
export interface CallOptions {
  signal?: AbortSignal;
}

export interface EngineVersion {
  /** Engine version, e.g. `20.10.24+dfsg1`. */
  version: string;
  /** Highest API version the engine speaks, e.g. `1.41`. */
  apiVersion: string;
  /** Whether the daemon runs with experimental features (needed for squash). */
  experimental: boolean;
  /** The engine's platform in Go's terms (`linux`, `amd64`/`arm64`/`arm`…), as images name it. */
  os: string;
  arch: string;
}

export interface ImageInfo {
  /** `sha256:…` image id. */
  id: string;
  /** `name:tag` references pointing at the image (no `<none>:<none>`). */
  repoTags: string[];
  /** `name@sha256:…` references, for images that came from a registry. */
  repoDigests: string[];
  labels: Record<string, string>;
  /** Creation time, ISO 8601. */
  created: string;
  /** Bytes (all layers), as the engine reports it. */
  size: number;
  /** Platform (`amd64`, `arm64`…); inspect only, lists leave it out. */
  architecture?: string;
  os?: string;
  variant?: string;
}

export interface ImageFilter {
  /** `key` or `key=value`; all must match. */
  label?: string[];
  /** A reference pattern as the engine understands it, e.g. `skiffos/*` or `ubuntu:22.04`. */
  reference?: string;
}

export interface PullOptions extends CallOptions {
  /** Called after each progress object with the aggregated progress so far. */
  onProgress?: (progress: PullProgress) => void;
}

export interface BuildOptions extends CallOptions {
  /** A tar stream of the build context (see packBuildContext). */
  context: NodeJS.ReadableStream;
  /** The `name:tag` to give the image. */
  tag: string;
  /** Dockerfile path inside the context; default `Dockerfile`. */
  dockerfile?: string;
  /** Build arguments; `null` declares the argument without a value (the Dockerfile's default applies). */
  buildArgs?: Record<string, string | null>;
  /** Squash the new layers into one; needs an experimental engine (else ENGINE_NOT_SUPPORTED). */
  squash?: boolean;
  /** Keep intermediate containers (rm/forcerm false). By default they are removed even on failure. */
  preserveIntermediate?: boolean;
  /** Labels set on the resulting image. */
  labels?: Record<string, string>;
  onProgress?: (event: BuildProgress) => void;
}

export interface ContainerSummary {
  id: string;
  /** Names without the leading `/`. */
  names: string[];
  /** The image as the container was created with (a reference, or an id). */
  image: string;
  imageId: string;
  /** `created`, `running`, `paused`, `restarting`, `removing`, `exited` or `dead`. */
  state: string;
  labels: Record<string, string>;
}

export interface ContainerState {
  status: string;
  running: boolean;
  restarting: boolean;
  /** Frozen (docker pause, or a commit that was interrupted while it held the pause). */
  paused: boolean;
  exitCode: number;
  /** ISO 8601; undefined when the container never started/finished. */
  startedAt: string | undefined;
  finishedAt: string | undefined;
  /** The engine's error for the last start attempt (e.g. a runc failure); empty when none. */
  error: string;
  /** Host PID of the main process; 0 when not running. */
  pid: number;
  oomKilled: boolean;
}

export interface RestartPolicy {
  Name: '' | 'no' | 'always' | 'on-failure' | 'unless-stopped';
  MaximumRetryCount?: number;
}

export interface ContainerInfo {
  id: string;
  /** Name without the leading `/`. */
  name: string;
  /** `sha256:…` id of the image the container runs. */
  imageId: string;
  created: string;
  state: ContainerState;
  restartCount: number;
  /** Same as config.labels. */
  labels: Record<string, string>;
  config: {
    /** The reference the container was created from, as given. */
    image: string;
    env: string[];
    /** Empty when the image default applies. */
    user: string;
    tty: boolean;
    openStdin: boolean;
    workingDir: string;
    entrypoint: string[];
    cmd: string[];
    hostname: string;
    stopSignal: string | undefined;
    labels: Record<string, string>;
  };
  hostConfig: {
    binds: string[];
    privileged: boolean;
    capAdd: string[];
    securityOpt: string[];
    networkMode: string;
    ipcMode: string;
    pidMode: string;
    utsMode: string;
    dns: string[];
    dnsSearch: string[];
    extraHosts: string[];
    tmpfs: Record<string, string>;
    restartPolicy: { name: string; maximumRetryCount: number };
    init: boolean | undefined;
  };
}

export interface PortBinding {
  HostIp?: string;
  HostPort?: string;
}

export interface MountSpec {
  Type: 'bind' | 'volume' | 'tmpfs';
  Source?: string;
  Target: string;
  ReadOnly?: boolean;
}

/**
 * The subset of the engine's container-create body skiff-core sets, with the engine's own field
 * names so it can be sent as is.
 */
export interface ContainerCreateBody {
  Image: string;
  Entrypoint?: string[];
  Cmd?: string[];
  Env?: string[];
  Tty?: boolean;
  OpenStdin?: boolean;
  WorkingDir?: string;
  User?: string;
  Labels?: Record<string, string>;
  StopSignal?: string;
  /** Keys like `22/tcp`, values `{}`. */
  ExposedPorts?: Record<string, Record<string, never>>;
  Hostname?: string;
  HostConfig?: {
    Binds?: string[];
    Mounts?: MountSpec[];
    /** Path to mount options, e.g. `{ "/run": "rw,size=64m" }`. */
    Tmpfs?: Record<string, string>;
    Privileged?: boolean;
    CapAdd?: string[];
    SecurityOpt?: string[];
    NetworkMode?: string;
    IpcMode?: string;
    PidMode?: string;
    UTSMode?: string;
    Dns?: string[];
    DnsSearch?: string[];
    /** `name:IP` entries for /etc/hosts. */
    ExtraHosts?: string[];
    PortBindings?: Record<string, PortBinding[]>;
    RestartPolicy?: RestartPolicy;
    Init?: boolean;
    /** Bytes. */
    Memory?: number;
    NanoCpus?: number;
    PidsLimit?: number;
    Devices?: { PathOnHost: string; PathInContainer: string; CgroupPermissions: string }[];
    Ulimits?: { Name: string; Soft: number; Hard: number }[];
  };
}

export interface ExecResult {
  exitCode: number;
  stdout: string;
  stderr: string;
}

export interface ExecOptions extends CallOptions {
  /** `user`, `user:group` or uid; default: the container's user. */
  user?: string;
  /** Extra `K=V` variables. */
  env?: string[];
  /**
   * Gives up after this long with SkiffError TIMEOUT. The engine cannot kill an exec'd process,
   * so the command may keep running in the container.
   */
  timeoutMs?: number;
}

export interface CommitOptions extends CallOptions {
  repo: string;
  tag: string;
  /** Merged into the labels the image inherits from the container's config. */
  labels?: Record<string, string>;
  comment?: string;
  /** Pause the container while committing (the engine default, consistent for running systems). */
  pause?: boolean;
  /**
   * Give the image the config (Env, Cmd, Entrypoint, WorkingDir, User, …) of this image instead
   * of the container's, so nothing the container was created with is baked in; `labels` still apply.
   */
  configFrom?: string;
}

export interface EngineEvent {
  /** `container`, `image`, `network`, `volume`, `daemon`… */
  type: string;
  /** `create`, `start`, `die`, `destroy`, `exec_start: …`, `health_status: healthy`… */
  action: string;
  /** Actor id: a container id, an image reference… */
  id: string;
  /** The actor's `name` attribute when it has one (container name, image name). */
  name: string | undefined;
  attributes: Record<string, string>;
  time: Date;
}

export interface EventsOptions extends CallOptions {
  /** Replay events since this time (the engine keeps a short history). */
  since?: Date;
  /** Engine filters, e.g. `{ type: ['container'], label: ['skiff-core.managed=true'] }`. */
  filters?: Record<string, string[]>;
}

export interface ExecSessionOptions extends CallOptions {
  /** `user`, `user:group` or uid; default: the container's user. */
  user?: string;
  env?: string[];
  tty: boolean;
  workingDir?: string;
  /** Initial terminal size (applied right after start; API 1.41 has no size at create). */
  cols?: number;
  rows?: number;
}

/** The exec's state as the engine reports it. */
export interface ExecState {
  running: boolean;
  /** null while running. */
  exitCode: number | null;
  /** Host PID of the exec's process (0 once it has exited): a root process may signal it. */
  pid: number;
  /** The container the exec runs in. */
  containerId: string;
}

/** What the daemon can do with an exec it no longer holds the connection of. */
export interface ExecControl {
  execId: string;
  resize(cols: number, rows: number): Promise<void>;
  inspect(): Promise<ExecState>;
}

/**
 * A running exec attached both ways. `stream` carries raw bytes both ways with a TTY; without
 * one, what comes out is the engine's multiplexed stdio frames (see stdio-frames.ts) and what
 * goes in is raw stdin. Ending the stream's writable side closes the process's stdin.
 */
export interface ExecSession extends ExecControl {
  stream: import('node:stream').Duplex;
}

export interface Engine {
  /** Engine version and capabilities; the cheapest call that proves the engine answers. */
  ping(options?: CallOptions): Promise<EngineVersion>;

  /** The image a reference or id names, or undefined when the engine has no such image. */
  inspectImage(ref: string, options?: CallOptions): Promise<ImageInfo | undefined>;
  listImages(filter?: ImageFilter, options?: CallOptions): Promise<ImageInfo[]>;
  /**
   * Pulls `ref` (tag defaults to `latest`; digests are honoured) and returns the pulled image.
   * An error inside the progress stream, or an image still missing afterwards, is PULL_FAILED
   * with the registry's message; so is a refusal by the engine before streaming.
   */
  pullImage(ref: string, options?: PullOptions): Promise<ImageInfo>;
  /** Points `targetRef` (a `name:tag`) at the image `sourceRef` names. */
  tagImage(sourceRef: string, targetRef: string, options?: CallOptions): Promise<void>;
  removeImage(ref: string, options?: CallOptions & { force?: boolean }): Promise<void>;
  /**
   * Builds with the engine's classic builder and returns the tagged image. A failing step is
   * BUILD_FAILED with the engine's message and the last lines of output; `squash` on an engine
   * without experimental features is ENGINE_NOT_SUPPORTED.
   */
  buildImage(options: BuildOptions): Promise<ImageInfo>;

  /** Containers, stopped ones included unless `all` is false; `labels` as for ImageFilter. */
  listContainers(options?: CallOptions & { all?: boolean; labels?: string[] }): Promise<ContainerSummary[]>;
  inspectContainer(nameOrId: string, options?: CallOptions): Promise<ContainerInfo | undefined>;
  /** Creates the container and returns its id. A name in use is ENGINE_CONFLICT. */
  createContainer(name: string, body: ContainerCreateBody, options?: CallOptions): Promise<string>;
  /** Starting a running container is a success. A failing runtime (runc) is ENGINE_ERROR. */
  startContainer(id: string, options?: CallOptions): Promise<void>;
  /** Stops with the container's stop signal, then SIGKILL after `timeoutSec`; stopped is a success. */
  stopContainer(id: string, options?: CallOptions & { timeoutSec?: number }): Promise<void>;
  /** `volumes` also removes the container's anonymous volumes. */
  removeContainer(id: string, options?: CallOptions & { force?: boolean; volumes?: boolean }): Promise<void>;
  renameContainer(id: string, newName: string, options?: CallOptions): Promise<void>;
  /** Resumes a paused container; one that is not paused is a success. */
  unpauseContainer(id: string, options?: CallOptions): Promise<void>;
  /** Where the engine keeps images and containers (`GET /info`, DockerRootDir), when it says. */
  dataRoot(options?: CallOptions): Promise<string | undefined>;
  /**
   * `docker save` of `refs` (one archive, shared layers once): the engine's tar stream. A ref the
   * engine does not have is ENGINE_NOT_FOUND before any byte arrives.
   */
  saveImages(refs: string[], options?: CallOptions): Promise<NodeJS.ReadableStream>;
  /** `docker load` of such an archive; resolves with the `name:tag` references it loaded. */
  loadImages(archive: NodeJS.ReadableStream, options?: CallOptions): Promise<string[]>;
  /** Commits the container's filesystem as `repo:tag`; returns the new image id. */
  commitContainer(id: string, options: CommitOptions): Promise<string>;
  /** The last `tail` lines of the container's log (all when omitted), stdout and stderr interleaved. */
  containerLogs(id: string, options?: CallOptions & { tail?: number }): Promise<string>;
  /** Runs a command without a TTY and collects its output and exit code. */
  execRun(id: string, cmd: string[], options?: ExecOptions): Promise<ExecResult>;

  /**
   * The engine's event stream. It ends when the engine closes the stream (e.g. the daemon
   * restarts) and when the signal aborts; the caller resubscribes, with `since` to catch up.
   * A broken connection throws ENGINE_UNREACHABLE.
   */
  events(options?: EventsOptions): AsyncIterable<EngineEvent>;

  /** Starts `cmd` in a running container, attached for an interactive or streaming session. */
  execSession(id: string, cmd: string[], options: ExecSessionOptions): Promise<ExecSession>;
  /** Resize and inspect an existing exec by id (a session handed to its client). */
  execControl(execId: string): ExecControl;
}
