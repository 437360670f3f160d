// A login made in-process: the same frames the login shell sends, straight to the daemon's
// per-user socket. Timing it next to the real login shell separates the daemon's share of a
// login from Node's start-up in the shell.
import { connect } from 'node:net';
import { createFrameDecoder, encodeFrame, FRAME } from '../../src/session/frames.js';

export interface InProcessResult {
  ms: number;
  code: number;
  stdout: string;
}

export function inProcessSession(socketPath: string, command: string): Promise<InProcessResult> {
  const t0 = performance.now();
  return new Promise((resolve, reject) => {
    const socket = connect(socketPath);
    let code = 255;
    let stdout = '';
    let error = '';
    const decoder = createFrameDecoder(
      (type, payload) => {
        if (type === FRAME.stdout) stdout += payload.toString();
        else if (type === FRAME.exit) code = (JSON.parse(payload.toString()) as { code: number }).code;
        else if (type === FRAME.error) error = payload.toString();
      },
      (message) => reject(new Error(message)),
    );
    socket.once('connect', () => {
      socket.write(encodeFrame(FRAME.hello, { v: 1, tty: false, env: {}, command }));
      socket.write(encodeFrame(FRAME.stdinEnd));
    });
    socket.setTimeout(120_000, () =>
      socket.destroy(new Error(`session ${JSON.stringify(command)}: no frame from the daemon within 120 s`)),
    );
    socket.on('data', (c: Buffer) => decoder.push(c));
    socket.once('error', reject);
    socket.once('close', () => {
      if (error) reject(new Error(`session refused: ${error}`));
      else resolve({ ms: performance.now() - t0, code, stdout });
    });
  });
}

/**
 * A stand-in daemon socket that answers every login at once (started, exit 0): timing the real
 * login shell against it gives the shell's own cost (Node start-up, loading the bundle, the
 * protocol) without the daemon or the engine.
 */
export async function startStubSessionSocket(path: string): Promise<{ close(): Promise<void> }> {
  const { createServer } = await import('node:net');
  const { mkdir, rm } = await import('node:fs/promises');
  const { dirname } = await import('node:path');
  await mkdir(dirname(path), { recursive: true });
  await rm(path, { force: true });
  const server = createServer((socket) => {
    const decoder = createFrameDecoder(
      (type) => {
        if (type !== FRAME.hello) return;
        socket.write(encodeFrame(FRAME.started, {}));
        socket.end(encodeFrame(FRAME.exit, { code: 0 }));
      },
      () => socket.destroy(),
    );
    socket.on('data', (c: Buffer) => decoder.push(c));
    socket.on('error', () => undefined);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(path, () => resolve());
  });
  return { close: () => new Promise<void>((resolve) => server.close(() => resolve())) };
}
