// `npm start` (after `npm run build`): runs the skiff-core daemon from this checkout with its
// built-in SSH gateway on 127.0.0.1:2222, and prints how to log in.
//
// Everything it keeps is under .state/ in the checkout (gitignored): the config copy, the daemon's
// run and work dirs, the gateway's host key, a client key pair made for you, and the directories
// the config mounts from the host. Nothing else on the machine changes: no host users
// (`--users lookup`; the gateway needs no host account), no /mnt/persist, no /run. Only the Docker
// engine gets the config's images and containers, which keep running after Ctrl-C.
//
//   npm start                  the default config (defaults/skiff-core.yaml): pulls the default
//                              image from quay.io; when quay.io cannot be reached, the offline
//                              variant instead
//   npm start -- --offline     builds the core image from a locally made Debian base
//                              (defaults/offline.yaml)
//
// On a machine with no Docker engine it first runs `scripts/provision.sh engine` (as root, on
// Debian or Ubuntu), and `scripts/provision.sh base-images` when the offline variant needs them.
//
// Options (after `npm start --`): --offline, --port N (default 2222), --name-prefix P (prefixes
// the container and image names of a newly created state config; for tests), -h/--help.
import { execFile, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { isAbsolute, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { engineProblem, engineSocket, imagePresent, provision, provisionBlocker, pullProblem } from './lib/engine-preflight.mjs';

const USAGE = `Usage: npm start [-- [--offline] [--port N]]
       node scripts/start.mjs [--offline] [--port N] [--name-prefix P]

Runs the skiff-core daemon from this checkout with its SSH gateway on 127.0.0.1:PORT (default
2222), keeping all its files under .state/, and prints how to log in. When no Docker engine
answers, it installs and starts one first (scripts/provision.sh engine; root, Debian/Ubuntu).
When the default config's image cannot be pulled (no internet), it runs the offline variant.

  --offline         use defaults/offline.yaml: build the core image from the locally made base
                    image skiff-core-test/debian-systemd:bookworm (made by
                    "bash scripts/provision.sh base-images") instead of pulling it from quay.io
  --port N          the gateway's port on 127.0.0.1 (default 2222)
  --name-prefix P   prefix the container and image names when the state config is created
                    (lets tests run beside a developer's containers)
  -h, --help        show this help

Ctrl-C stops the daemon; the containers keep running.`;

const root = fileURLToPath(new URL('..', import.meta.url));
const STATE = join(root, '.state');
const BUNDLE = join(root, 'dist', 'skiff-core.mjs');
const HOST = '127.0.0.1';
const DEVICE_PERSIST = '/mnt/persist/skiff/core/';
const OFFLINE_BASE_IMAGE = 'skiff-core-test/debian-systemd:bookworm';

/** A path as the user types it from the checkout (npm start runs there), else absolute. */
const show = (path) => {
  const rel = relative(process.cwd(), path);
  return rel && !rel.startsWith('..') && !isAbsolute(rel) ? rel : path;
};
const say = (text = '') => process.stdout.write(`${text}\n`);
const fail = (text) => {
  process.stderr.write(`npm start: ${text}\n`);
  process.exit(1);
};

let args;
try {
  args = parseArgs({
    args: process.argv.slice(2),
    options: {
      offline: { type: 'boolean', default: false },
      port: { type: 'string', default: '2222' },
      'name-prefix': { type: 'string', default: '' },
      help: { type: 'boolean', short: 'h', default: false },
    },
    strict: true,
    allowPositionals: false,
  }).values;
} catch (err) {
  fail(`${err.message}\n\n${USAGE}`);
}
if (args.help) {
  say(USAGE);
  process.exit(0);
}
const port = Number(args.port);
if (!Number.isInteger(port) || port < 1 || port > 65535) fail(`--port takes a TCP port number, not "${args.port}"`);
const prefix = args['name-prefix'];
if (prefix !== '' && !/^[a-z0-9][a-z0-9_.-]*$/.test(prefix)) fail('--name-prefix takes lowercase letters, digits, ".", "_" and "-"');
const listen = `${HOST}:${port}`;

// --- A Docker engine, and what the config needs from it. -------------------------------------
async function ensureEngine() {
  const socket = engineSocket();
  if (socket === undefined) return; // a remote engine (tcp://): the daemon reports if it does not answer
  const problem = await engineProblem(socket);
  if (problem === undefined) return;
  if (problem === 'permission denied')
    fail(`the Docker engine at ${socket} refuses this user (permission denied): run it as root (sudo npm start)`);
  const blocker = provisionBlocker();
  if (blocker) fail(`no Docker engine answers on ${socket} (${problem}), and installing one needs ${blocker.missing}: ${blocker.fix}`);
  say(`npm start: no Docker engine answers on ${socket} (${problem}); installing and starting one: bash scripts/provision.sh engine`);
  if (!provision(['engine'])) fail('provisioning the Docker engine failed (see the [provision] lines above)');
}

/** The images the config pulls, as the daemon would pull them (with their `registry`). */
function pulledImages(configText) {
  const config = YAML.parse(configText) ?? {};
  const used = new Set(
    Object.values(config.containers ?? {})
      .map((c) => c?.image)
      .filter(Boolean),
  );
  return Object.entries(config.images ?? {})
    .filter(([ref, image]) => used.has(ref) && image?.pull)
    .map(([ref, image]) => (image.pull.registry ? `${image.pull.registry}/${ref}` : ref));
}

/** True when an image of the default config can be neither found on the engine nor pulled. */
async function offlineNeeded() {
  const socket = engineSocket();
  if (socket === undefined) return false;
  const stateConfig = join(STATE, 'config.yaml');
  const text = readFileSync(existsSync(stateConfig) ? stateConfig : join(root, 'defaults', 'skiff-core.yaml'), 'utf8');
  let refs;
  try {
    refs = pulledImages(text);
  } catch {
    return false; // a broken config: the daemon reports it with line and column
  }
  for (const ref of refs) {
    const why = await pullProblem(socket, ref);
    if (why === undefined) continue;
    say(
      `npm start: ${ref} cannot be pulled (${why.split('\n')[0]}); running the offline variant instead (defaults/offline.yaml; "npm start -- --offline" picks it directly).`,
    );
    return true;
  }
  return false;
}

async function ensureBaseImage() {
  const socket = engineSocket();
  if (socket === undefined || (await imagePresent(socket, OFFLINE_BASE_IMAGE))) return;
  const blocker = provisionBlocker();
  if (blocker)
    fail(
      `the offline variant builds FROM ${OFFLINE_BASE_IMAGE}, which this engine lacks, and making it needs ${blocker.missing}: ${blocker.fix}`,
    );
  say(
    `npm start: making the base image ${OFFLINE_BASE_IMAGE} (debootstrap from Debian's archive the first time, about a minute): bash scripts/provision.sh base-images`,
  );
  if (!provision(['base-images'])) fail(`making ${OFFLINE_BASE_IMAGE} failed (see the [provision] lines above)`);
}

// --- The port must be free, or the gateway would only log that it is not. ------------------
await new Promise((resolveFree) => {
  const probe = createServer();
  probe.once('error', (err) => {
    if (err.code === 'EADDRINUSE') {
      fail(
        `${listen} is already in use, so the SSH gateway cannot listen there.\n` +
          `  Is another "npm start" running? See what listens with: ss -ltnp 'sport = :${port}'\n` +
          `  Stop it, or use another port: npm start -- ${args.offline ? '--offline ' : ''}--port N`,
      );
    }
    fail(`cannot listen on ${listen}: ${err.message}`);
  });
  probe.listen(port, HOST, () => probe.close(resolveFree));
});

if (!existsSync(BUNDLE)) fail(`${show(BUNDLE)} is missing: run "npm run build" first (npm start does)`);
let offline = args.offline;
await ensureEngine();
// Loaded only now: what is missing on the machine is said first, whatever else is missing.
const { default: ssh2 } = await import('ssh2');
const { default: YAML } = await import('yaml');
if (!offline) offline = await offlineNeeded();
if (offline) await ensureBaseImage();

const paths = {
  config: join(STATE, offline ? 'offline.yaml' : 'config.yaml'),
  runDir: join(STATE, offline ? 'run-offline' : 'run'),
  workDir: join(STATE, offline ? 'work-offline' : 'work'),
  persist: join(STATE, 'persist'),
  hostKey: join(STATE, 'ssh_host_ed25519_key'),
  clientKey: join(STATE, 'id_ed25519'),
};
mkdirSync(STATE, { recursive: true });

// --- The client key pair that the config's `core` user accepts. -----------------------------
const publicKey = ensureClientKey();

function ensureClientKey() {
  const pub = `${paths.clientKey}.pub`;
  if (!existsSync(paths.clientKey)) {
    // OpenSSH's own format, as ssh-keygen -t ed25519 -N '' writes it (ssh2 is a dependency
    // already, so this needs no ssh-keygen on the machine). ssh2 breaks one key in 256 (it drops
    // a leading zero byte of the public key), so keep only one that reads back.
    let pair;
    do pair = ssh2.utils.generateKeyPairSync('ed25519', { comment: 'skiff-core npm start' });
    while (ssh2.utils.parseKey(pair.private) instanceof Error);
    writeFileSync(paths.clientKey, pair.private, { mode: 0o600 });
    writeFileSync(pub, `${pair.public}\n`, { mode: 0o644 });
    say(`Made a key pair for logging in: ${show(paths.clientKey)} (public: ${show(pub)})`);
  }
  chmodSync(paths.clientKey, 0o600); // ssh refuses a private key others can read
  if (existsSync(pub)) return readFileSync(pub, 'utf8').trim();
  const parsed = ssh2.utils.parseKey(readFileSync(paths.clientKey));
  if (parsed instanceof Error) fail(`cannot read ${show(paths.clientKey)}: ${parsed.message}`);
  const line = `${parsed.type} ${parsed.getPublicSSH().toString('base64')} skiff-core npm start`;
  writeFileSync(pub, `${line}\n`);
  return line;
}

/** `SHA256:…` as ssh-keygen -l prints it, from a public key line or an OpenSSH private key. */
function fingerprint(keyText) {
  const parsed = ssh2.utils.parseKey(keyText);
  if (parsed instanceof Error) return undefined;
  const blob = parsed.getPublicSSH();
  return `SHA256:${createHash('sha256').update(blob).digest('base64').replace(/=+$/, '')}`;
}

// --- The config: a copy made once; later runs leave the owner's edits alone. ----------------
if (!existsSync(paths.config)) createConfig();
const config = readConfig();

function createConfig() {
  const source = join(root, 'defaults', offline ? 'offline.yaml' : 'skiff-core.yaml');
  const doc = YAML.parseDocument(readFileSync(source, 'utf8'));
  if (doc.errors.length) fail(`${show(source)}: ${doc.errors[0].message}`);

  const renamed = new Map(); // old container or image name -> new one
  const rename = (name) => (prefix ? `${prefix}${name}` : name);

  const images = doc.get('images');
  if (YAML.isMap(images)) {
    for (const pair of images.items) {
      const ref = String(YAML.isScalar(pair.key) ? pair.key.value : pair.key);
      // Only images that are built here get the prefix: a pulled one must keep its registry name.
      const pulled = YAML.isMap(pair.value) && pair.value.has('pull');
      if (prefix && !pulled) {
        renamed.set(`image:${ref}`, rename(ref));
        pair.key = doc.createNode(rename(ref));
      }
      const build = YAML.isMap(pair.value) ? pair.value.get('build', true) : undefined;
      const src = YAML.isMap(build) ? build.get('source') : undefined;
      if (typeof src !== 'string') continue;
      // The config needs absolute paths: a source relative to the checkout (offline.yaml), or the
      // device's /opt/skiff/coreenv/base, becomes this checkout's directory.
      if (src === '/opt/skiff/coreenv/base') build.set('source', join(root, 'defaults', 'base'));
      else if (!src.includes('://') && !isAbsolute(src)) build.set('source', resolve(root, src));
    }
  }

  const containers = doc.get('containers');
  if (YAML.isMap(containers)) {
    for (const pair of containers.items) {
      const name = String(YAML.isScalar(pair.key) ? pair.key.value : pair.key);
      if (prefix) {
        renamed.set(`container:${name}`, rename(name));
        pair.key = doc.createNode(rename(name));
      }
      if (!YAML.isMap(pair.value)) continue;
      const image = pair.value.get('image');
      if (typeof image === 'string' && renamed.has(`image:${image}`)) pair.value.set('image', renamed.get(`image:${image}`));
      // Host directories under the device's persist partition move into .state/persist, so the
      // engine creates nothing outside the checkout.
      const mounts = pair.value.get('mounts', true);
      if (!YAML.isSeq(mounts)) continue;
      for (const item of mounts.items) {
        if (!YAML.isScalar(item) || typeof item.value !== 'string' || !item.value.startsWith(DEVICE_PERSIST)) continue;
        const [src, ...rest] = item.value.split(':');
        const local = join(paths.persist, src.slice(DEVICE_PERSIST.length));
        mkdirSync(local, { recursive: true });
        item.value = [local, ...rest].join(':');
      }
    }
  }

  // The user(s) get the generated key (and follow renamed containers).
  const users = doc.get('users');
  if (YAML.isMap(users)) {
    for (const pair of users.items) {
      if (!YAML.isMap(pair.value)) continue;
      const container = pair.value.get('container');
      if (typeof container === 'string' && renamed.has(`container:${container}`))
        pair.value.set('container', renamed.get(`container:${container}`));
      const login = String(YAML.isScalar(pair.key) ? pair.key.value : pair.key);
      if (login !== 'core') continue;
      let auth = pair.value.get('auth', true);
      if (!YAML.isMap(auth)) {
        auth = doc.createNode({});
        pair.value.set('auth', auth);
      }
      const keys = auth.get('sshKeys', true);
      if (YAML.isSeq(keys)) {
        keys.flow = false;
        keys.add(doc.createNode(publicKey));
      } else {
        const seq = doc.createNode([publicKey]);
        seq.commentBefore = ` The key npm start made: ${show(paths.clientKey)}.pub`;
        auth.set('sshKeys', seq);
      }
    }
  }

  const header = offline
    ? `Made by "npm start -- --offline" from defaults/offline.yaml; edit it freely (it is kept).`
    : `Made by "npm start" from defaults/skiff-core.yaml; edit it freely (it is kept).`;
  doc.commentBefore = ` ${header}\n Delete it to start over from the default.\n${doc.commentBefore ? `\n${doc.commentBefore}` : ''}`;
  writeFileSync(paths.config, doc.toString({ lineWidth: 0, flowCollectionPadding: false }));
  say(`Wrote ${show(paths.config)} (from ${show(source)}).`);
}

function readConfig() {
  try {
    const value = YAML.parse(readFileSync(paths.config, 'utf8')) ?? {};
    return typeof value === 'object' ? value : {};
  } catch {
    return {}; // the daemon reports a broken config with line and column; nothing to add here
  }
}

// --- The daemon, in the foreground. ----------------------------------------------------------
const daemonArgs = [
  BUNDLE,
  '--config',
  paths.config,
  'daemon',
  '--users',
  'lookup',
  '--run-dir',
  paths.runDir,
  '--work-dir',
  paths.workDir,
  '--ssh-listen',
  listen,
  '--host-key',
  paths.hostKey,
];
// Its own process group: Ctrl-C reaches this script only, which passes it on exactly once (a
// second SIGINT would make the daemon exit without its orderly stop).
const daemon = spawn(process.execPath, daemonArgs, { stdio: ['ignore', 'inherit', 'inherit'], detached: true });
let stopping = false;
let gatewayFailed = false;
let daemonExit;
const exited = new Promise((resolveExit) =>
  daemon.once('exit', (code, signal) => {
    daemonExit = { code, signal };
    resolveExit(daemonExit);
  }),
);
daemon.once('error', (err) => fail(`cannot run the daemon: ${err.message}`));
// npm passes a Ctrl-C on to this script as well, so one keypress can arrive twice: a repeat
// within a second is the same request. A later one is passed on and makes the daemon exit at once.
let lastStop = 0;
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.on(signal, () => {
    if (daemonExit !== undefined) return;
    const now = Date.now();
    const repeat = now - lastStop < 1000;
    lastStop = now;
    stopping = true;
    // SIGHUP (the terminal closed) stops too: the daemon would take it for "reload the config".
    if (!repeat) daemon.kill(signal === 'SIGHUP' ? 'SIGTERM' : signal);
  });
}
// Should this script end some other way, the daemon does not outlive it.
process.on('exit', () => {
  if (daemonExit === undefined) daemon.kill('SIGTERM');
});

function status() {
  return new Promise((resolveStatus) => {
    execFile(
      process.execPath,
      [BUNDLE, '--config', paths.config, 'status', '--json', '--run-dir', paths.runDir],
      { timeout: 15_000, maxBuffer: 16 * 1024 * 1024 },
      // Exit status 1 only means "something is not as configured yet": the JSON is still there.
      (_err, stdout) => {
        try {
          resolveStatus(JSON.parse(stdout));
        } catch {
          resolveStatus(undefined);
        }
      },
    );
  });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function watch() {
  // 1. Wait for the daemon to answer and the gateway to listen.
  let s;
  const started = Date.now();
  for (;;) {
    if (daemonExit !== undefined || stopping) return;
    s = await status();
    if (s?.daemon?.running && s.gateway?.listening?.length) break;
    if (s?.daemon?.running && Date.now() - started > 20_000) {
      say(`\nThe daemon runs, but its SSH gateway does not listen on ${listen} (see the log above); stopping.`);
      stopping = true;
      gatewayFailed = true;
      daemon.kill('SIGTERM');
      return;
    }
    await sleep(500);
  }
  printHowToConnect(s);

  // 2. Then say nothing more, unless something needs the user: an image that cannot be had
  //    (no internet), a container the engine refuses, an unreachable engine. The daemon keeps
  //    retrying; each problem is told once.
  const told = new Set();
  for (;;) {
    if (daemonExit !== undefined || stopping) return;
    if (s?.daemon?.running) reportProblems(s, told);
    // Often at first (a missing registry shows within seconds), then now and then.
    await sleep(Date.now() - started < 120_000 ? 2_000 : 10_000);
    s = await status();
  }
}

function loginUser() {
  const users = config.users && typeof config.users === 'object' ? config.users : {};
  const accepting = Object.keys(users).filter((name) =>
    (users[name]?.auth?.sshKeys ?? []).some((k) => String(k).trim().split(/\s+/)[1] === publicKey.split(/\s+/)[1]),
  );
  return { accepting, all: Object.keys(users) };
}

function containerNames() {
  return Object.keys(config.containers && typeof config.containers === 'object' ? config.containers : {});
}

/** Images the config builds here (never pulls): removing the containers leaves them behind. */
function builtImages() {
  const images = config.images && typeof config.images === 'object' ? config.images : {};
  return Object.keys(images).filter((ref) => images[ref]?.build && !images[ref]?.pull);
}

function printHowToConnect(s) {
  const hostFp = s.gateway.hostKeyFingerprint ?? (existsSync(paths.hostKey) ? fingerprint(readFileSync(paths.hostKey)) : undefined);
  const { accepting, all } = loginUser();
  const user = accepting[0] ?? all[0] ?? 'core';
  const key = show(paths.clientKey);
  const sshCommand = `ssh -i ${key} -p ${port} ${user}@${HOST}`;
  const stateConfig = show(paths.config);
  const lines = [
    '',
    `skiff-core is running: SSH gateway on ${s.gateway.listening.join(', ')}, config ${stateConfig}.`,
    '',
    `  Log in:     ${sshCommand}`,
    `  Key:        ${key} (${fingerprint(publicKey) ?? 'ed25519'}) is accepted for ${accepting.length ? accepting.map((u) => `"${u}"`).join(', ') : 'no user'} (users.${user}.auth.sshKeys)`,
    `  Host key:   ${hostFp ?? '(unknown)'} (ED25519, ${show(s.gateway.hostKeyPath ?? paths.hostKey)}); ssh asks you to confirm it on first login`,
    `  Status:     node ${show(BUNDLE)} --config ${stateConfig} status --run-dir ${show(paths.runDir)}`,
    '',
  ];
  if (!accepting.length) {
    lines.push(`  Note: ${stateConfig} lists ${key}.pub for no user, so the gateway refuses it; add it under a user's`);
    lines.push(`        auth.sshKeys (or delete ${stateConfig} to start over).`, '');
  }
  lines.push(`A login before the container is ready shows its progress and waits. Edit ${stateConfig} and the`);
  lines.push('daemon applies the change. Its log follows on stderr.');
  lines.push('Ctrl-C stops the daemon; the containers keep running.', '');
  say(lines.join('\n'));
}

/** Registry hosts named in an error message (quay.io, registry-1.docker.io, …). */
function registriesIn(message) {
  const hosts = new Set();
  for (const m of message.matchAll(/\b((?:[a-z0-9-]+\.)+[a-z]{2,}|localhost)(?::\d+)?(?=[/\s:"']|$)/gi)) {
    const host = m[1].toLowerCase();
    if (/^(quay\.io|.*docker\.io|ghcr\.io|gcr\.io|.*\.pkg\.dev|.*registry.*)$/.test(host)) hosts.add(host);
  }
  return [...hosts];
}

function reportProblems(s, told) {
  const tell = (key, text) => {
    if (told.has(key)) return;
    told.add(key);
    say(text);
  };
  if (s.engine && !s.engine.reachable) {
    tell(
      `engine:${s.engine.error}`,
      `\nnpm start: the Docker engine does not answer (${s.engine.error ?? 'unreachable'}). The daemon waits for it;\n  "bash scripts/provision.sh engine" (as root) starts it again.\n`,
    );
    return;
  }
  for (const image of s.images ?? []) {
    if (image.state !== 'failed') continue;
    const message = String(image.message ?? 'unknown error').replace(/\n/g, '\n    ');
    if (offline) {
      tell(
        `image:${image.ref}`,
        [
          '',
          `npm start: the image ${image.ref} could not be built:`,
          `    ${message}`,
          `It is built FROM ${OFFLINE_BASE_IMAGE}, which "bash scripts/provision.sh base-images" makes on this`,
          'machine (no registry needed). The daemon keeps retrying.',
          '',
        ].join('\n'),
      );
      continue;
    }
    const registries = registriesIn(message);
    const named = registries.length ? registries.join(' and ') : 'its registry';
    tell(
      `image:${image.ref}`,
      [
        '',
        `npm start: the image ${image.ref} could not be obtained: ${named} ${registries.length > 1 ? 'are' : 'is'} not reachable from this machine (or refused it).`,
        `    ${message}`,
        'The daemon keeps retrying. On a machine without internet, stop it (Ctrl-C) and use the offline',
        'variant, which builds the core image from a locally made Debian base (see README, "Getting started"):',
        '',
        '  npm start -- --offline',
        '',
      ].join('\n'),
    );
  }
  for (const c of s.containers ?? []) {
    // An image that cannot be had was reported above; other problems (the engine refusing a
    // privileged container, a failed start) are told as the daemon words them.
    if (!c.problem || /not available|image .* unavailable/i.test(c.problem)) continue;
    tell(`container:${c.name}:${c.problem}`, `\nnpm start: container ${c.name}: ${c.problem}\n`);
  }
}

void watch();

const { code, signal } = await exited;
const names = containerNames();
const built = builtImages();
if (stopping) {
  say('\nskiff-core stopped; its containers keep running.');
  if (names.length) say(`Remove them with: docker rm -f ${names.join(' ')}`);
  if (built.length)
    say(`and the image${built.length > 1 ? 's' : ''} built for ${names.length > 1 ? 'them' : 'it'} with: docker rmi ${built.join(' ')}`);
  process.exit(gatewayFailed ? 1 : (code ?? 130));
}
say(`\nnpm start: the daemon exited unexpectedly (${signal ?? `exit code ${code}`}); see its log above.`);
process.exit(code || 1);
