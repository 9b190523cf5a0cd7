import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['{protocol,cloudcore,edgecore,edgectl,device-mappers,test}/**/*.test.ts'],
    exclude: ['node_modules/**', 'dist/**', 'dist-test/**'],
    pool: 'forks',
    // Integration tests start real processes; the machine has 2 cores, so keep parallelism low.
    maxWorkers: 2,
    testTimeout: 60_000,
    hookTimeout: 60_000,
    reporters: ['default', 'json'],
    outputFile: { json: 'test-output/vitest.json' },
  },
});
