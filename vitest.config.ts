// Test runner config: unit tests next to the code (no Redis), integration tests under test/ with one real redis-server per run.
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { configDefaults, defineConfig } from 'vitest/config';

// Every hydra process a test starts inherits this: none reads a .env that the checkout may hold (libs/config/dotenv.ts).
process.env.HYDRA_ENV_FILE = 'off';

const UNIT = ['apps/**/*.test.ts', 'libs/**/*.test.ts', 'scripts/**/*.test.ts'];

/**
 * Test files next to the code that still need the test Redis (they read the URL the global setup provides, or start
 * a cluster): they run in the integration project, so `vitest run --project unit` needs no redis-server.
 * Found by reading the files, so a new one cannot slip into the unit project.
 */
function needsRedis(): string[] {
  const testFiles = (dir: string): string[] =>
    readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
      const p = join(dir, e.name);
      if (e.isDirectory()) return e.name === 'node_modules' ? [] : testFiles(p);
      return p.endsWith('.test.ts') ? [p] : [];
    });
  return ['apps', 'libs', 'scripts']
    .flatMap((d) => testFiles(join(import.meta.dirname, d)))
    .filter((f) => /inject\(\s*['"]redisUrl['"]\s*\)|test\/support\/cluster\.js/.test(readFileSync(f, 'utf8')))
    .map((f) => relative(import.meta.dirname, f));
}
const withRedis = needsRedis();

export default defineConfig({
  test: {
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Integration tests start real child processes; two cores cannot run many files at once.
    maxWorkers: 2,
    fileParallelism: true,
    projects: [
      { extends: true, test: { name: 'unit', include: UNIT, exclude: [...configDefaults.exclude, ...withRedis] } },
      { extends: true, test: { name: 'integration', include: ['test/**/*.test.ts', ...withRedis], globalSetup: ['test/support/global-setup.ts'] } },
    ],
  },
});
