// The full CLI (schema, logger, Docker client…), loaded only when the command needs it. In the
// bundle this module is replaced by one that compiles the CLI from a string embedded in the same
// file (scripts/build.mjs), so a login never even parses that code.
import type { Io } from './io.js';

export interface MainModule {
  main(argv: string[], io: Io): Promise<number>;
  processIo(): Io;
}

export async function loadMain(): Promise<MainModule> {
  return import('./main-entry.js');
}
