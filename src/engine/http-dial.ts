// One HTTP request to the engine's API, answered with the raw response whatever its status
// (the caller decides what is an error). Node's own http client on the engine's socket: no
// Docker client library, so a daemon does not carry one (dockerode and the ssh2 it loads held a
// third of the daemon's memory).
import { request as httpRequest, type IncomingMessage, type OutgoingHttpHeaders } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { pipeline } from 'node:stream';

export type EngineEndpoint =
  { kind: 'socket'; socketPath: string } | { kind: 'tcp'; host: string; port: number; protocol: 'http' | 'https' };

export interface DialSpec {
  method: 'GET' | 'POST' | 'DELETE';
  path: string;
  /** Already cleaned: no undefined values. */
  query: Record<string, string>;
  /** Sent as JSON; an empty object or undefined sends no body. */
  body?: unknown;
  /** A tar stream (build context, image archive), sent chunked. */
  file?: NodeJS.ReadableStream;
  signal?: AbortSignal | undefined;
}

export function dialEngine(endpoint: EngineEndpoint, spec: DialSpec): Promise<IncomingMessage> {
  const query = new URLSearchParams(spec.query).toString();
  const path = query ? `${spec.path}?${query}` : spec.path;
  const json =
    spec.body !== undefined && !(typeof spec.body === 'object' && spec.body !== null && Object.keys(spec.body).length === 0)
      ? Buffer.from(JSON.stringify(spec.body))
      : undefined;
  const headers: OutgoingHttpHeaders = {};
  if (spec.file) headers['Content-Type'] = 'application/x-tar';
  else if (json) Object.assign(headers, { 'Content-Type': 'application/json', 'Content-Length': json.length });
  const where = endpoint.kind === 'socket' ? { socketPath: endpoint.socketPath } : { host: endpoint.host, port: endpoint.port };
  const send = endpoint.kind === 'tcp' && endpoint.protocol === 'https' ? httpsRequest : httpRequest;
  return new Promise((resolve, reject) => {
    const req = send({ ...where, method: spec.method, path, headers, ...(spec.signal ? { signal: spec.signal } : {}) }, resolve);
    req.once('error', reject);
    if (spec.file) pipeline(spec.file, req, (err) => err && req.destroy(err));
    else req.end(json);
  });
}
