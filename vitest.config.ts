import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    // Native addons crash in the threads pool; each test file gets its own process.
    pool: 'forks',
    maxWorkers: 2,
    include: ['test/**/*.test.ts'],
    testTimeout: 60_000,
  },
});
