import { mkdir } from 'node:fs/promises';
import { dirname } from 'node:path';
import { DEFAULT_CONFIG_TEXT } from '../../config/default-config.js';
import { writeFileAtomic } from '../../fs/atomic.js';
import { HELP_OPTION, parse } from '../args.js';
import type { Command } from '../command.js';
import { EXIT, writeLine } from '../io.js';

export const defconfig: Command = {
  path: ['defconfig'],
  summary: 'Write the default config file',
  help: `Usage: skiff-core defconfig [FILE] [--force]

Writes the default config to FILE (default: --config, $SKIFF_CORE_CONFIG, or
/mnt/persist/skiff/core/config.yaml); "-" prints it instead. An existing file is kept unless
--force is given. The write is atomic: readers see the old file or the new one, never a part.

Options:
  -f, --force  replace an existing file
  -h, --help   show this help`,
  async run(argv, ctx) {
    const { values, positionals } = parse(argv, { ...HELP_OPTION, force: { type: 'boolean', short: 'f' } }, 1);
    if (values.help) {
      writeLine(ctx.io.stdout, this.help);
      return EXIT.ok;
    }
    const file = positionals[0] ?? ctx.configPath;
    if (file === '-') {
      ctx.io.stdout.write(DEFAULT_CONFIG_TEXT);
      return EXIT.ok;
    }
    try {
      await mkdir(dirname(file), { recursive: true });
      await writeFileAtomic(file, DEFAULT_CONFIG_TEXT, { exclusive: !values.force });
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'EEXIST') {
        writeLine(ctx.io.stderr, `skiff-core: ${file} already exists; keeping it (use --force to replace it)`);
      } else {
        writeLine(ctx.io.stderr, `skiff-core: cannot write ${file}: ${(err as Error).message}`);
      }
      return EXIT.failure;
    }
    writeLine(ctx.io.stderr, `wrote the default config to ${file}`);
    return EXIT.ok;
  },
};
