// `npm start`: converge the default config once against this machine's Docker engine, keeping
// skiff-core's own files (config copy, build work dir) under .state/ in the checkout.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, copyFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const state = `${root}.state`;
const config = `${state}/config.yaml`;
mkdirSync(`${state}/work`, { recursive: true });
if (!existsSync(config)) {
  copyFileSync(`${root}defaults/skiff-core.yaml`, config);
  console.error(`copied the default config to ${config}; edit it and run npm start again`);
}
const result = spawnSync(
  process.execPath,
  [`${root}dist/skiff-core.mjs`, '--config', config, 'setup', '--work-dir', `${state}/work`, ...process.argv.slice(2)],
  { stdio: 'inherit' },
);
process.exit(result.status ?? 1);
