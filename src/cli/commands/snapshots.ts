import { listSnapshots } from '../../reconcile/snapshots.js';
import { createDockerEngine } from '../../engine/docker-engine.js';
import { errorMessage } from '../../errors.js';
import { HELP_OPTION, parse } from '../args.js';
import type { Command } from '../command.js';
import { EXIT, writeLine } from '../io.js';
import { formatDuration, table } from '../render/status.js';

export const snapshots: Command = {
  path: ['snapshots'],
  summary: 'List the snapshots kept of each container (or of NAME), newest first',
  help: `Usage: skiff-core snapshots [NAME] [--json]

Each config change that recreates a container first commits it to a snapshot image,
skiff-core-snapshot/NAME:YYYYMMDD-HHMMSS-mmm (UTC). The newest storage.keepSnapshots (default 3)
per container are kept, and any a container was made from.

Options:
  --json      print them as JSON
  -h, --help  show this help`,
  async run(argv, ctx) {
    const { values, positionals } = parse(argv, { ...HELP_OPTION, json: { type: 'boolean' } }, 1);
    if (values.help) {
      writeLine(ctx.io.stdout, this.help);
      return EXIT.ok;
    }
    let list;
    try {
      list = await listSnapshots(createDockerEngine(), positionals[0]);
    } catch (err) {
      writeLine(ctx.io.stderr, `skiff-core: ${errorMessage(err)}`);
      return EXIT.failure;
    }
    if (values.json) {
      writeLine(ctx.io.stdout, JSON.stringify(list, null, 2));
      return EXIT.ok;
    }
    if (list.length === 0) {
      writeLine(ctx.io.stdout, positionals[0] ? `no snapshots of ${positionals[0]}` : 'no snapshots');
      return EXIT.ok;
    }
    const now = Date.now();
    const rows = list.map((s) => [
      s.container,
      s.ref,
      `${formatDuration(now - Date.parse(s.created))} ago`,
      `${(s.size / 1048576).toFixed(1)} MiB`,
    ]);
    for (const line of table(['CONTAINER', 'SNAPSHOT', 'TAKEN', 'SIZE'], rows, (_row, _col, text) => text)) writeLine(ctx.io.stdout, line);
    return EXIT.ok;
  },
};
