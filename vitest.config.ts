// Test runner config: unit tests next to the code, integration tests under test/, one real redis-server per run.
import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['apps/**/*.test.ts', 'libs/**/*.test.ts', 'test/**/*.test.ts', 'scripts/**/*.test.ts'],
    globalSetup: ['test/support/global-setup.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Integration tests start real child processes; two cores cannot run many files at once.
    maxWorkers: 2,
    fileParallelism: true,
  },
});
