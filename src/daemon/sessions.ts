// The daemon's side of logins: waits for a user's container with live progress, resolves the
// container user's shell and home, counts attached sessions, and hands the rest to the relay.
import type { Config } from '../config/schema.js';
import type { Engine } from '../engine/engine.js';
import { normalizeImageRef } from '../engine/image-ref.js';
import { errorMessage, SkiffError } from '../errors.js';
import type { Logger } from '../log.js';
import { describeEvent } from '../reconcile/describe.js';
import type { ContainerPhase, ProgressEvent } from '../reconcile/events.js';
import { isManaged } from '../reconcile/labels.js';
import { LOG_TAIL_HEADING, probeSystemd } from '../reconcile/apply-container.js';
import { runsSystemd } from '../reconcile/plan.js';
import { killTree, signalInContainer } from '../session/kill-tree.js';
import { removeAgentSocket } from '../session/agent.js';
import type { SessionRecords } from '../session/handoff.js';
import { resumeSession } from '../session/handed-off.js';
import { runSession, type ResolvedUser, type SessionDeps } from '../session/relay.js';
import { routeFor, SFTP_SERVER_PATHS, type Route } from '../session/route.js';
import { createWarmExecs } from '../session/warm-exec.js';
import type { SessionHandler } from '../session/session-server.js';
import { sleep } from '../time.js';
import { ensureContainerUser } from '../users/container-user.js';
import type { StatusSnapshot } from './status.js';

export interface SessionGlueDeps {
  engine: Engine;
  log: Logger;
  config(): Config | undefined;
  snapshot(): StatusSnapshot;
  /** Calls the listener on every progress event and status change until the returned stop. */
  watch(listener: (event: ProgressEvent | undefined) => void): () => void;
  /** Records what a probe learnt (e.g. systemd finished booting). */
  setReadiness(container: string, readiness: string): void;
  /** How long a login may wait for its container (pull, build, boot). */
  waitLimitMs?: number;
  /** Records of sessions handed to their clients (the daemon relays every session without). */
  records?: SessionRecords;
}

export interface SessionGlue {
  handler: SessionHandler;
  attached(container: string): number;
  /**
   * After `graceMs`, ends the handed-off sessions an earlier daemon left whose clients did not
   * come back for them (their processes must not run on in nobody's name).
   */
  endUnclaimed(graceMs: number): Promise<void>;
  close(): void;
}

/** How long a new daemon waits for the clients of running sessions to reconnect. */
export const RESUME_GRACE_MS = 2500;

