import { readFile, stat } from 'node:fs/promises';
import { plainPasswordUsers, readableByOthers } from '../../config/secrets.js';
import { loadConfigFile } from '../../config/load.js';
import { connectControl } from '../../daemon/control-client.js';
import { controlSocketPath } from '../../daemon/control-protocol.js';
import { createDockerEngine } from '../../engine/docker-engine.js';
import { errorMessage } from '../../errors.js';
import { DOCKER_GROUP } from '../../users/host-user.js';
import { findPasswdEntry, parseGroup } from '../../users/passwd-files.js';
import { checkSshdSettings, parseSshdConfig, type Finding } from '../../users/sshd-config.js';
import { HELP_OPTION, parse } from '../args.js';
import type { Command } from '../command.js';
import { EXIT, paint, useColor, writeLine } from '../io.js';
import { launcherFrom, runDirFrom } from '../paths.js';

export const doctor: Command = {
  path: ['doctor'],
  summary: 'Check the host for what would let logins escape their containers',
  help: `Usage: skiff-core doctor [--sshd-config FILE] [--launcher PATH] [--run-dir DIR]

Checks, and says how to fix:
  - sshd: "Subsystem sftp internal-sftp" (serves the host's files, bypassing the login shell) is
    an error; so is an AuthorizedKeysFile without skiff-core's keys directory. Forwarding
    (TCP, unix sockets, agent, X11, tunnels) and user environments are warnings.
  - mapped users: in the docker group (root-equivalent), or a login shell other than skiff-core.
  - the config file, the Docker engine and the daemon answer.
Exit status: 1 when there is an error, else 0.

Options:
  --sshd-config FILE  sshd's configuration (default /etc/ssh/sshd_config)
  --launcher PATH     the login shell mapped users should have (default /usr/bin/skiff-core)
  --run-dir DIR       the daemon's socket directory ($SKIFF_CORE_RUN_DIR)`,
  async run(argv, ctx) {
    const { values } = parse(
      argv,
      { ...HELP_OPTION, 'sshd-config': { type: 'string' }, launcher: { type: 'string' }, 'run-dir': { type: 'string' } },
      0,
    );
    if (values.help) {
      writeLine(ctx.io.stdout, this.help);
      return EXIT.ok;
    }
    const color = paint(useColor(ctx.io, 'stdout'));
    const findings: Finding[] = [];
    const ok: string[] = [];

    const loaded = await loadConfigFile(ctx.configPath);
    const sshdPath = values['sshd-config'] ?? '/etc/ssh/sshd_config';
    const sshdText = await readFile(sshdPath, 'utf8').catch(() => undefined);
    if (sshdText === undefined) findings.push({ severity: 'warning', setting: sshdPath, message: 'cannot read it; sshd was not checked' });
    else {
      const before = findings.length;
      const agentUsers = loaded.ok ? Object.keys(loaded.config.users).filter((u) => loaded.config.users[u]?.auth?.agentForwarding) : [];
      findings.push(...checkSshdSettings(await parseSshdConfig(sshdPath), { agentUsers }));
      if (findings.length === before) ok.push(`sshd (${sshdPath})`);
    }

    if (!loaded.ok) {
      findings.push({
        severity: 'error',
        setting: ctx.configPath,
        message: `has ${loaded.diagnostics.filter((d) => d.severity === 'error').length} error(s); run skiff-core config validate`,
      });
    } else {
      ok.push(`config (${ctx.configPath})`);
      const plain = plainPasswordUsers(loaded.config);
      const mode = (await stat(ctx.configPath).catch(() => undefined))?.mode;
      if (plain.length > 0 && mode !== undefined && readableByOthers(mode)) {
        findings.push({
          severity: 'warning',
          setting: ctx.configPath,
          message: `holds plain-text passwords (${plain.map((u) => `users.${u}.auth.password`).join(', ')}) and is readable by others (mode ${(mode & 0o777).toString(8)}): chmod 600 it (the daemon does when it loads it), or replace them with auth.passwordHash (openssl passwd -6)`,
        });
      }
      const launcher = launcherFrom(values.launcher, ctx.io.env);
      const passwd = (await readFile('/etc/passwd', 'utf8').catch(() => '')) ?? '';
      const groups = parseGroup((await readFile('/etc/group', 'utf8').catch(() => '')) ?? '');
      const docker = groups.find((g) => g.name === DOCKER_GROUP);
      for (const name of Object.keys(loaded.config.users)) {
        const entry = findPasswdEntry(passwd, name);
        if (!entry) {
          findings.push({
            severity: 'warning',
            setting: `user ${name}`,
            message: 'has no host account (the daemon creates it with --create-users)',
          });
          continue;
        }
        if (docker && (docker.members.includes(name) || entry.gid === docker.gid)) {
          findings.push({
            severity: 'error',
            setting: `user ${name}`,
            message: `is in the ${DOCKER_GROUP} group, i.e. root-equivalent; the daemon removes it (or: gpasswd -d ${name} ${DOCKER_GROUP})`,
          });
        }
        if (entry.shell !== launcher) {
          findings.push({
            severity: 'error',
            setting: `user ${name}`,
            message: `has login shell ${entry.shell}, not ${launcher}: its logins would not reach the container`,
          });
        }
      }
    }

    try {
      const v = await createDockerEngine().ping();
      ok.push(`Docker ${v.version}`);
    } catch (err) {
      findings.push({ severity: 'error', setting: 'Docker', message: errorMessage(err) });
    }
    try {
      const client = await connectControl(controlSocketPath(runDirFrom(values['run-dir'], ctx.io.env)));
      client.close();
      ok.push('daemon');
    } catch (err) {
      findings.push({ severity: 'error', setting: 'daemon', message: errorMessage(err) });
    }

    for (const line of ok) writeLine(ctx.io.stdout, `${color.green('ok')}       ${line}`);
    for (const f of findings) {
      const label = f.severity === 'error' ? color.red('error') : color.yellow('warning');
      writeLine(ctx.io.stdout, `${label}${' '.repeat(9 - f.severity.length)}${f.setting}: ${f.message}`);
    }
    return findings.some((f) => f.severity === 'error') ? EXIT.failure : EXIT.ok;
  },
};
