import { configJsonSchema } from '../../config/schema.js';
import { HELP_OPTION, parse } from '../args.js';
import type { Command } from '../command.js';
import { EXIT, writeLine } from '../io.js';

export const configSchema: Command = {
  path: ['config', 'schema'],
  summary: "Print the config file's JSON Schema (for editors)",
  help: `Usage: skiff-core config schema

Prints a JSON Schema (draft 2020-12) of the config file. Editors with the YAML language server
check and complete the file with it; save it and add this first line to config.yaml:
  # yaml-language-server: $schema=/path/to/skiff-core.schema.json`,
  async run(argv, ctx) {
    const { values } = parse(argv, HELP_OPTION, 0);
    if (values.help) {
      writeLine(ctx.io.stdout, this.help);
      return EXIT.ok;
    }
    writeLine(ctx.io.stdout, JSON.stringify(configJsonSchema(), null, 2));
    return EXIT.ok;
  },
};
