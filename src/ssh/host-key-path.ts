// Where the gateway's host key lives by default; apart from host-key.ts, which loads ssh2.
import { dirname, join } from 'node:path';

export const HOST_KEY_FILE = 'ssh_host_ed25519_key';

/** Default host key path: beside the config, on the persist partition with it. */
export function defaultHostKeyPath(configPath: string): string {
  return join(dirname(configPath), HOST_KEY_FILE);
}
