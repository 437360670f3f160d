// The `skiff-core` entry point: global options, then one command, whose exit code becomes ours.
import { UsageError } from './args.js';
import type { Command } from './command.js';
import { configSchema } from './commands/config-schema.js';
import { configValidate } from './commands/config-validate.js';
import { defconfig } from './commands/defconfig.js';
import { backup } from './commands/backup.js';
import { restore } from './commands/restore.js';
import { rollback } from './commands/rollback.js';
import { snapshots } from './commands/snapshots.js';
import { adopt, setup } from './commands/setup.js';
import { configPathFrom, type Context } from './context.js';
import { EXIT, writeLine, type Io } from './io.js';
import { VERSION } from './version.js';
import { daemon } from './commands/daemon.js';
import { doctor } from './commands/doctor.js';
import { reload, status } from './commands/status.js';

export const COMMANDS: readonly Command[] = [
  daemon,
  status,
  reload,
  setup,
  adopt,
  doctor,
  configValidate,
  configSchema,
  defconfig,
  snapshots,
  rollback,
  backup,
  restore,
];

function usage(): string {
  const width = Math.max(...COMMANDS.map((c) => c.path.join(' ').length));
  const lines = COMMANDS.map((c) => `  ${c.path.join(' ').padEnd(width)}  ${c.summary}`);
  return `Usage: skiff-core [--config FILE] COMMAND [ARGS]

Keeps the Docker engine matching ${'/mnt/persist/skiff/core/config.yaml'} and lands SSH logins in
the right container.

Commands:
${lines.join('\n')}

Global options:
  --config FILE   the config file (also $SKIFF_CORE_CONFIG)
  -h, --help      show help (also after a command)
  -V, --version   print the version

Run "skiff-core COMMAND --help" for a command's options.`;
}

export async function main(argv: string[], io: Io): Promise<number> {
  let configFlag: string | undefined;
  const rest = [...argv];
  // Global options come before the command words.
  while (rest[0]?.startsWith('-')) {
    const arg = rest.shift()!;
    if (arg === '--version' || arg === '-V') {
      writeLine(io.stdout, `skiff-core ${VERSION}`);
      return EXIT.ok;
    }
    if (arg === '--help' || arg === '-h') {
      writeLine(io.stdout, usage());
      return EXIT.ok;
    }
    if (arg === '--config' || arg.startsWith('--config=')) {
      configFlag = arg === '--config' ? rest.shift() : arg.slice('--config='.length);
      if (!configFlag) return usageError(io, '--config needs a FILE');
      continue;
    }
    return usageError(io, `unknown option "${arg}"`);
  }

  const command = findCommand(rest);
  if (!command) {
    if (rest.length === 0) {
      writeLine(io.stderr, usage());
      return EXIT.usage;
    }
    const group = COMMANDS.filter((c) => c.path[0] === rest[0] && c.path.length > 1);
    if (group.length > 0 && (rest.length === 1 || rest[1] === '--help' || rest[1] === '-h')) {
      const list = group.map((c) => `  ${c.path.join(' ')}  ${c.summary}`).join('\n');
      writeLine(rest.length === 1 ? io.stderr : io.stdout, `Commands:\n${list}`);
      return rest.length === 1 ? EXIT.usage : EXIT.ok;
    }
    return usageError(io, `unknown command "${rest.join(' ')}"`);
  }

  const { path, fromFlag } = configPathFrom(configFlag, io.env);
  const ctx: Context = { io, configPath: path, configFromFlag: fromFlag };
  try {
    return await command.run(rest.slice(command.path.length), ctx);
  } catch (err) {
    if (err instanceof UsageError) return usageError(io, err.message, command);
    throw err;
  }
}

function findCommand(words: string[]): Command | undefined {
  return COMMANDS.find((c) => c.path.every((word, i) => words[i] === word));
}

function usageError(io: Io, message: string, command?: Command): number {
  const hint = command ? `skiff-core ${command.path.join(' ')} --help` : 'skiff-core --help';
  writeLine(io.stderr, `skiff-core: ${message}\nTry "${hint}".`);
  return EXIT.usage;
}
