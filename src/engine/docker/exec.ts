// Commands in containers: one that runs to completion with its output (execRun), and interactive
// sessions whose raw socket goes to the session code (execSession, execControl).
import { SkiffError, isSkiffError } from '../../errors.js';
import type { Engine, ExecControl, ExecOptions, ExecResult, ExecSession, ExecSessionOptions } from '../engine.js';
import { poll } from '../../time.js';
import { createStdioDemuxer } from '../stdio-frames.js';
import { containerPath, num, rec, str } from './read.js';
import { cancelled, type RequestSpec, type Transport } from './transport.js';

/** Keeps the first `max` bytes of a stream of chunks. */
function createCappedBuffer(max: number): { push(data: Buffer): void; text(): string } {
  const chunks: Buffer[] = [];
  let size = 0;
  let truncated = false;
  return {
    push(data) {
      if (size >= max) {
        truncated = true;
        return;
      }
      const part = data.subarray(0, max - size);
      if (part.length < data.length) truncated = true;
      chunks.push(Buffer.from(part));
      size += part.length;
    },
    text() {
      return Buffer.concat(chunks).toString('utf8') + (truncated ? '\n[output truncated]' : '');
    },
  };
}

const EXEC_OUTPUT_LIMIT = 1024 * 1024;

export function execCalls(t: Transport): Pick<Engine, 'execRun' | 'execSession' | 'execControl'> {
  const { send, sendJson, sendNoContent, mapError, upgrade } = t;

  /** Creates an exec of `cmd` in container `id` (output always attached); returns its id. */
  async function createExec(
    id: string,
    cmd: string[],
    o: { stdin: boolean; tty: boolean; user?: string | undefined; env?: string[] | undefined; workingDir?: string | undefined },
    signal: AbortSignal | undefined,
  ): Promise<string> {
    const created = rec(
      await sendJson({
        op: 'execCreate',
        method: 'POST',
        path: containerPath(id, '/exec'),
        body: {
          AttachStdin: o.stdin,
          AttachStdout: true,
          AttachStderr: true,
          Tty: o.tty,
          Cmd: cmd,
          ...(o.user === undefined ? {} : { User: o.user }),
          ...(o.env === undefined ? {} : { Env: o.env }),
          ...(o.workingDir === undefined ? {} : { WorkingDir: o.workingDir }),
        },
        signal,
        ids: { container: id },
      }),
    );
    return str(created['Id']);
  }

  async function execRun(id: string, cmd: string[], opts: ExecOptions = {}): Promise<ExecResult> {
    const what = `exec ${JSON.stringify(cmd)} in ${id}`;
    const timeout = opts.timeoutMs === undefined ? undefined : AbortSignal.timeout(opts.timeoutMs);
    const signals = [opts.signal, timeout].filter((s): s is AbortSignal => s !== undefined);
    const signal = signals.length === 0 ? undefined : signals.length === 1 ? signals[0] : AbortSignal.any(signals);
    function timedOut(): boolean {
      return timeout?.aborted === true && opts.signal?.aborted !== true;
    }
    function timeoutError(): SkiffError {
      return new SkiffError('TIMEOUT', `${what} did not finish within ${opts.timeoutMs} ms (it may still be running)`);
    }

    try {
      const execId = await createExec(id, cmd, { stdin: false, tty: false, user: opts.user, env: opts.env }, signal);
      const spec: RequestSpec = {
        op: 'execStart',
        method: 'POST',
        path: `/exec/${execId}/start`,
        body: { Detach: false, Tty: false },
        signal,
        ids: { container: id, exec: execId },
      };
      const res = await send(spec);
      const stdout = createCappedBuffer(EXEC_OUTPUT_LIMIT);
      const stderr = createCappedBuffer(EXEC_OUTPUT_LIMIT);
      const demuxer = createStdioDemuxer((stream, data) => (stream === 'stderr' ? stderr : stdout).push(data));
      try {
        for await (const chunk of res as AsyncIterable<Buffer>) demuxer.push(chunk);
        demuxer.end();
      } catch (err) {
        throw mapError(err, spec);
      } finally {
        res.destroy();
      }

      // The output ends when the process exits; the exit code may lag behind by a moment.
      const inspected = await poll(
        async (attempt) => {
          const raw = rec(
            await sendJson({ op: 'execInspect', method: 'GET', path: `/exec/${execId}/json`, signal, ids: { exec: execId } }),
          );
          return raw['Running'] !== true || attempt >= 40 ? raw : undefined;
        },
        { intervalMs: 50 },
      );
      return { exitCode: num(inspected?.['ExitCode']), stdout: stdout.text(), stderr: stderr.text() };
    } catch (err) {
      if (timedOut()) throw timeoutError();
      if (isSkiffError(err, 'CANCELLED')) throw cancelled(what, err);
      throw err;
    }
  }

  function execControl(execId: string): ExecControl {
    return {
      execId,
      async resize(cols, rows) {
        await sendNoContent({
          op: 'execResize',
          method: 'POST',
          path: `/exec/${encodeURIComponent(execId)}/resize`,
          query: { h: rows, w: cols },
          ids: { exec: execId },
        });
      },
      async inspect() {
        const raw = rec(
          await sendJson({ op: 'execInspect', method: 'GET', path: `/exec/${encodeURIComponent(execId)}/json`, ids: { exec: execId } }),
        );
        const running = raw['Running'] === true;
        return { running, exitCode: running ? null : num(raw['ExitCode']), pid: num(raw['Pid']), containerId: str(raw['ContainerID']) };
      },
    };
  }

  async function execSession(id: string, cmd: string[], opts: ExecSessionOptions): Promise<ExecSession> {
    const execId = await createExec(
      id,
      cmd,
      { stdin: true, tty: opts.tty, user: opts.user, env: opts.env, workingDir: opts.workingDir },
      opts.signal,
    );
    const stream = await upgrade(`/exec/${execId}/start`, { Detach: false, Tty: opts.tty }, { container: id, exec: execId }, opts.signal);
    const session: ExecSession = { ...execControl(execId), stream };
    if (opts.tty && opts.cols && opts.rows) await session.resize(opts.cols, opts.rows).catch(() => undefined);
    return session;
  }

  return { execRun, execSession, execControl };
}
