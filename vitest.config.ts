import { defineConfig } from 'vitest/config';

/**
 * Root test config (vitest 5). Unit tests live beside their source as `*.test.ts`; multi-process,
 * fault and end-to-end tests live under `test/`. `test/global-setup.ts` finds or starts Redis and
 * provides its URL (`redisUrl()` in `test/support/redis.ts`).
 */
export default defineConfig({
  test: {
    include: ['packages/*/src/**/*.test.ts', 'apps/*/src/**/*.test.ts', 'test/**/*.test.ts'],
    globalSetup: ['test/global-setup.ts'],
    testTimeout: 30_000,
    hookTimeout: 30_000,
    // Child processes, not worker threads: tests spawn and kill processes and set process-wide state.
    pool: 'forks',
    // Test files run in parallel, at most two at a time (CI machines have 2 cores).
    fileParallelism: true,
    maxWorkers: 2,
  },
});
