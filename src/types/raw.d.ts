// Files imported as text (`import text from './x.yaml?raw'`); vitest and the bundler both honour it.
declare module '*?raw' {
  const text: string;
  export default text;
}

/** Replaced by the bundler with package.json's version. */
declare const SKIFF_CORE_VERSION: string | undefined;
/** `true` only in the tests' fault bundle (scripts/build.mjs --with-fault-bundle). */
declare const SKIFF_CORE_FAULTS: boolean | undefined;
