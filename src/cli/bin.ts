// The executable: everything else is importable without side effects.
import { main } from './main.js';
import { EXIT, processIo, writeLine } from './io.js';

try {
  process.exitCode = await main(process.argv.slice(2), processIo());
} catch (err) {
  writeLine(process.stderr, `skiff-core: internal error: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
  process.exitCode = EXIT.failure;
}
