// The executable. A login (sshd runs us as "-skiff-core", or "skiff-core -c CMD") takes the
// short path: only the session client is loaded, never the schema, the logger or the Docker
// client, so logging in costs little more than starting Node.
import { EXIT, writeLine } from './io.js';
import { loadMain } from './load-main.js';

const argv = process.argv.slice(2);
// The compiled launcher passes sshd's argv[0] on (process.argv0 would name node).
const argv0 = process.env.SKIFF_CORE_ARGV0;

async function run(): Promise<number> {
  if (argv[0] === '-c' || (argv0?.startsWith('-') && argv.length === 0)) {
    const { runLoginShell } = await import('../session/shell.js');
    return runLoginShell({
      command: argv[0] === '-c' ? argv.slice(1).join(' ') : undefined,
      runDir: process.env.SKIFF_CORE_RUN_DIR ?? '/run/skiff-core',
      env: process.env,
    });
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
