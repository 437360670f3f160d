// Measure 5: logins end to end through OpenSSH into a device container (sshd → login shell →
// container) against ssh + docker exec.
import { deviceUnavailable, startDevice, waitForSsh, type Device } from '../lib/device.js';
import { median, round } from '../lib/stats.js';
import { CFG, DEBIAN_IMAGE, REPO } from '../lib/config.js';
import type { BenchContext } from '../lib/context.js';
import { check } from '../lib/helpers.js';
import { noteLoad, raw, rows, say, side, skipRow } from '../lib/report.js';

export async function measureSsh(ctx: BenchContext) {
  const { prefix, tmp, dockerCli } = ctx;
  const targetText = 'report both';
  const unavailable = await deviceUnavailable(REPO);
  if (unavailable) {
    skipRow('5a', 'ssh -T core@127.0.0.1 true via OpenSSH + login shell', targetText, unavailable);
    skipRow('5b', 'ssh -T core@127.0.0.1 true via the built-in gateway', targetText, unavailable);
    return;
  }
  say('5 ssh: building and starting the device container');
  noteLoad('5');
  const ctr = `${prefix}-dev-core`;
  let device: Device;
  try {
    device = await startDevice({ repoRoot: REPO, prefix, tmp, container: ctr, containerImage: DEBIAN_IMAGE, dockerCli, log: say });
  } catch (err) {
    const reason = `device did not start: ${(err as Error).message.split('\n')[0]}`;
    skipRow('5a', 'ssh -T core@127.0.0.1 true via OpenSSH + login shell', targetText, reason);
    skipRow('5b', 'ssh -T core@127.0.0.1 true via the built-in gateway', targetText, reason);
    return;
  }
  const rootWait = await waitForSsh(device, device.sshPort, 'root', 60_000);
  const coreWait = rootWait ?? (await waitForSsh(device, device.sshPort, 'core', 180_000));
  const gatewayWait = await waitForSsh(device, device.gatewayPort, 'core', coreWait ? 5_000 : 60_000);
  const docker = `/usr/local/bin/docker exec ${ctr} true`;
  if (rootWait) {
    skipRow('5a', 'ssh -T core@127.0.0.1 true via OpenSSH + login shell', targetText, `sshd in the device: ${rootWait}`);
    skipRow('5b', 'ssh -T core@127.0.0.1 true via the built-in gateway', targetText, `sshd in the device: ${rootWait}`);
    return;
  }
  const plainDocker = await device.ssh(device.sshPort, 'root', docker);
  if (plainDocker.code !== 0) say(`5 warning: ${docker} over ssh failed: ${plainDocker.stderr.trim()}`);
  for (let i = 0; i < CFG.warmup; i++) {
    if (!coreWait) await device.ssh(device.sshPort, 'core', 'true');
    if (!gatewayWait) await device.ssh(device.gatewayPort, 'core', 'true');
    await device.ssh(device.sshPort, 'root', docker);
  }
  const openssh: number[] = [];
  const gateway: number[] = [];
  const plain: number[] = [];
  const plainExec: number[] = [];
  for (let i = 0; i < CFG.sshPairs; i++) {
    if (!coreWait) {
      const r = await device.ssh(device.sshPort, 'core', 'true');
      check(r, 'ssh core (OpenSSH)');
      openssh.push(r.ms);
    }
    if (!gatewayWait) {
      const r = await device.ssh(device.gatewayPort, 'core', 'true');
      check(r, 'ssh core (gateway)');
      gateway.push(r.ms);
    }
    const rp = await device.ssh(device.sshPort, 'root', 'true');
    check(rp, 'ssh root true');
    plain.push(rp.ms);
    if (plainDocker.code === 0) {
      const rd = await device.ssh(device.sshPort, 'root', docker);
      check(rd, 'ssh root docker exec');
      plainExec.push(rd.ms);
    }
  }
  raw.ssh = {
    opensshLoginShellMs: openssh,
    gatewayMs: gateway,
    plainAccountTrueMs: plain,
    plainAccountDockerExecMs: plainExec,
    device: device.name,
  };
  const base = plainExec.length ? side(plainExec) : 'skipped: docker exec inside the device failed';
  const ratio = (v: number[]) => (plainExec.length && v.length ? round(median(v) / median(plainExec)) : undefined);
  if (coreWait) skipRow('5a', 'ssh -T core@127.0.0.1 true via OpenSSH + login shell', targetText, `login never succeeded: ${coreWait}`);
  else
    rows.push({
      id: '5a',
      measure: 'ssh -T core@127.0.0.1 true: OpenSSH + login shell vs plain account + docker exec',
      unit: 'ms',
      skiff: side(openssh),
      baseline: base,
      ratio: ratio(openssh),
      ratioOf: 'median',
      target: targetText,
    });
  if (gatewayWait)
    skipRow('5b', 'ssh -T core@127.0.0.1 true via the built-in gateway', targetText, `gateway did not accept the login: ${gatewayWait}`);
  else
    rows.push({
      id: '5b',
      measure: 'ssh -T core@127.0.0.1 true: built-in gateway vs plain account + docker exec',
      unit: 'ms',
      skiff: side(gateway),
      baseline: base,
      ratio: ratio(gateway),
      ratioOf: 'median',
      target: targetText,
    });
  rows.push({ id: '5c', measure: '  reference: ssh -T root@ (plain account) true', unit: 'ms', skiff: side(plain), target: 'info' });
  say(
    `5 openssh ${round(median(openssh))} ms, gateway ${round(median(gateway))} ms, plain ${round(median(plain))} ms, plain+docker exec ${round(median(plainExec))} ms`,
  );
}
