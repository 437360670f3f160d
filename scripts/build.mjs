// Bundles the CLI into one ESM file so a device needs only `node` and this file.
//
//   node scripts/build.mjs [--with-fault-bundle]
//
// --with-fault-bundle also writes dist/skiff-core-faults.mjs, the same program with its fault
// points live (src/faults.ts): SKIFF_CORE_FAULT=NAME kills it at that point. Only the tests use
// it; in dist/skiff-core.mjs the points compile to nothing.
import { build } from 'esbuild';
import { spawnSync } from 'node:child_process';
import { readFile, chmod } from 'node:fs/promises';

const pkg = JSON.parse(await readFile(new URL('../package.json', import.meta.url), 'utf8'));
const withFaults = process.argv.includes('--with-fault-bundle');

const common = {
  bundle: true,
  platform: 'node',
  target: 'node20',
  // ssh2 probes for optional native addons; a device must not need a compiler.
  external: ['cpu-features', './crypto/build/Release/sshcrypto.node'],
  define: { SKIFF_CORE_VERSION: JSON.stringify(pkg.version), SKIFF_CORE_FAULTS: 'false' },
  legalComments: 'none',
  // Smaller means a faster start: Node reads and pre-parses the whole file every time.
  minify: true,
  keepNames: true,
  logLevel: 'warning',
};

async function bundle(outfile, faults) {
  const options = { ...common, define: { ...common.define, SKIFF_CORE_FAULTS: String(faults) } };
  // Stage 1: the full CLI as CommonJS text. It is embedded as a string in stage 2 and compiled
  // only when a command needs it: V8 skips over a string literal far faster than it pre-parses
  // 1.4 MB of code, and a login (the hot path) never needs the CLI.
  const cli = await build({
    ...options,
    entryPoints: [new URL('../src/cli/main-entry.ts', import.meta.url).pathname],
    format: 'cjs',
    write: false,
    plugins: [rawText()],
  });
  const cliCode = cli.outputFiles[0].text;

  // Stage 2: the executable: a small entry, plus the embedded CLI.
  await build({
    ...options,
    entryPoints: [new URL('../src/cli/bin.ts', import.meta.url).pathname],
    outfile,
    format: 'esm',
    banner: {
      js: [
        '#!/usr/bin/env node',
        // Bundled CommonJS dependencies use require, __filename and __dirname; give ESM those.
        "import { createRequire as __skiffCreateRequire } from 'node:module';",
        "import { fileURLToPath as __skiffFileURLToPath } from 'node:url';",
        "import { dirname as __skiffDirname } from 'node:path';",
        'const require = __skiffCreateRequire(import.meta.url);',
        'const __filename = __skiffFileURLToPath(import.meta.url);',
        'const __dirname = __skiffDirname(__filename);',
      ].join('\n'),
    },
    plugins: [embeddedCli(cliCode)],
  });
  await chmod(outfile, 0o755);
}

await bundle(new URL('../dist/skiff-core.mjs', import.meta.url).pathname, false);
// The launcher is also the login client and the daemon's hand-off helper: without it nobody can
// log in, so a missing compiler stops the build here rather than at the first login.
const made = spawnSync('make', ['-s', '-C', new URL('..', import.meta.url).pathname, 'launcher'], { stdio: 'inherit' });
if (made.status !== 0) {
  console.error(
    made.error
      ? `build: cannot run make: ${made.error.message} (install make and a C compiler: apt-get install make gcc)`
      : 'build: compiling the launcher failed (see above)',
  );
  process.exit(1);
}
if (withFaults) await bundle(new URL('../dist/skiff-core-faults.mjs', import.meta.url).pathname, true);

// `import text from './file?raw'`, the same convention vitest understands.
function rawText() {
  return {
    name: 'raw-text',
    setup(b) {
      b.onResolve({ filter: /\?raw$/ }, (args) => ({
        path: new URL(args.path.replace(/\?raw$/, ''), `file://${args.resolveDir}/`).pathname,
        namespace: 'raw-text',
      }));
      b.onLoad({ filter: /.*/, namespace: 'raw-text' }, async (args) => ({
        contents: await readFile(args.path, 'utf8'),
        loader: 'text',
      }));
    },
  };
}

// Replaces src/cli/load-main.ts with a loader that compiles the embedded CLI on first use. The
// banner's require/__filename/__dirname are what the CommonJS code expects.
function embeddedCli(code) {
  return {
    name: 'embedded-cli',
    setup(b) {
      b.onResolve({ filter: /\/load-main\.js$/ }, () => ({ path: 'load-main', namespace: 'embedded-cli' }));
      b.onLoad({ filter: /.*/, namespace: 'embedded-cli' }, () => ({
        loader: 'js',
        contents: [
          "import { compileFunction } from 'node:vm';",
          `const code = ${JSON.stringify(code)};`,
          'export async function loadMain() {',
          '  const module = { exports: {} };',
          "  compileFunction(code, ['exports', 'require', 'module', '__filename', '__dirname'], { filename: __filename })(",
          '    module.exports, require, module, __filename, __dirname);',
          '  return module.exports;',
          '}',
        ].join('\n'),
      }));
    },
  };
}
