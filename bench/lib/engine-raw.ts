// A bare exec on the engine, made in-process over the unix socket with nothing but node:net:
// create, start (attached, read until the process ends), inspect for the exit code. What the
// engine itself costs for `true`, without any client start-up.
import { connect } from 'node:net';

export function engineSocketPath(): string {
  const host = process.env.DOCKER_HOST;
  if (host?.startsWith('unix://')) return host.slice('unix://'.length);
  return '/var/run/docker.sock';
}

interface RawResponse {
  status: number;
  body: Buffer;
}

/** One HTTP/1.1 request on a fresh connection (`Connection: close`), read to the end. */
function request(socketPath: string, method: string, path: string, body?: object, upgrade = false): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const payload = body === undefined ? Buffer.alloc(0) : Buffer.from(JSON.stringify(body));
    const socket = connect(socketPath);
    const chunks: Buffer[] = [];
    socket.once('connect', () => {
      const head = [
        `${method} /v1.41${path} HTTP/1.1`,
        'Host: docker',
        'Content-Type: application/json',
        `Content-Length: ${payload.length}`,
        ...(upgrade ? ['Connection: Upgrade', 'Upgrade: tcp'] : ['Connection: close']),
      ];
      // One write, and no half-close: the engine may take an early EOF for a client that left.
      socket.write(Buffer.concat([Buffer.from(`${head.join('\r\n')}\r\n\r\n`), payload]));
    });
    socket.setTimeout(120_000, () => socket.destroy(new Error(`${method} ${path}: no answer from the engine within 120 s`)));
    socket.on('data', (c: Buffer) => chunks.push(c));
    socket.once('error', reject);
    socket.once('close', () => {
      const all = Buffer.concat(chunks);
      const end = all.indexOf('\r\n\r\n');
      const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(all.subarray(0, Math.max(end, 0)).toString('latin1'))?.[1] ?? 0);
      let rest: Buffer = end >= 0 ? all.subarray(end + 4) : Buffer.alloc(0);
      const headers = all.subarray(0, Math.max(end, 0)).toString('latin1');
      if (/transfer-encoding:\s*chunked/i.test(headers)) rest = dechunk(rest);
      resolve({ status, body: rest });
    });
  });
}

function dechunk(data: Buffer): Buffer {
  const out: Buffer[] = [];
  let offset = 0;
  for (;;) {
    const nl = data.indexOf('\r\n', offset);
    if (nl < 0) break;
    const size = parseInt(data.subarray(offset, nl).toString('latin1'), 16);
    if (!(size > 0)) break;
    out.push(data.subarray(nl + 2, nl + 2 + size));
    offset = nl + 2 + size + 2;
  }
  return Buffer.concat(out);
}

export interface RawExecResult {
  ms: number;
  exitCode: number;
  /** Time to the engine's answer of each call. */
  phases: { create: number; start: number; inspect: number };
}

/** `true` (or another command) through the engine API alone. */
export async function rawExec(container: string, cmd: string[], socketPath = engineSocketPath()): Promise<RawExecResult> {
  const t0 = performance.now();
  const created = await request(socketPath, 'POST', `/containers/${encodeURIComponent(container)}/exec`, {
    AttachStdin: false,
    AttachStdout: true,
    AttachStderr: true,
    Tty: false,
    Cmd: cmd,
  });
  if (created.status !== 201) throw new Error(`exec create: HTTP ${created.status} ${created.body.toString()}`);
  const id = (JSON.parse(created.body.toString()) as { Id: string }).Id;
  const t1 = performance.now();
  // Attached start: the engine holds the connection until the process has ended.
  const started = await request(socketPath, 'POST', `/exec/${id}/start`, { Detach: false, Tty: false }, true);
  if (started.status !== 101 && started.status !== 200) throw new Error(`exec start: HTTP ${started.status}`);
  const t2 = performance.now();
  let exitCode = -1;
  for (let attempt = 0; attempt < 100; attempt++) {
    const inspected = await request(socketPath, 'GET', `/exec/${id}/json`);
    const info = JSON.parse(inspected.body.toString()) as { Running: boolean; ExitCode: number };
    if (!info.Running) {
      exitCode = info.ExitCode;
      break;
    }
    await new Promise((r) => setTimeout(r, 5));
  }
  const t3 = performance.now();
  return { ms: t3 - t0, exitCode, phases: { create: t1 - t0, start: t2 - t1, inspect: t3 - t2 } };
}
