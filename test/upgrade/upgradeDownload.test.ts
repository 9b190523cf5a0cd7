import { existsSync, mkdtempSync, readFileSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateKeyPairSync } from 'node:crypto';
import type { AgentUpgradeStatus } from '../../protocol/index.js';
import { AgentUpgrader } from '../../edgecore/upgrade/upgrader.js';
import { buildArtefact, distDirWith, frameFor, installedHome } from '../helpers/edgeReleases.js';
import { Fleet, type Cloud } from '../helpers/fleet.js';
import { HttpTap } from '../helpers/httpTap.js';
import { cloudCaBundle } from '../helpers/tlsClient.js';
import { waitFor } from '../helpers/wait.js';

/**
 * The edge's upgrade module driven directly with the cloud's frame, against a real cloudcore
 * serving real artefacts from /dist (x64, built by build:edge-artefacts): the download resumes
 * after a cut link, and a bad signature or a wrong checksum is refused with nothing switched.
 */

const OLD = '1.0.0-t1';
const NEW = '1.0.0-t2';

interface Run { statuses: AgentUpgradeStatus[]; exits: number[]; upgrader: AgentUpgrader; home: string; dataDir: string }

function upgraderFor(root: string, home: string, cloudUrl: string, ca?: string): Run {
  const dataDir = join(root, 'data');
  const statuses: AgentUpgradeStatus[] = [];
  const exits: number[] = [];
  const upgrader = new AgentUpgrader({
    dataDir, cloudUrl, running: OLD, healthSeconds: 5, env: { EDGEFLEET_LOADER: '1', EDGEFLEET_HOME: home },
    ca: () => ca, report: (s) => statuses.push(s), linkUp: () => true, brokerUrl: () => '', workloads: () => [],
    exit: (code) => exits.push(code), log: pino({ level: 'silent' }),
  });
  return { statuses, exits, upgrader, home, dataDir };
}

const final = (r: Run) => waitFor('a final status or an exit', () => r.exits.length > 0 || r.statuses.some((s) => s.phase === 'Failed'), 120_000);

function expectNothingSwitched(r: Run): void {
  expect(readlinkSync(join(r.home, 'current'))).toBe(OLD);
  expect(existsSync(join(r.home, 'new'))).toBe(false);
  expect(existsSync(join(r.home, NEW))).toBe(false);
  expect(r.exits).toEqual([]);
}

