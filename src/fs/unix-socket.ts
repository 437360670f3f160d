// Unix sockets that are private from the instant they exist.
import { chmod } from 'node:fs/promises';
import type { Server } from 'node:net';

/**
 * Listens on `path` with mode 0600. The umask is narrowed around listen() so there is no moment
 * in which another user could connect; chmod then fixes the mode whatever the umask was.
 */
export async function listenPrivate(server: Server, path: string): Promise<void> {
  const oldMask = process.umask(0o177);
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(path, () => {
        server.off('error', reject);
        resolve();
      });
    });
  } finally {
    process.umask(oldMask);
  }
  await chmod(path, 0o600);
}
