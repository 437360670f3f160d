// The executable bundle: root's CLI and the daemon. Logins never come here: sshd runs the
// compiled launcher (launcher/login.c), which serves them without Node.js.
import { EXIT, writeLine } from './io.js';
import { loadMain } from './load-main.js';

const argv = process.argv.slice(2);
// The compiled launcher passes sshd's argv[0] on (process.argv0 would name node).
const argv0 = process.env.SKIFF_CORE_ARGV0;

async function run(): Promise<number> {
  if (argv[0] === '-c' || (argv0?.startsWith('-') && argv.length === 0)) {
    writeLine(
      process.stderr,
      'skiff-core: logins are served by the compiled launcher (/usr/bin/skiff-core, or dist/skiff-core-launcher after "npm run build"), not by this bundle',
    );
    return EXIT.failure;
  }
  const { main, processIo } = await loadMain();
  return main(argv, processIo());
}

run().then(
  (code) => {
    // Let buffered output reach a pipe before leaving; then exit even if stdin is still open.
    process.stdout.write('', () => process.stderr.write('', () => process.exit(code)));
  },
  (err: unknown) => {
    writeLine(process.stderr, `skiff-core: internal error: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
    process.exit(EXIT.failure);
  },
);
