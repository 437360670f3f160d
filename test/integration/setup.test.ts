// `skiff-core setup` against the real engine: what a device owner sees when they run it.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/load.js';
import { createDockerEngine } from '../../src/engine/docker-engine.js';
import type { Engine } from '../../src/engine/engine.js';
import { converge } from '../../src/reconcile/converge.js';
import { runCli } from './helpers/cli.js';
import {
  BUSYBOX_IMAGE,
  cleanupByPrefix,
  execIn,
  integrationSkipReason,
  testDocker,
  TEST_REGISTRY,
  uniquePrefix,
} from './helpers/engine.js';
import { systemdContainer } from './helpers/configs.js';

const CORE_CONTEXT = fileURLToPath(new URL('../fixtures/images/core', import.meta.url));

const exec = execIn;

/** Every engine call that changes something, by method name. */
function recording(engine: Engine): { engine: Engine; calls: string[] } {
  const calls: string[] = [];
  const mutating = new Set([
    'pullImage',
    'tagImage',
    'removeImage',
    'buildImage',
    'createContainer',
    'startContainer',
    'stopContainer',
    'removeContainer',
    'renameContainer',
    'commitContainer',
    'execRun',
  ]);
  const wrapped = new Proxy(engine, {
    get(target, prop, receiver) {
      const value = Reflect.get(target, prop, receiver) as unknown;
      if (typeof value !== 'function') return value;
      return (...args: unknown[]) => {
        if (mutating.has(String(prop))) calls.push(String(prop));
        return (value as (...a: unknown[]) => unknown).apply(target, args);
      };
    },
  });
  return { engine: wrapped, calls };
}

