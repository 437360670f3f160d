import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: 'unit',
          include: ['test/unit/**/*.test.ts'],
        },
      },
      {
        test: {
          name: 'integration',
          include: ['test/integration/**/*.test.ts'],
          // Real engine work (pulls, builds, systemd boot) is slow on 2 cores.
          testTimeout: 180_000,
          hookTimeout: 300_000,
          // Tests share one engine; running files in parallel makes failures hard to read.
          fileParallelism: false,
          globalSetup: ['test/integration/global-setup.ts'],
        },
      },
    ],
  },
});
