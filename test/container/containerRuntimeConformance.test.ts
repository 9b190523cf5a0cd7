import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe } from 'vitest';
import { runtimeConformanceSuite } from '../runtime/conformance.js';
import { reportSkip, setUpEngine, template, testRuntime } from './engine.js';

const setup = await setUpEngine();
reportSkip(setup, 'container runtime conformance');

describe.skipIf(setup.engine === null)('ContainerRuntime on a real Podman engine', () => {
  const engine = setup.engine!;
  afterAll(async () => { await engine.cleanup(); });

  runtimeConformanceSuite('container runtime', async ({ backoff }) => {
    const dir = mkdtempSync(join(tmpdir(), 'ef-ctr-conf-'));
    return {
      runtime: testRuntime(engine, join(dir, 'volumes'), { backoff }),
      template: (fields) => template({ ...fields }),
      cleanup: async () => { rmSync(dir, { recursive: true, force: true }); },
    };
  });
});