export function createSessionGlue(deps: SessionGlueDeps): SessionGlue {
  const { engine, log } = deps;
  const attachedCount = new Map<string, number>();
  // Per container id: the exec's shell/home and the sftp-server path cost an exec each to find.
  const users = new Map<string, Promise<ResolvedUser>>();

  async function awaitContainer(name: string, onLine: (line: string) => void, signal: AbortSignal): Promise<string> {
    let last = '';
    const say = (line: string) => {
      if (line && line !== last) onLine(line);
      last = line;
    };
    const deadline = Date.now() + (deps.waitLimitMs ?? 30 * 60_000);
    let started = false;
    for (;;) {
      if (signal.aborted) throw new SkiffError('CANCELLED', 'the client left');
      const config = deps.config();
      const desired = config?.containers[name];
      if (!desired) throw new SkiffError('SESSION_REFUSED', `container ${name} is not in the config`);
      const snap = deps.snapshot();
      const c = snap.containers.find((x) => x.name === name);
      const image = snap.images.find((i) => normalizeImageRef(i.ref) === normalizeImageRef(desired.image));
      const converging = snap.reconcile.state === 'running';

      if (c?.state === 'foreign') throw new SkiffError('SESSION_REFUSED', c.problem ?? `container ${name} is not managed by skiff-core`);
      if (!converging && image?.state === 'failed')
        throw new SkiffError('SESSION_REFUSED', `setup failed: ${image.message ?? `image ${image.ref} is not available`}`);
      if (!converging && c?.problem && !c.activity) {
        // The container's own log lines are for the operator (status), not for whoever logs in.
        const problem = c.problem.split(`\n${LOG_TAIL_HEADING}`)[0];
        throw new SkiffError(
          'SESSION_REFUSED',
          `setup failed: ${problem}${problem === c.problem ? '' : '\n("skiff-core status" on the device shows its last log lines)'}`,
        );
      }

      if (c?.activity && beingReplaced(c.activity)) {
        // The running container is about to be stopped: wait for the one that replaces it.
        say(`container ${name}: ${c.activity}`);
      } else if (c?.state === 'running' || c?.readiness.startsWith('ready')) {
        const info = await engine.inspectContainer(name);
        // Paused still reports running, but takes no exec: the converge pass resumes it.
        if (info?.state.paused) say(`container ${name}: paused; waiting for it to be resumed`);
        else if (info?.state.running && isManaged(info.labels)) {
          if (!runsSystemd(desired) || c.readiness.startsWith('ready')) return info.id;
          // systemd as PID 1: let the login in once it has booted.
          const { state, booted } = await probeSystemd(engine, info.id, signal);
          if (booted) {
            deps.setReadiness(name, `ready (systemd: ${state})`);
            return info.id;
          }
          say(`container ${name}: waiting for systemd: ${state}`);
        }
      } else if (c && ['exited', 'created'].includes(c.state) && !c.activity && !converging && !started) {
        // Stopped (by an administrator, or a crash the restart policy left): a login starts it.
        say(`container ${name}: starting`);
        started = true;
        await engine.startContainer(name).catch((err: unknown) => {
          throw new SkiffError('SESSION_REFUSED', `container ${name} failed to start: ${errorMessage(err)}`);
        });
      } else if (!snap.engine.reachable) {
        say(`waiting for Docker: ${snap.engine.error ?? 'not reachable'}`);
      } else if (image && (image.state === 'pulling' || image.state === 'building')) {
        // The progress listener below describes these in detail.
      } else {
        say(c?.activity ? `container ${name}: ${c.activity}` : `waiting for container ${name} to be set up`);
      }

      if (Date.now() > deadline) throw new SkiffError('TIMEOUT', `container ${name} was not ready in time; see "skiff-core status"`);
      await nextChange(name, desired.image, say, signal);
    }
  }

  /** Resolves on the next relevant progress event or status change, or after a second. */
  function nextChange(name: string, image: string, say: (line: string) => void, signal: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      const key = normalizeImageRef(image);
      const done = () => {
        clearTimeout(timer);
        stop();
        signal.removeEventListener('abort', done);
        resolve();
      };
      const timer = setTimeout(done, 1000);
      const stop = deps.watch((event) => {
        if (!event) return;
        const relevant = event.kind === 'container' ? event.name === name : normalizeImageRef(event.ref) === key;
        if (relevant) {
          say(describeEvent(event, true));
          if (event.kind === 'container' || event.phase === 'ready' || event.phase === 'failed') done();
        }
      });
      signal.addEventListener('abort', done, { once: true });
    });
  }

  function resolveUser(containerId: string, route: Route): Promise<ResolvedUser> {
    const key = `${containerId}\u0000${route.containerUser ?? ''}\u0000${route.shell?.join(' ') ?? ''}`;
    let found = users.get(key);
    if (!found) {
      found = (async () => {
        const user = route.containerUser
          ? await ensureContainerUser(engine, containerId, {
              user: route.containerUser,
              ...(route.shell ? { shell: route.shell } : {}),
              create: route.createContainerUser,
            })
          : undefined;
        const sftp = await engine
          .execRun(
            containerId,
            ['/bin/sh', '-c', `for p in ${SFTP_SERVER_PATHS.join(' ')}; do [ -x "$p" ] && echo "$p" && exit 0; done; exit 1`],
            { timeoutMs: 10_000 },
          )
          .then((r) => (r.exitCode === 0 ? r.stdout.trim() : undefined))
          .catch(() => undefined);
        return {
          shell: user?.shell ?? route.shell ?? ['/bin/sh'],
          home: user?.home,
          sftpServer: sftp,
        };
      })();
      users.set(key, found);
      // A failure is not remembered: the next login tries again.
      found.catch(() => users.delete(key));
    }
    return found;
  }

  const warm = createWarmExecs(engine, log);
  const live = new Set<string>();
  const sessionDeps: SessionDeps = {
    ...(deps.records ? { records: deps.records, live } : {}),
    engine,
    log,
    warm,
    awaitContainer,
    resolveUser,
    killTree: (pid, containerId) => killTree(pid, containerId),
    signal: (pid, containerId, signal) => signalInContainer(pid, containerId, signal),
    attached(container, delta) {
      attachedCount.set(container, Math.max(0, (attachedCount.get(container) ?? 0) + delta));
    },
  };

  return {
    attached: (container) => attachedCount.get(container) ?? 0,
    close: () => warm.close(),
    async endUnclaimed(graceMs) {
      const records = deps.records;
      if (!records) return;
      await sleep(graceMs);
      for (const record of await records.list()) {
        if (live.has(record.execId)) continue;
        const state = await engine
          .execControl(record.execId)
          .inspect()
          .catch(() => undefined);
        if (state?.running && state.pid > 0 && state.containerId === record.containerId) {
          await killTree(state.pid, record.containerId).catch(() => undefined);
          log.info({ user: record.user, container: record.container }, 'Ended a session whose client did not come back after the restart');
        }
        if (!live.has(record.execId)) {
          await records.remove(record.execId);
          if (record.agent) await removeAgentSocket(record.agent);
        }
      }
    },
    async handler(user, hello, io) {
      if (hello.resume) {
        const result = await resumeSession(sessionDeps, user, hello.resume, hello, io).catch((err: unknown) => {
          log.warn({ user, reason: errorMessage(err) }, 'Session not taken back');
          throw err;
        });
        log.info({ user, code: result.code }, 'Taken-back session ended');
        return result;
      }
      const config = deps.config();
      const route = config ? routeFor(config, user) : undefined;
      if (!route) throw new SkiffError('SESSION_REFUSED', `${user} is not mapped to a container`);
      log.info({ user, container: route.container, tty: hello.tty, command: hello.command !== undefined }, 'Session starting');
      try {
        const result = await runSession(sessionDeps, route, hello, io);
        log.info({ user, container: route.container, code: result.code }, 'Session ended');
        return result;
      } catch (err) {
        log.warn({ user, container: route.container, reason: errorMessage(err) }, 'Session refused');
        throw err;
      }
    },
  };
}

const REPLACING: readonly ContainerPhase[] = ['snapshotting', 'replacing'];
/** Whether a status activity (`phase` or `phase: detail`) is a replacement under way. */
function beingReplaced(activity: string): boolean {
  return REPLACING.some((phase) => activity === phase || activity.startsWith(`${phase}:`));
}
