import { connectControl } from '../../daemon/control-client.js';
import { controlSocketPath } from '../../daemon/control-protocol.js';
import { errorMessage } from '../../errors.js';
import { HELP_OPTION, parse } from '../args.js';
import type { Command } from '../command.js';
import { EXIT, writeLine } from '../io.js';
import { runDirFrom } from '../paths.js';

export const rollback: Command = {
  path: ['rollback'],
  summary: 'Recreate a container from an earlier snapshot; what it replaces becomes a snapshot too',
  help: `Usage: skiff-core rollback NAME [SNAPSHOT] [--run-dir DIR]

Asks the daemon to recreate container NAME from SNAPSHOT (a reference or its tag, as
"skiff-core snapshots NAME" lists them; default: the newest snapshot the container was not made
from), with the options of the config in force and its mounts. The container's files as they are
now are saved as a snapshot first, so "skiff-core rollback NAME" again goes back to them.
Refused while sessions are attached to NAME.`,
  async run(argv, ctx) {
    const { values, positionals } = parse(argv, { ...HELP_OPTION, 'run-dir': { type: 'string' } }, 2);
    if (values.help) {
      writeLine(ctx.io.stdout, this.help);
      return EXIT.ok;
    }
    const [name, snapshot] = positionals;
    if (!name) {
      writeLine(ctx.io.stderr, 'skiff-core: rollback needs a container name (skiff-core rollback NAME [SNAPSHOT])');
      return EXIT.usage;
    }
    try {
      const client = await connectControl(controlSocketPath(runDirFrom(values['run-dir'], ctx.io.env)));
      try {
        const result = (await client.call('rollback', { name, ...(snapshot ? { snapshot } : {}) })) as { message: string };
        writeLine(ctx.io.stdout, `${name}: ${result.message}`);
        return EXIT.ok;
      } finally {
        client.close();
      }
    } catch (err) {
      writeLine(ctx.io.stderr, `skiff-core: rollback of ${name}: ${errorMessage(err)}`);
      return EXIT.failure;
    }
  },
};
