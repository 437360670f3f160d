// The control socket's protocol: one JSON object per line, both ways.
//   → {"id":1,"method":"status"}           ← {"id":1,"result":{…StatusSnapshot}}
//   → {"id":2,"method":"reload"}           ← {"id":2,"result":{"ok":true,"errors":[…]}}
//   → {"id":4,"method":"rollback","params":{"name":"core","snapshot":"…"}}  ← {"id":4,"result":{"message":"…"}}
//   → {"id":5,"method":"backup","params":{"name":"core"}}  ← {"id":5,"result":{…BackupManifest}}
//   → {"id":6,"method":"restore","params":{"name":"core","snapshot":"…","entry":{…}}}  ← {"id":6,"result":{"message":"…","dropIn":"…"}}
//   → {"id":3,"method":"subscribe"}        ← {"id":3,"result":{}} then {"event":"progress","data":…}
//                                            and {"event":"status","data":…} until either side closes
// Errors: {"id":N,"error":{"code":"…","message":"…"}}. Unknown methods are errors, not crashes.
// The socket is root's alone (mode 0600); per-user session sockets live beside it in users/.
// Kept free of heavy imports: the status client loads it.
import { join } from 'node:path';

export const DEFAULT_RUN_DIR = '/run/skiff-core';
export const CONTROL_SOCKET = 'control.sock';

export function controlSocketPath(runDir: string): string {
  return join(runDir, CONTROL_SOCKET);
}

export type ControlMethod = 'ping' | 'status' | 'reload' | 'subscribe' | 'rollback' | 'backup' | 'restore';

export interface ControlRequest {
  id: number;
  method: ControlMethod;
  params?: Record<string, unknown>;
}

export type ControlResponse =
  | { id: number; result: unknown }
  | { id: number; error: { code: string; message: string } }
  | { event: 'progress' | 'status'; data: unknown };

/** Splits a byte stream into JSON lines; a line that is not JSON is reported, not thrown. */
export function lineReader(onLine: (value: unknown) => void, onBadLine: (line: string) => void): (chunk: Buffer) => void {
  let pending = '';
  return (chunk) => {
    pending += chunk.toString('utf8');
    // A peer that never sends a newline must not grow our memory without bound.
    if (pending.length > 16 * 1024 * 1024) {
      onBadLine(pending.slice(0, 200));
      pending = '';
      return;
    }
    let nl: number;
    while ((nl = pending.indexOf('\n')) >= 0) {
      const line = pending.slice(0, nl).trim();
      pending = pending.slice(nl + 1);
      if (!line) continue;
      try {
        onLine(JSON.parse(line));
      } catch {
        onBadLine(line);
      }
    }
  };
}
