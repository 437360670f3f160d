// Stopping a socket's reads for real. A paused net.Socket still reads ahead into its buffer (and
// destroys itself at EOF); an exec connection that may be handed to another process must stay
// unread in the kernel until someone consumes it. `resume()`, `read()` or a 'data' listener start
// reading again (net.Socket restarts its handle when `reading` is false).
import type { Duplex } from 'node:stream';

interface StreamHandle {
  reading?: boolean;
  readStop?(): number;
}

export function stopReading(stream: Duplex): void {
  stream.pause();
  const handle = (stream as unknown as { _handle?: StreamHandle | null })._handle;
  if (handle?.readStop && handle.reading !== false) {
    handle.reading = false;
    handle.readStop();
  }
  // A read the stream thinks is still pending would never be asked for again (as Node's
  // child_process does when it hands a socket to a child).
  const state = (stream as unknown as { _readableState?: { reading: boolean } })._readableState;
  if (state) state.reading = false;
}
