// Prometheus metrics, opt-in (metrics.listen). Gauges are read from the status snapshot when
// scraped, so an idle daemon does no metrics work; prom-client is loaded only once configured.
import { createServer, type Server } from 'node:http';
import { rm } from 'node:fs/promises';
import { splitListenAddress } from '../config/checks.js';
import type { Logger } from '../log.js';
import type { ConvergeReport } from '../reconcile/converge.js';
import type { StatusSnapshot } from './status.js';

export interface DaemonMetrics {
  /** A converge pass finished after `seconds`. */
  passDone(seconds: number, report: ConvergeReport): void;
  /** Serve GET /metrics on HOST:PORT or a socket path; another address moves it, none stops it. */
  listen(address: string | undefined): Promise<void>;
  close(): Promise<void>;
}

export async function createDaemonMetrics(status: () => StatusSnapshot, log: Logger): Promise<DaemonMetrics> {
  const prom = await import('prom-client');
  const register = new prom.Registry();
  prom.collectDefaultMetrics({ register });

  new prom.Gauge({
    name: 'skiff_core_container_up',
    help: 'Whether the configured container is running (1) or not (0).',
    labelNames: ['container'],
    registers: [register],
    collect() {
      this.reset();
      for (const c of status().containers) this.set({ container: c.name }, c.state === 'running' ? 1 : 0);
    },
  });
  // The engine's restart count starts again at 0 for a recreated container: only rises count.
  const lastRestarts = new Map<string, number>();
  new prom.Counter({
    name: 'skiff_core_container_restarts_total',
    help: 'Restarts of the container by the engine (crashes under a restart policy).',
    labelNames: ['container'],
    registers: [register],
    collect() {
      for (const c of status().containers) {
        const count = c.restartCount ?? 0;
        const last = lastRestarts.get(c.name) ?? 0;
        this.inc({ container: c.name }, Math.max(0, count - last));
        lastRestarts.set(c.name, count);
      }
    },
  });
  new prom.Gauge({
    name: 'skiff_core_sessions',
    help: "Sessions attached to the user's container.",
    labelNames: ['user'],
    registers: [register],
    collect() {
      this.reset();
      for (const u of status().users) this.set({ user: u.name }, u.sessions);
    },
  });
  new prom.Gauge({
    name: 'skiff_core_config_ok',
    help: 'Whether the config (with its drop-ins) is valid (1); 0 while the last good one is kept.',
    registers: [register],
    collect() {
      this.set(status().config.ok ? 1 : 0);
    },
  });
  const duration = new prom.Histogram({
    name: 'skiff_core_converge_duration_seconds',
    help: 'How long a converge pass took.',
    buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900],
    registers: [register],
  });
  const imageFailures = new prom.Counter({
    name: 'skiff_core_image_failures_total',
    help: 'Converge passes in which the image could not be obtained (pull or build failed).',
    labelNames: ['image'],
    registers: [register],
  });

  const server: Server = createServer((req, res) => {
    if (req.method !== 'GET' || req.url?.split('?')[0] !== '/metrics') {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('only GET /metrics is served here\n');
      return;
    }
    register.metrics().then(
      (text) => res.writeHead(200, { 'content-type': register.contentType }).end(text),
      (err: unknown) => {
        log.error({ err }, 'Cannot collect metrics');
        res.writeHead(500).end();
      },
    );
  });
  server.on('error', (err) => log.error({ err }, 'Metrics endpoint error'));
  let current: string | undefined;

  async function stop(): Promise<void> {
    if (current === undefined) return;
    const was = current;
    current = undefined;
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    server.closeAllConnections();
    await closed;
    if (was.startsWith('/')) await rm(was, { force: true });
  }

  return {
    passDone(seconds, report) {
      duration.observe(seconds);
      for (const image of report.images) if (image.status === 'failed') imageFailures.inc({ image: image.ref });
    },
    async listen(address) {
      if (address === current) return;
      await stop();
      if (address === undefined) return;
      if (address.startsWith('/')) await rm(address, { force: true });
      const split = address.startsWith('/') ? undefined : splitListenAddress(address);
      const at = split ? { host: split.host, port: split.port } : { path: address };
      try {
        await new Promise<void>((resolve, reject) => {
          server.once('error', reject);
          server.listen(at, () => {
            server.off('error', reject);
            resolve();
          });
        });
        current = address;
        log.info({ address }, 'Metrics endpoint listening (GET /metrics)');
      } catch (err) {
        log.error({ address, err }, 'Metrics endpoint cannot listen');
      }
    },
    close: stop,
  };
}
