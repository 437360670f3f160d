import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Config } from '../../../src/config/schema.js';
import { silentLogger } from '../../../src/log.js';
import { startGatewayService, type GatewayService, type GatewayStatus } from '../../../src/ssh/service.js';
import { freePort } from '../../support/net.js';

const configWith = (gateway?: Record<string, unknown>) => Config.parse({ containers: {}, users: {}, ...(gateway ? { gateway } : {}) });

describe('ssh/service', () => {
  let dir: string;
  let service: GatewayService | undefined;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'skiff-gwsvc-'));
  });
  afterEach(async () => {
    await service?.close();
    service = undefined;
    await rm(dir, { recursive: true, force: true });
  });

  function start(config: () => Config | undefined, listen: string[] = [], onStatus?: (s: GatewayStatus) => void) {
    return startGatewayService({
      configPath: join(dir, 'config.yaml'),
      listen,
      daemon: { config, sessions: async () => ({ code: 0 }) },
      log: silentLogger(),
      pollMs: 0,
      ...(onStatus ? { onStatus } : {}),
    });
  }

  it('stays idle, without making a host key, while no address is asked for', async () => {
    service = await start(() => configWith());
    expect(service.status()).toEqual({ listening: [], hostKeyFingerprint: undefined, hostKeyPath: undefined });
    expect(await readdir(dir)).toEqual([]);
  });

  it('follows gateway.listen across reloads (a new config object), keeping its host key', async () => {
    const [a, b] = [await freePort(), await freePort()];
    let config = configWith({ listen: [`127.0.0.1:${a}`] });
    const seen: GatewayStatus[] = [];
    service = await start(
      () => config,
      [],
      (s) => seen.push(s),
    );
    const first = service.status();
    expect(first).toMatchObject({ listening: [`127.0.0.1:${a}`], hostKeyPath: join(dir, 'ssh_host_ed25519_key') });
    expect(first.hostKeyFingerprint).toMatch(/^SHA256:/);

    config = configWith({ listen: [`127.0.0.1:${b}`] });
    await service.sync();
    expect(service.status()).toEqual({ ...first, listening: [`127.0.0.1:${b}`] });
    config = configWith();
    await service.sync();
    expect(service.status().listening).toEqual([]);
    expect(seen.map((s) => s.listening)).toEqual([[`127.0.0.1:${a}`], [`127.0.0.1:${b}`], []]);
  });

  it('lets the command line replace gateway.listen, and takes gateway.hostKey beside the config', async () => {
    const [flag, configured] = [await freePort(), await freePort()];
    service = await start(() => configWith({ listen: [`127.0.0.1:${configured}`], hostKey: 'keys/host' }), [`127.0.0.1:${flag}`]);
    expect(service.status()).toMatchObject({ listening: [`127.0.0.1:${flag}`], hostKeyPath: join(dir, 'keys/host') });
  });

  it("serves the command line's addresses even without a good config", async () => {
    const port = await freePort();
    service = await start(() => undefined, [`127.0.0.1:${port}`]);
    expect(service.status().listening).toEqual([`127.0.0.1:${port}`]);
  });
});
