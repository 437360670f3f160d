import YAML from 'yaml';
import { formatDiagnostic } from '../../config/diagnostics.js';
import { loadConfigFile } from '../../config/load.js';
import { HELP_OPTION, parse } from '../args.js';
import type { Command } from '../command.js';
import { EXIT, paint, useColor, writeLine } from '../io.js';

export const configValidate: Command = {
  path: ['config', 'validate'],
  summary: 'Check a config file and its drop-ins, and report every problem with its line and column',
  help: `Usage: skiff-core config validate [FILE] [--json | --merged]

Checks FILE (default: --config, $SKIFF_CORE_CONFIG, or /mnt/persist/skiff/core/config.yaml)
merged with the drop-ins beside it (config.d/*.yaml, in name order), and prints one line per
problem:  FILE:LINE:COL: PATH: MESSAGE  (FILE is the file the problem is in).

Exit status: 0 when the file is valid (warnings allowed), 1 when it has errors.

Options:
  --json       print {"file","valid","errors":[…],"warnings":[…]} instead
  --merged     when valid, print the config in force: every file merged, defaults filled in
  -h, --help   show this help`,
  async run(argv, ctx) {
    const { values, positionals } = parse(argv, { ...HELP_OPTION, json: { type: 'boolean' }, merged: { type: 'boolean' } }, 1);
    if (values.help) {
      writeLine(ctx.io.stdout, this.help);
      return EXIT.ok;
    }
    const file = positionals[0] ?? ctx.configPath;
    const result = await loadConfigFile(file);
    const errors = result.diagnostics.filter((d) => d.severity === 'error');
    const warnings = result.diagnostics.filter((d) => d.severity === 'warning');

    if (values.json) {
      const plain = (d: (typeof result.diagnostics)[number]) => ({
        file: d.file,
        line: d.position?.line ?? null,
        col: d.position?.col ?? null,
        path: d.path,
        message: d.message,
        ...(d.related ? { related: d.related } : {}),
      });
      writeLine(
        ctx.io.stdout,
        JSON.stringify({ file, valid: result.ok, errors: errors.map(plain), warnings: warnings.map(plain) }, null, 2),
      );
      return result.ok ? EXIT.ok : EXIT.failure;
    }

    if (values.merged && result.ok) {
      for (const d of result.diagnostics) writeLine(ctx.io.stderr, formatDiagnostic(d));
      writeLine(ctx.io.stdout, `# the config in force, merged from: ${(result.files ?? [file]).join(', ')}`);
      ctx.io.stdout.write(YAML.stringify(result.config));
      return EXIT.ok;
    }
    const color = paint(useColor(ctx.io, 'stdout'));
    for (const d of result.diagnostics) {
      const line = formatDiagnostic(d);
      writeLine(ctx.io.stdout, d.severity === 'error' ? color.red(line) : color.yellow(line));
    }
    const counts = `${errors.length} error(s), ${warnings.length} warning(s)`;
    writeLine(ctx.io.stdout, result.ok ? color.green(`${file}: valid (${counts})`) : `${file}: invalid (${counts})`);
    return result.ok ? EXIT.ok : EXIT.failure;
  },
};
