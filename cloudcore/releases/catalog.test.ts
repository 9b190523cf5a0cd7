import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import { artefactName } from '../../protocol/index.js';
import { makeReleaseKey, writeRelease } from '../../test/helpers/releases.js';
import { ReleaseCatalog } from './catalog.js';

describe('ReleaseCatalog.find (the artefact the hub names in an agentUpgrade frame)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ef-catalog-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('maps the node\'s os.arch() to its artefact, and forgets a release whose file changed', async () => {
    const key = makeReleaseKey();
    const arm = randomBytes(64);
    writeRelease(dir, '2.0.0', { x64: randomBytes(64), armv7: arm }, key);
    writeFileSync(join(dir, 'release-key.pub'), key.publicPem);
    const catalog = new ReleaseCatalog({ distDir: dir, releaseKeyFile: join(dir, 'release-key.pub'), log: pino({ level: 'silent' }) });
    await catalog.refresh(true);
    expect(catalog.find('2.0.0', 'arm')).toMatchObject({ name: artefactName('2.0.0', 'armv7'), size: 64 });
    expect(catalog.find('2.0.0', 'x64')?.name).toBe(artefactName('2.0.0', 'x64'));
    expect(catalog.find('2.0.0', 'arm64')).toBeUndefined();
    expect(catalog.find('2.0.0', 'mips')).toBeUndefined();
    expect(catalog.find('3.0.0', 'x64')).toBeUndefined();
    writeFileSync(join(dir, '2.0.0', artefactName('2.0.0', 'armv7')), randomBytes(64));
    await catalog.refresh(true);
    expect(catalog.find('2.0.0', 'arm')).toBeUndefined();
    expect(catalog.verified()).toEqual([]);
  });
});
