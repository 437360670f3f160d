// What main() sets up once and every measure uses: the daemon's paths, the users and containers,
// and the two ways to run a command (a login through the launcher, and docker exec).
import type { ContainerDef, DaemonPaths, UserDef } from './daemon.js';
import type { timed, TimedResult } from './proc.js';

type RunOptions = Parameters<typeof timed>[2];

export interface BenchContext {
  prefix: string;
  tmp: string;
  dockerCli: string;
  users: string[];
  containers: ContainerDef[];
  userDefs: UserDef[];
  /** The first container (Debian with systemd), where single-session measures run. */
  c0: string;
  paths: DaemonPaths;
  daemonEnv: NodeJS.ProcessEnv;
  loginEnv: NodeJS.ProcessEnv;
  rootSocket: string;
  login(command: string, options?: RunOptions): Promise<TimedResult>;
  dexec(args: string[], options?: RunOptions): Promise<TimedResult>;
}
