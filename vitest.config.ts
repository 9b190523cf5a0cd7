import { BaseSequencer, type TestSpecification } from 'vitest/node';
import { defineConfig } from 'vitest/config';

/**
 * Test files that each take most of a minute or more, mostly waiting on real certificate
 * lifetimes, rollout waves, qemu and a link cut, slowest first (per-file `npx vitest run` times
 * on the ci-speed branch, 2026-12-06; the artefacts file with a clean artefact cache). On a fresh
 * clone vitest has no timings yet and orders files by size, which can leave one of these for the
 * end while the other worker idles; started first, they overlap with everything else.
 */
const SLOW_FIRST = [
  'test/artefacts/verify.test.ts',
  'test/identity/realCloudIdentity.test.ts',
  'test/rollout/fleetRestart.test.ts',
  'test/rollout/fleetWaves.test.ts',
  'test/identity/offlineExpiry.test.ts',
  'test/devices/edgeAlertsExample.test.ts',
  'test/rollout/fleetLabels.test.ts',
  'test/identity/caRotation.test.ts',
  'test/rollout/fleetOffline.test.ts',
  'test/identity/renewal.test.ts',
  'test/identity/edgeProcess.test.ts',
  'test/deploy/install.test.ts',
  'test/security/nodeCertificates.test.ts',
  'test/identity/bearerIdentity.test.ts',
];

class SlowFirstSequencer extends BaseSequencer {
  override async sort(files: TestSpecification[]): Promise<TestSpecification[]> {
    const sorted = await super.sort(files);
    const rank = (file: TestSpecification) => {
      const i = SLOW_FIRST.findIndex((slow) => file.moduleId.endsWith(slow));
      return i < 0 ? SLOW_FIRST.length : i;
    };
    return sorted.map((file, i) => ({ file, i })).sort((a, b) => rank(a.file) - rank(b.file) || a.i - b.i).map(({ file }) => file);
  }
}

export default defineConfig({
  test: {
    include: ['{protocol,cloudcore,edgecore,edgectl,device-mappers,test}/**/*.test.ts'],
    exclude: ['node_modules/**', 'dist/**', 'dist-test/**'],
    pool: 'forks',
    // Integration tests start real processes; the machine has 2 cores, so keep parallelism low.
    maxWorkers: 2,
    testTimeout: 60_000,
    hookTimeout: 60_000,
    sequence: { sequencer: SlowFirstSequencer },
    reporters: ['default', 'json'],
    outputFile: { json: 'test-output/vitest.json' },
  },
});
