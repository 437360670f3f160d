/** package.json's version, put in by the bundler; unbundled (tests) it is a dev marker. */
export const VERSION = typeof SKIFF_CORE_VERSION === 'string' ? SKIFF_CORE_VERSION : '0.0.0-dev';