describe('agent upgrade download and verification (real cloudcore /dist, real artefacts)', () => {
  const fleet = new Fleet();
  let plain: Cloud;
  let tls: Cloud;
  const roots: string[] = [];
  const root = (): string => { const r = mkdtempSync(join(tmpdir(), 'ef-upg-')); roots.push(r); return r; };

  beforeAll(async () => {
    await buildArtefact(OLD);
    await buildArtefact(NEW);
    const dist = distDirWith(fleet.root, [NEW]);
    plain = await fleet.startCloud({ extra: ['--dist-dir', dist] });
    tls = await fleet.startCloud({ tls: true, extra: ['--dist-dir', dist] });
  }, 600_000);
  afterAll(async () => {
    await fleet.cleanup();
    for (const r of roots) rmSync(r, { recursive: true, force: true });
  });

  it('resumes with a Range request after the link is cut mid-download, fetching no byte twice, then switches and exits 75', async () => {
    const r0 = root();
    const frame = frameFor(NEW);
    const tap = new HttpTap(plain.port, `/dist/${NEW}/${frame.file}`);
    const url = await tap.start();
    tap.cutAfter = Math.floor(frame.size * 0.4);
    const r = upgraderFor(r0, await installedHome(r0, OLD), url);
    await r.upgrader.start();
    const started = Date.now();
    r.upgrader.onFrame(frame);
    await final(r);
    const seconds = (Date.now() - started) / 1000;
    await tap.stop();

    const gets = tap.requests.filter((q) => q.line.startsWith(`GET /dist/${NEW}/${frame.file} `));
    expect(gets).toHaveLength(2);
    expect(gets[0]!.range).toBeNull();
    const resumedAt = Number(/^bytes=(\d+)-$/.exec(gets[1]!.range ?? '')?.[1]);
    expect(resumedAt).toBeGreaterThan(frame.size * 0.3);
    // Both answers' bytes, headers included: the body once, plus two heads of well under 1 KiB.
    expect(tap.watchedBytes).toBeLessThan(frame.size + 2048);
    expect(r.exits).toEqual([75]);
    expect(r.statuses.map((s) => s.phase).filter((p, i, a) => p !== a[i - 1])).toEqual(['Downloading', 'Verifying', 'Installing', 'Restarting']);
    expect(r.statuses.find((s) => s.phase === 'Downloading' && (s.bytes ?? 0) > 0)?.totalBytes).toBe(frame.size);
    expect(readlinkSync(join(r.home, 'current'))).toBe(NEW);
    expect(readlinkSync(join(r.home, 'new'))).toBe(NEW);
    expect(readlinkSync(join(r.home, 'old'))).toBe(OLD);
    expect(readFileSync(join(r.home, NEW, 'VERSION'), 'utf8').trim()).toBe(NEW);
    const attempt = JSON.parse(readFileSync(join(r.dataDir, 'upgrade', 'attempt.json'), 'utf8')) as { status: AgentUpgradeStatus; record: { previousVersion: string } };
    expect(attempt.status.phase).toBe('Restarting');
    expect(attempt.record.previousVersion).toBe(OLD);
    expect(existsSync(join(r.dataDir, 'upgrade', `${frame.sha256}.part`))).toBe(false);
    console.log(`[measured] ${(frame.size / 1048576).toFixed(1)} MiB artefact, cut at 40 %, resumed and installed in ${seconds.toFixed(1)} s`);
  }, 180_000);

  it('over HTTPS trusting the identity\'s CA bundle: refuses a SHA256SUMS not signed by this node\'s release key', async () => {
    const r0 = root();
    const home = await installedHome(r0, OLD);
    // The node shipped another release key than the one the cloud's releases are signed with.
    writeFileSync(join(home, OLD, 'share', 'release-key.pub'), generateKeyPairSync('ed25519').publicKey.export({ type: 'spki', format: 'pem' }));
    const r = upgraderFor(r0, home, tls.url, cloudCaBundle(tls));
    await r.upgrader.start();
    r.upgrader.onFrame(frameFor(NEW));
    await final(r);
    expect(r.statuses.at(-1)).toMatchObject({ phase: 'Failed', message: 'the signature of SHA256SUMS does not verify under this node\'s release key', previousVersion: OLD });
    expectNothingSwitched(r);
  }, 60_000);

  it('refuses a frame whose sha256 is not the signed one, and a file whose bytes are not (flipped in transit); nothing switched', async () => {
    const r0 = root();
    const r = upgraderFor(r0, await installedHome(r0, OLD), plain.url);
    await r.upgrader.start();
    r.upgrader.onFrame({ ...frameFor(NEW), sha256: 'f'.repeat(64) });
    await final(r);
    expect(r.statuses.at(-1)?.message).toMatch(/^the signed SHA256SUMS gives .* sha256 [0-9a-f]{64}, the cloud's frame f{64}$/);
    expectNothingSwitched(r);

    const r1 = root();
    const frame = frameFor(NEW, 'up', 3);
    const tap = new HttpTap(plain.port, `/dist/${NEW}/${frame.file}`);
    const url = await tap.start();
    tap.corruptAt = 100_000;
    const bad = upgraderFor(r1, await installedHome(r1, OLD), url);
    await bad.upgrader.start();
    bad.upgrader.onFrame(frame);
    await final(bad);
    await tap.stop();
    expect(bad.statuses.map((s) => s.phase)).toContain('Verifying');
    expect(bad.statuses.at(-1)?.message).toMatch(/has sha256 [0-9a-f]{64}, the signed SHA256SUMS [0-9a-f]{64}: refused$/);
    expectNothingSwitched(bad);
    // The bad bytes are not kept for a later try to resume from.
    expect(existsSync(join(bad.dataDir, 'upgrade', `${frame.sha256}.part`))).toBe(false);
  }, 120_000);

  it('refuses clearly when edgecore does not run under the loader', async () => {
    const r0 = root();
    const r = upgraderFor(r0, await installedHome(r0, OLD), plain.url);
    const outside = new AgentUpgrader({
      dataDir: r.dataDir, cloudUrl: plain.url, running: OLD, healthSeconds: 5, env: {}, ca: () => undefined,
      report: (s) => r.statuses.push(s), linkUp: () => true, brokerUrl: () => '', workloads: () => [], exit: (c) => r.exits.push(c), log: pino({ level: 'silent' }),
    });
    await outside.start();
    outside.onFrame(frameFor(NEW));
    expect(r.statuses.at(-1)).toMatchObject({ phase: 'Failed', version: NEW });
    expect(r.statuses.at(-1)?.message).toMatch(/not running under edgefleet-loader/);
    expectNothingSwitched(r);
  });
});
