// What `npm start` makes sure of before it runs the daemon: a Docker engine that answers (started
// with scripts/provision.sh when none does), and whether the default config's images can be had
// from their registries. Plain HTTP on the engine's unix socket: nothing here needs dockerode.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { request } from 'node:http';
import { fileURLToPath } from 'node:url';

const DEFAULT_SOCKET = '/var/run/docker.sock';
const PROVISION = fileURLToPath(new URL('../provision.sh', import.meta.url));

/** The engine's socket from DOCKER_HOST (unix:// only), or the default one. */
export function engineSocket(env = process.env) {
  const host = env.DOCKER_HOST;
  if (!host) return DEFAULT_SOCKET;
  if (host.startsWith('unix://')) return host.slice('unix://'.length) || DEFAULT_SOCKET;
  return undefined; // tcp:// and friends: a remote engine, nothing to provision here
}

/** One API call; resolves { status, body } or rejects with the socket error. */
export function engineCall(socket, method, path, timeoutMs = 10_000) {
  return new Promise((resolve, reject) => {
    const req = request({ socketPath: socket, method, path, timeout: timeoutMs, headers: { Host: 'docker' } }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`no answer within ${timeoutMs / 1000} s`)));
    req.on('error', reject);
    req.end();
  });
}

function engineMessage(body) {
  try {
    return JSON.parse(body).message ?? body.trim();
  } catch {
    return body.trim();
  }
}

/** Undefined when the engine answers, else why not. */
export async function engineProblem(socket) {
  try {
    const r = await engineCall(socket, 'GET', '/_ping', 5_000);
    return r.status === 200 ? undefined : `it answered HTTP ${r.status}`;
  } catch (err) {
    return { ENOENT: 'no such socket', ECONNREFUSED: 'connection refused', EACCES: 'permission denied' }[err.code] ?? err.message;
  }
}

/** Why this machine cannot be provisioned by npm start (not root, no apt-get), or undefined. */
export function provisionBlocker(uid = process.getuid?.(), exists = existsSync) {
  if (uid !== 0) return { missing: 'root', fix: 'run it as root: sudo npm start' };
  if (!exists('/usr/bin/apt-get') || !exists('/etc/debian_version')) {
    return {
      missing: 'Debian or Ubuntu (apt-get)',
      fix: "install Docker Engine with your distribution's packages (https://docs.docker.com/engine/install/), start it, then run npm start again",
    };
  }
  return undefined;
}

/** Runs `scripts/provision.sh PARTS…` with its progress on the terminal; true when it succeeded. */
export function provision(parts) {
  const r = spawnSync('bash', [PROVISION, ...parts], { stdio: ['ignore', 'inherit', 'inherit'] });
  return r.status === 0;
}

/**
 * Whether `ref` (as the daemon would pull it, registry host included) can be had: present on the
 * engine, or its registry answers for it. Resolves undefined when it can, else the reason.
 */
export async function pullProblem(socket, ref) {
  if (await imagePresent(socket, ref)) return undefined;
  // The engine asks the registry for the manifest: no download, and no network fails at once.
  const r = await engineCall(socket, 'GET', refPath('distribution', ref), 20_000).catch((err) => ({
    status: 0,
    body: JSON.stringify({ message: err.message }),
  }));
  return r.status === 200 ? undefined : engineMessage(r.body);
}

export async function imagePresent(socket, ref) {
  return (await engineCall(socket, 'GET', refPath('images', ref))).status === 200;
}

/** `/images/REF/json` and the like: the reference keeps its `/` and `:`, the rest is escaped. */
function refPath(kind, ref) {
  return `/${kind}/${ref.replace(/[^A-Za-z0-9._:/@+-]/g, encodeURIComponent)}/json`;
}
