import { describe, expect, it } from 'vitest';
import { checkSshdSettings, parseSshdConfig } from '../../../src/users/sshd-config.js';

async function check(files: Record<string, string>) {
  const settings = await parseSshdConfig('/etc/ssh/sshd_config', async (p) => files[p]);
  return checkSshdSettings(settings);
}

const SAFE = [
  'AuthorizedKeysFile .ssh/authorized_keys /etc/skiff-core/authorized_keys/%u',
  'Subsystem sftp /usr/lib/openssh/sftp-server',
  'AllowTcpForwarding no',
  'AllowStreamLocalForwarding no',
  'AllowAgentForwarding no',
  'X11Forwarding no',
].join('\n');

describe('users/sshd-config', () => {
  it('finds nothing wrong in a configuration made for skiff-core', async () => {
    expect(await check({ '/etc/ssh/sshd_config': SAFE })).toEqual([]);
  });

  it('reports internal-sftp as an error: it serves the host, not the container', async () => {
    const findings = await check({ '/etc/ssh/sshd_config': SAFE.replace('/usr/lib/openssh/sftp-server', 'internal-sftp') });
    expect(findings).toEqual([expect.objectContaining({ severity: 'error', setting: 'Subsystem sftp internal-sftp' })]);
  });

  it("reports keys that sshd would not read from skiff-core's directory", async () => {
    const findings = await check({ '/etc/ssh/sshd_config': SAFE.replace(/^AuthorizedKeysFile.*$/m, '') });
    expect(findings).toEqual([
      expect.objectContaining({ severity: 'error', setting: 'AuthorizedKeysFile .ssh/authorized_keys .ssh/authorized_keys2' }),
    ]);
  });

  it('warns about forwarding left at its defaults, and honours the first value like sshd', async () => {
    const findings = await check({
      '/etc/ssh/sshd_config':
        'Include /etc/ssh/sshd_config.d/*.conf\nAllowTcpForwarding no\nAuthorizedKeysFile /etc/skiff-core/authorized_keys/%u\n',
    });
    expect(findings.map((f) => f.setting)).toEqual(['allowstreamlocalforwarding (default)', 'allowagentforwarding (default)']);
    // An included file read first wins over a later line, as in sshd.
    const included = await parseSshdConfig('/etc/ssh/sshd_config', async (p) =>
      p === '/etc/ssh/sshd_config'
        ? 'Include /etc/ssh/extra.conf\nAllowTcpForwarding no\n'
        : p === '/etc/ssh/extra.conf'
          ? 'AllowTcpForwarding yes\n'
          : undefined,
    );
    expect(included.get('allowtcpforwarding')).toEqual(['yes']);
  });

  it('ignores settings inside Match blocks when judging the defaults', async () => {
    const findings = await check({
      '/etc/ssh/sshd_config': `${SAFE}\nMatch User admin\n  AllowTcpForwarding yes\n  ForceCommand /bin/true\n`,
    });
    expect(findings).toEqual([]);
  });
});

describe('users/sshd-config: agent forwarding', () => {
  const withAgent = SAFE.replace('AllowAgentForwarding no', 'AllowAgentForwarding yes');
  it('warns about AllowAgentForwarding only while no user forwards an agent, and says why', async () => {
    const settings = await parseSshdConfig('/etc/ssh/sshd_config', async () => withAgent);
    const [finding] = checkSshdSettings(settings);
    expect(finding?.message).toContain("sshd makes the agent socket on the host, where a mapped user's container cannot reach it");
    expect(finding?.message).toContain('auth.agentForwarding: true');
    expect(checkSshdSettings(settings, { agentUsers: ['core'] })).toEqual([]);
  });

  it('warns when a user forwards an agent and sshd refuses it', async () => {
    const settings = await parseSshdConfig('/etc/ssh/sshd_config', async () => SAFE);
    expect(checkSshdSettings(settings, { agentUsers: ['core'] })).toEqual([
      expect.objectContaining({
        severity: 'warning',
        message: expect.stringContaining('auth.agentForwarding is on for core, but sshd refuses'),
      }),
    ]);
  });
});
