// Talks to the daemon's control socket (for status, reload and status --watch).
import { connect, type Socket } from 'node:net';
import { lineReader, type ControlMethod } from './control-protocol.js';

export class DaemonNotRunning extends Error {}

export interface ControlClient {
  call(method: ControlMethod, params?: Record<string, unknown>): Promise<unknown>;
  /** Events after a `subscribe` call. */
  onEvent(listener: (event: string, data: unknown) => void): void;
  close(): void;
}

export function connectControl(path: string, timeoutMs = 2000): Promise<ControlClient> {
  return new Promise((resolve, reject) => {
    const socket: Socket = connect(path);
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new DaemonNotRunning(`no answer on ${path} within ${timeoutMs} ms`));
    }, timeoutMs);
    socket.once('error', (err: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      const reason = err.code === 'ENOENT' || err.code === 'ECONNREFUSED' ? 'the daemon is not running' : err.message;
      reject(err.code === 'EACCES' ? new Error(`${path}: permission denied (run as root)`) : new DaemonNotRunning(`${reason} (${path})`));
    });
    socket.once('connect', () => {
      clearTimeout(timer);
      let next = 1;
      const waiting = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
      const listeners: ((event: string, data: unknown) => void)[] = [];
      socket.on(
        'data',
        lineReader(
          (value) => {
            const msg = value as { id?: number; result?: unknown; error?: { message: string }; event?: string; data?: unknown };
            if (msg.event) {
              for (const l of listeners) l(msg.event, msg.data);
              return;
            }
            const w = msg.id !== undefined ? waiting.get(msg.id) : undefined;
            if (!w) return;
            waiting.delete(msg.id!);
            if (msg.error) w.reject(new Error(msg.error.message));
            else w.resolve(msg.result);
          },
          () => undefined,
        ),
      );
      socket.on('close', () => {
        for (const w of waiting.values()) w.reject(new DaemonNotRunning('the daemon closed the connection'));
        waiting.clear();
      });
      resolve({
        call(method, params) {
          const id = next++;
          return new Promise((res, rej) => {
            waiting.set(id, { resolve: res, reject: rej });
            socket.write(`${JSON.stringify({ id, method, ...(params ? { params } : {}) })}\n`);
          });
        },
        onEvent(listener) {
          listeners.push(listener);
        },
        close() {
          socket.destroy();
        },
      });
    });
  });
}
