// The OpenSSH client as a script runs it, for the tests and the bench alike: never a prompt (no
// host key question, no password), no host key kept, errors only.

export function scriptedSsh(logLevel = 'ERROR'): string[] {
  return ['-o', 'StrictHostKeyChecking=no', '-o', 'UserKnownHostsFile=/dev/null', '-o', 'BatchMode=yes', '-o', `LogLevel=${logLevel}`];
}

/** The same with `keyPath` as the only key and no user config, giving up on a connect after 10 s. */
export function keyOnlySsh(keyPath: string): string[] {
  return ['-F', '/dev/null', '-i', keyPath, '-o', 'IdentitiesOnly=yes', ...scriptedSsh(), '-o', 'ConnectTimeout=10'];
}
