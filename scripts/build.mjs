// Bundles the CLI into one ESM file so a device needs only `node` and this file.
import { build } from 'esbuild';
import { readFile, chmod } from 'node:fs/promises';

const pkg = JSON.parse(await readFile(new URL('../package.json', import.meta.url), 'utf8'));
const outfile = new URL('../dist/skiff-core.mjs', import.meta.url).pathname;

await build({
  entryPoints: [new URL('../src/cli/bin.ts', import.meta.url).pathname],
  outfile,
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'esm',
  // ssh2 probes for optional native addons; a device must not need a compiler.
  external: ['cpu-features', './crypto/build/Release/sshcrypto.node'],
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
  define: { SKIFF_CORE_VERSION: JSON.stringify(pkg.version) },
  legalComments: 'none',
  // Smaller means a faster login: Node reads and pre-parses the whole file on every start.
  minify: true,
  keepNames: true,
  plugins: [rawText(), unusedBuildKit()],
  logLevel: 'warning',
});
await chmod(outfile, 0o755);

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

// dockerode loads gRPC and protobuf for BuildKit sessions, which skiff-core never opens (it
// builds with the classic builder). They are a third of the bundle; empty stand-ins keep
// dockerode loading (it only touches them inside those functions).
function unusedBuildKit() {
  return {
    name: 'unused-buildkit',
    setup(b) {
      b.onResolve({ filter: /^(@grpc\/grpc-js|@grpc\/proto-loader|protobufjs)$/ }, (args) => ({ path: args.path, namespace: 'unused' }));
      b.onLoad({ filter: /.*/, namespace: 'unused' }, () => ({ contents: 'module.exports = {};', loader: 'js' }));
    },
  };
}