describe.skipIf(integrationSkipReason())('skiff-core setup (real engine)', () => {
  const docker = testDocker();
  const prefix = uniquePrefix();
  const core = `${prefix}-core`;
  const tool = `${prefix}-tool`;
  const coreImage = `${prefix}/core:1`;
  let dir: string;
  let configFile: string;
  let hostDir: string;

  const write = (yaml: string) => writeFile(configFile, yaml);
  const setup = (...args: string[]) => runCli(['--config', configFile, 'setup', '--work-dir', join(dir, 'work'), ...args]);

  function baseConfig(extraEnv: string[] = []): string {
    return `containers:
  ${core}:${systemdContainer(coreImage, { extraMounts: [`${hostDir}:/mnt/host`], env: extraEnv })}
  ${tool}:
    image: ${BUSYBOX_IMAGE}
    cmd: ["sleep", "1000000"]
    ports:
      - hostPort: 0
        containerPort: 8080
    startAfterCreate: true
users:
  core:
    container: ${core}
    containerUser: core
images:
  ${coreImage}:
    pull:
      pullPolicy: ifnotpresent
      registry: ${TEST_REGISTRY}
    build:
      source: ${CORE_CONTEXT}
`;
  }

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), `${prefix}-`));
    configFile = join(dir, 'config.yaml');
    hostDir = join(dir, 'host');
    await rm(hostDir, { recursive: true, force: true });
    await import('node:fs/promises').then((fs) => fs.mkdir(hostDir));
    await writeFile(join(hostDir, 'from-host'), 'hello from the host\n');
  });

  afterAll(async () => {
    await cleanupByPrefix(prefix, docker);
    const snapshots = await docker.listImages({ filters: { reference: [`skiff-core-snapshot/${prefix}-*`] } });
    for (const image of snapshots)
      await docker
        .getImage(image.Id)
        .remove({ force: true })
        .catch(() => undefined);
    await rm(dir, { recursive: true, force: true });
  });

  it('builds the image when the pull fails, and boots a systemd container with its mounts', async () => {
    await write(baseConfig());
    const result = await setup();
    expect(result.stderr).toContain(`image ${coreImage}: pull failed`);
    expect(result.stderr).toMatch(new RegExp(`image ${coreImage}: building step \\d+/\\d+`));
    expect(result.stderr).toContain(`container ${core}: ready (systemd: running)`);
    expect(result.stdout).toMatch(new RegExp(`image +${coreImage.replace('/', '\\/')} +obtained`));
    expect(result.stdout).toMatch(new RegExp(`container +${core} +created +systemd: running`));
    expect(result.stdout).toContain('setup complete');
    expect(result.code).toBe(0);

    expect((await exec(docker, core, ['cat', '/proc/1/comm'])).trim()).toBe('systemd');
    expect((await exec(docker, core, ['systemctl', 'is-system-running'])).trim()).toBe('running');
    expect(await exec(docker, core, ['cat', '/mnt/host/from-host'])).toBe('hello from the host\n');
    const mounts = await exec(docker, core, ['cat', '/proc/mounts']);
    expect(mounts).toMatch(/^tmpfs \/run tmpfs rw,nosuid,nodev,noexec/m);
    expect(mounts).toMatch(/^tmpfs \/run\/lock tmpfs /m);
    expect(await exec(docker, core, ['id', '-un', 'core'])).toBe('core\n');

    const info = await docker.getContainer(tool).inspect();
    expect(info.State.Running).toBe(true);
    expect(info.HostConfig.Init).toBe(true);
    expect(Object.keys(info.HostConfig.PortBindings ?? {})).toEqual(['8080/tcp']);
    expect(info.NetworkSettings.Ports['8080/tcp']?.[0]?.HostPort).toMatch(/^\d+$/);
  });

  it('makes no mutating engine call when run again with the same config', async () => {
    // Fractional seconds: events of the previous test in the same second must not count.
    const since = (Date.now() / 1000).toFixed(3);
    const parsed = parseConfig(baseConfig(), configFile);
    if (!parsed.ok) throw new Error('test config invalid');
    const { engine, calls } = recording(createDockerEngine());
    const report = await converge(parsed.config, { engine, workDir: join(dir, 'work') });
    expect(report.ok).toBe(true);
    expect(report.containers.map((c) => c.status)).toEqual(['unchanged', 'unchanged']);
    expect(calls).toEqual([]);

    // And the CLI, watched from the engine's side: no event touches our containers or images.
    const cli = await setup();
    expect(cli.code).toBe(0);
    expect(cli.stdout).toMatch(new RegExp(`container +${core} +unchanged`));
    const until = Math.floor(Date.now() / 1000) + 1;
    const events = (await docker.getEvents({ since: since as unknown as number, until })) as unknown as NodeJS.ReadableStream;
    let text = '';
    for await (const chunk of events) text += chunk.toString();
    const ours = text
      .split('\n')
      .filter(Boolean)
      .map((line) => JSON.parse(line) as { Type: string; Action: string; Actor: { Attributes: Record<string, string> } })
      .filter((e) => (e.Actor.Attributes.name ?? '').includes(prefix));
    expect(ours.map((e) => `${e.Type} ${e.Action}`)).toEqual([]);
  });

  it('applies a changed option by recreating the container, keeping files written inside it', async () => {
    await exec(docker, core, ['sh', '-c', 'echo installed > /root/marker']);
    const before = await docker.getContainer(core).inspect();
    await write(baseConfig(['EDITION=2']));
    const result = await setup();
    expect(result.stdout).toMatch(
      new RegExp(`container +${core} +replaced +applying changed options: recreated from snapshot skiff-core-snapshot/${core}:`),
    );
    expect(result.code).toBe(0);

    const after = await docker.getContainer(core).inspect();
    expect(after.Id).not.toBe(before.Id);
    expect(after.Config.Env).toContain('EDITION=2');
    expect(await exec(docker, core, ['cat', '/root/marker'])).toBe('installed\n');
    expect((await exec(docker, core, ['cat', '/proc/1/comm'])).trim()).toBe('systemd');
    // The old container is gone; the snapshot stays as a restore point.
    const names = (await docker.listContainers({ all: true })).flatMap((c) => c.Names);
    expect(names.filter((n) => n.includes(core))).toEqual([`/${core}`]);
    expect(await docker.listImages({ filters: { reference: [`skiff-core-snapshot/${core}`] } })).toHaveLength(1);
  });

  it('removes a deleted env entry from the recreated container, keeping files written inside it', async () => {
    await exec(docker, core, ['sh', '-c', 'echo second > /root/marker2']);
    await write(baseConfig());
    const result = await setup();
    expect(result.stdout).toMatch(new RegExp(`container +${core} +replaced +applying changed options: recreated from snapshot`));
    expect(result.code).toBe(0);

    const after = await docker.getContainer(core).inspect();
    expect(after.Config.Env.filter((e) => e.startsWith('EDITION='))).toEqual([]);
    expect(after.Config.Env).toContain('container=docker');
    expect(await exec(docker, core, ['sh', '-c', 'echo "[$EDITION]"; cat /root/marker /root/marker2'])).toBe('[]\ninstalled\nsecond\n');
    // The snapshot carries the image's settings, not the container's, and keeps its label.
    const snapshots = await docker.listImages({ filters: { reference: [`skiff-core-snapshot/${core}`] } });
    expect(snapshots).toHaveLength(2);
    for (const s of snapshots) {
      const image = await docker.getImage(s.Id).inspect();
      expect(image.Config.Env ?? []).not.toContain('EDITION=2');
      expect(image.Config.Labels?.['io.skiff-core.snapshot-of']).toBe(core);
    }
    // A run with nothing changed leaves the recreated container alone.
    const again = await setup();
    expect(again.stdout).toMatch(new RegExp(`container +${core} +unchanged`));
  });

  it('leaves a container it did not create alone and reports it', async () => {
    const foreignName = `${prefix}-foreign`;
    // Init: sleep as PID 1 would ignore SIGTERM and make the adopt's stop wait for its timeout.
    const foreign = await docker.createContainer({
      name: foreignName,
      Image: BUSYBOX_IMAGE,
      Cmd: ['sleep', '1000000'],
      HostConfig: { Init: true },
    });
    await foreign.start();
    const before = await foreign.inspect();
    await write(
      `containers:\n  ${foreignName}:\n    image: ${BUSYBOX_IMAGE}\n    cmd: ["sleep", "5"]\n    startAfterCreate: true\n  ${prefix}-other:\n    image: ${BUSYBOX_IMAGE}\n    cmd: ["sleep", "1000000"]\n    startAfterCreate: true\n`,
    );
    const result = await setup();
    expect(result.code).toBe(1);
    expect(result.stdout).toMatch(
      new RegExp(`container +${foreignName} +foreign +a container named "${foreignName}" exists but skiff-core did not create it`),
    );
    expect(result.stdout).toContain(`skiff-core adopt ${foreignName}`);
    expect(result.stdout).toMatch(new RegExp(`container +${prefix}-other +created`));
    const after = await foreign.inspect();
    expect(after.Id).toBe(before.Id);
    expect(after.State.StartedAt).toBe(before.State.StartedAt);
    expect(after.Config.Cmd).toEqual(['sleep', '1000000']);
    expect(after.Config.Labels).toEqual(before.Config.Labels);

    // Adopting it keeps what was written inside and applies the configured options.
    await exec(docker, foreignName, ['sh', '-c', 'echo kept > /root-marker']);
    const adopted = await runCli(['--config', configFile, 'adopt', foreignName, '--work-dir', join(dir, 'work')]);
    expect(adopted.stdout).toMatch(new RegExp(`container +${foreignName} +replaced +adopting it`));
    expect(adopted.code).toBe(0);
    const taken = await docker.getContainer(foreignName).inspect();
    expect(taken.Config.Labels['io.skiff-core.managed']).toBe('true');
    expect(taken.Config.Cmd).toEqual(['sleep', '5']);
    expect(await exec(docker, foreignName, ['cat', '/root-marker'])).toBe('kept\n');
  });

  it("surfaces the engine's refusal of privileged containers without breaking the others", async () => {
    const priv = `${prefix}-priv`;
    const fine = `${prefix}-fine`;
    await write(
      `containers:\n  ${priv}:\n    image: ${BUSYBOX_IMAGE}\n    cmd: ["sleep", "1000000"]\n    privileged: true\n    startAfterCreate: true\n  ${prefix}-allcaps:\n    image: ${BUSYBOX_IMAGE}\n    cmd: ["sleep", "1000000"]\n    capAdd: [ALL]\n    startAfterCreate: true\n  ${fine}:\n    image: ${BUSYBOX_IMAGE}\n    cmd: ["sleep", "1000000"]\n    startAfterCreate: true\n`,
    );
    const result = await setup();
    expect(result.code).toBe(1);
    expect(result.stdout).toMatch(
      new RegExp(`container +${priv} +failed +container ${priv} failed to start: .*(operation not permitted|apply caps)`),
    );
    expect(result.stdout).toMatch(
      new RegExp(
        `container +${prefix}-allcaps +failed +container ${prefix}-allcaps failed to start: .*(operation not permitted|apply caps)`,
      ),
    );
    expect(result.stdout).toMatch(new RegExp(`container +${fine} +created`));
    expect(result.stdout).toContain('setup incomplete');
    expect((await docker.getContainer(fine).inspect()).State.Running).toBe(true);
  });

  it('fails with a clear message when the engine cannot be reached', async () => {
    const result = await runCli(['--config', configFile, 'setup'], { env: { DOCKER_HOST: `unix://${join(dir, 'no.sock')}` } });
    expect(result.code).toBe(1);
    expect(result.stderr).toContain(`cannot reach Docker at ${join(dir, 'no.sock')}`);
  });

  it('refuses an invalid config and changes nothing', async () => {
    await write(`containers:\n  ${prefix}-never:\n    image: ${BUSYBOX_IMAGE}\n    tmpfs: {}\n`);
    const result = await setup();
    expect(result.code).toBe(1);
    expect(result.stderr).toContain(`${configFile}:4:5: containers.${prefix}-never.tmpfs: unknown key "tmpfs"; did you mean "tmpFs"?`);
    expect(result.stderr).toContain('nothing was changed');
    expect((await docker.listContainers({ all: true })).flatMap((c) => c.Names)).not.toContain(`/${prefix}-never`);
  });
});
