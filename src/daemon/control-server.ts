// Serves the control protocol (control-protocol.ts) on a root-only unix socket.
import { mkdir, rm } from 'node:fs/promises';
import { createServer, type Server, type Socket } from 'node:net';
import { dirname } from 'node:path';
import { SkiffError } from '../errors.js';
import { listenPrivate } from '../fs/unix-socket.js';
import type { Logger } from '../log.js';
import { lineReader, type ControlMethod, type ControlResponse } from './control-protocol.js';

export interface ControlHandlers {
  status(): unknown;
  reload(): Promise<unknown>;
  /** Recreates container `name` from an earlier snapshot; resolves with what was done. */
  rollback(name: string, snapshot: string | undefined): Promise<{ message: string }>;
  /** Commits container `name` to a snapshot for a backup; resolves with the backup's manifest. */
  backup(name: string): Promise<unknown>;
  /** Makes container `name` from a loaded snapshot and writes its config entry as a drop-in. */
  restore(request: { name: string; snapshot: string; entry: Record<string, unknown> }): Promise<{ message: string }>;
  /** Calls `send` for each event until the returned function is called. */
  subscribe(send: (event: 'progress' | 'status', data: unknown) => void): () => void;
}

export interface ControlServer {
  close(): Promise<void>;
}

export async function startControlServer(path: string, handlers: ControlHandlers, log: Logger): Promise<ControlServer> {
  await mkdir(dirname(path), { recursive: true, mode: 0o755 });
  // A socket left by a killed daemon would make listen() fail with EADDRINUSE.
  await rm(path, { force: true });
  const sockets = new Set<Socket>();
  const server: Server = createServer((socket) => {
    sockets.add(socket);
    const unsubscribers: (() => void)[] = [];
    const send = (message: ControlResponse) => {
      if (!socket.destroyed) socket.write(`${JSON.stringify(message)}\n`);
    };
    socket.on(
      'data',
      lineReader(
        (value) => void handle(value),
        (line) => send({ id: 0, error: { code: 'BAD_REQUEST', message: `not a JSON request: ${line.slice(0, 80)}` } }),
      ),
    );
    socket.on('error', () => socket.destroy());
    socket.on('close', () => {
      sockets.delete(socket);
      for (const stop of unsubscribers) stop();
    });

    async function handle(value: unknown) {
      const req = value as { id?: unknown; method?: unknown; params?: Record<string, unknown> };
      const id = typeof req?.id === 'number' ? req.id : 0;
      const method = req?.method as ControlMethod;
      try {
        switch (method) {
          case 'ping':
            return send({ id, result: { pong: true } });
          case 'status':
            return send({ id, result: handlers.status() });
          case 'reload':
            return send({ id, result: await handlers.reload() });
          case 'rollback': {
            const name = req.params?.['name'];
            const snapshot = req.params?.['snapshot'];
            if (typeof name !== 'string' || (snapshot !== undefined && typeof snapshot !== 'string'))
              return send({ id, error: { code: 'BAD_REQUEST', message: 'rollback takes a container name and, optionally, a snapshot' } });
            return send({ id, result: await handlers.rollback(name, snapshot) });
          }
          case 'backup': {
            const name = req.params?.['name'];
            if (typeof name !== 'string') return send({ id, error: { code: 'BAD_REQUEST', message: 'backup takes a container name' } });
            return send({ id, result: await handlers.backup(name) });
          }
          case 'restore': {
            const { name, snapshot, entry } = req.params ?? {};
            if (
              typeof name !== 'string' ||
              typeof snapshot !== 'string' ||
              typeof entry !== 'object' ||
              entry === null ||
              Array.isArray(entry)
            )
              return send({ id, error: { code: 'BAD_REQUEST', message: 'restore takes a container name, a snapshot and a config entry' } });
            return send({ id, result: await handlers.restore({ name, snapshot, entry: entry as Record<string, unknown> }) });
          }
          case 'subscribe':
            send({ id, result: {} });
            unsubscribers.push(handlers.subscribe((event, data) => send({ event, data })));
            return;
          default:
            return send({ id, error: { code: 'UNKNOWN_METHOD', message: `unknown method ${JSON.stringify(method)}` } });
        }
      } catch (err) {
        // Our own errors (a rollback refused) are answers; anything else is a bug worth logging.
        if (err instanceof SkiffError) return send({ id, error: { code: err.code, message: err.message } });
        log.error({ err, method }, 'Control request failed');
        send({ id, error: { code: 'INTERNAL', message: (err as Error).message } });
      }
    }
  });
  await listenPrivate(server, path);
  return {
    async close() {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await rm(path, { force: true });
    },
  };
}
