import type { Context } from './context.js';

export interface Command {
  /** Words that select it, e.g. ["config", "validate"]. */
  path: readonly string[];
  summary: string;
  /** Full help: usage line, description, options. */
  help: string;
  run(argv: string[], ctx: Context): Promise<number>;
}
