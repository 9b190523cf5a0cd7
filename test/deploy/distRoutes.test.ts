import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, readdirSync, readlinkSync, writeFileSync } from 'node:fs';
import type { ClientRequest } from 'node:http';
import { request } from 'node:https';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { artefactName, DistIndexSchema } from '../../protocol/index.js';
import { Fleet, type Cloud } from '../helpers/fleet.js';
import { makeReleaseKey, writeRelease, type ReleaseKey } from '../helpers/releases.js';
import { cloudCaBundle, tlsApi } from '../helpers/tlsClient.js';
import { sleep, waitFor } from '../helpers/wait.js';

/**
 * cloudcore's public release routes over its own HTTPS: what verifies is listed and served
 * (with one byte range, to resume), what does not is not, and a file changed on disk after
 * its check is never served under the old sum.
 */
interface Got { status: number; body: Buffer; headers: Record<string, string | string[] | undefined> }

function get(url: string, ca: string, headers: Record<string, string> = {}): Promise<Got> {
  return new Promise((resolve, reject) => {
    const req = request(url, { ca, headers, agent: false, servername: 'localhost' }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks), headers: res.headers }));
    });
    req.on('error', reject);
    req.end();
  });
}

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

describe('GET /dist and /install.sh (real cloudcore over HTTPS)', () => {
  const fleet = new Fleet();
  let cloud: Cloud;
  let ca: string;
  let key: ReleaseKey;
  let distDir: string;
  const x64 = randomBytes(300_000);
  const arm64 = randomBytes(1000);

  beforeAll(async () => {
    distDir = join(fleet.root, 'dist');
    key = makeReleaseKey();
    writeRelease(distDir, '1.0.0', { x64, arm64 }, key);
    writeRelease(distDir, '1.1.0', { x64: randomBytes(100) }, key);
    // Big enough that a paused download holds its response open.
    writeRelease(distDir, '0.5.0', { x64: randomBytes(16 * 1024 * 1024) }, key);
    // Signed by another key: refused at load, never listed.
    writeRelease(distDir, '6.6.6', { x64: randomBytes(100) }, makeReleaseKey());
    writeFileSync(join(distDir, 'release-key.pub'), key.publicPem);
    cloud = await fleet.startCloud({ tls: true, extra: ['--dist-dir', distDir, '--max-streams-per-address', '2'] });
    ca = cloudCaBundle(cloud);
  });
  afterAll(() => fleet.cleanup());

  it('lists the versions whose signature verifies, newest first, with each tarball\'s size and sha256', async () => {
    const res = await get(`${cloud.url}/dist/index.json`, ca);
    expect(res.status).toBe(200);
    const index = DistIndexSchema.parse(JSON.parse(res.body.toString('utf8')));
    expect(index.versions.map((v) => v.version)).toEqual(['1.1.0', '1.0.0', '0.5.0']);
    expect(index.versions[1]!.files).toEqual(expect.arrayContaining([
      { name: artefactName('1.0.0', 'x64'), arch: 'x64', size: x64.length, sha256: sha256(x64) },
      { name: artefactName('1.0.0', 'arm64'), arch: 'arm64', size: arm64.length, sha256: sha256(arm64) },
    ]));
    expect(cloud.proc.lines.some((l) => l.msg === 'release refused: not served under /dist' && l.version === '6.6.6')).toBe(true);
    expect((await get(`${cloud.url}/dist/6.6.6/SHA256SUMS`, ca)).status).toBe(404);
  });

  it('serves a tarball whole with its sha256 as ETag, and resumes it from a byte range (206)', async () => {
    const url = `${cloud.url}/dist/1.0.0/${artefactName('1.0.0', 'x64')}`;
    const whole = await get(url, ca);
    expect(whole.status).toBe(200);
    expect(whole.headers.etag).toBe(`"${sha256(x64)}"`);
    expect(whole.headers['accept-ranges']).toBe('bytes');
    expect(whole.body.equals(x64)).toBe(true);
    const first = await get(url, ca, { range: 'bytes=0-99999' });
    expect(first.status).toBe(206);
    expect(first.headers['content-range']).toBe(`bytes 0-99999/${x64.length}`);
    const rest = await get(url, ca, { range: 'bytes=100000-', 'if-range': whole.headers.etag as string });
    expect(rest.status).toBe(206);
    expect(Buffer.concat([first.body, rest.body]).equals(x64)).toBe(true);
    // If-Range naming another file: the whole file, not a part to append to the wrong one.
    const stale = await get(url, ca, { range: 'bytes=100000-', 'if-range': '"0000"' });
    expect(stale.status).toBe(200);
    expect(stale.body.length).toBe(x64.length);
  });

  it('answers 416 with the size for a range past the end or several ranges', async () => {
    const url = `${cloud.url}/dist/1.0.0/${artefactName('1.0.0', 'arm64')}`;
    for (const range of [`bytes=${arm64.length}-`, 'bytes=0-1,4-5', 'pages=1-2']) {
      const res = await get(url, ca, { range });
      expect(res.status, range).toBe(416);
      expect(res.headers['content-range']).toBe(`bytes */${arm64.length}`);
      expect(JSON.parse(res.body.toString('utf8')).error).toBeTruthy();
    }
  });

  it('serves only names the release lists, and refuses traversal with a clear 4xx', async () => {
    expect((await get(`${cloud.url}/dist/1.0.0/SHA256SUMS`, ca)).status).toBe(200);
    expect((await get(`${cloud.url}/dist/1.0.0/release-key.pub`, ca)).body.toString('utf8')).toBe(key.publicPem);
    const cases: [string, number][] = [
      ['/dist/1.0.0/..%2F..%2Fcloud%2Fadmin.token', 400],
      ['/dist/..%2Fcloud/admin.token', 400],
      ['/dist/..%2F..%2Fetc/passwd', 400],
      ['/dist/1.0.0/%2Fetc%2Fpasswd', 400],
      ['/dist/1.0.0/notes.txt', 404],
      ['/dist/9.9.9/SHA256SUMS', 404],
      ['/dist/../cloud/admin.token', 404],
    ];
    for (const [path, status] of cases) {
      const res = await get(`${cloud.url}${path}`, ca);
      expect(res.status, path).toBe(status);
      expect(JSON.parse(res.body.toString('utf8')).error, path).toBeTruthy();
    }
  });

  it('never serves a tarball changed on disk under the old sum: the release is checked again and refused', async () => {
    const name = artefactName('1.1.0', 'x64');
    const url = `${cloud.url}/dist/1.1.0/${name}`;
    expect((await get(url, ca)).status).toBe(200);
    // Same size, other bytes (what a bit flip or a swapped file looks like).
    writeFileSync(join(distDir, '1.1.0', name), randomBytes(100));
    const res = await get(url, ca);
    expect(res.status).toBe(404);
    await sleep(1100);
    const index = DistIndexSchema.parse(JSON.parse((await get(`${cloud.url}/dist/index.json`, ca)).body.toString('utf8')));
    expect(index.versions.map((v) => v.version)).toEqual(['1.0.0', '0.5.0']);
    expect(cloud.proc.lines.some((l) => l.msg === 'release refused: not served under /dist' && l.version === '1.1.0' && String(l.reason).includes('has SHA-256'))).toBe(true);
  });

  it('picks up a release copied in later (air-gapped sites)', async () => {
    mkdirSync(join(distDir, 'staging'), { recursive: true });
    writeRelease(distDir, '1.2.0', { armv7: randomBytes(50) }, key);
    await sleep(1100);
    const index = DistIndexSchema.parse(JSON.parse((await get(`${cloud.url}/dist/index.json`, ca)).body.toString('utf8')));
    expect(index.versions[0]).toMatchObject({ version: '1.2.0', files: [{ arch: 'armv7' }] });
  });

  it('bounds downloads per address like other long responses (429), and frees the slot and the file when a client goes away', async () => {
    const url = `${cloud.url}/dist/0.5.0/${artefactName('0.5.0', 'x64')}`;
    const openOnTarball = () => readdirSync(`/proc/${cloud.proc.pid}/fd`).some((fd) => {
      try { return readlinkSync(`/proc/${cloud.proc.pid}/fd/${fd}`).endsWith(artefactName('0.5.0', 'x64')); } catch { return false; }
    });
    const held: ClientRequest[] = [];
    // Two downloads that read one chunk and stop: each holds its slot.
    for (let i = 0; i < 2; i++) {
      await new Promise<void>((resolve, reject) => {
        const req = request(url, { ca, agent: false, servername: 'localhost' }, (res) => { expect(res.statusCode).toBe(200); res.once('data', () => { res.pause(); resolve(); }); });
        req.on('error', () => undefined);
        req.once('error', reject);
        req.end();
        held.push(req);
      });
    }
    const third = await get(url, ca);
    expect(third.status).toBe(429);
    expect(JSON.parse(third.body.toString('utf8')).error).toContain('maxStreamsPerAddress');
    expect(openOnTarball()).toBe(true);
    for (const req of held) req.destroy();
    await waitFor('a slot free again', async () => (await get(`${cloud.url}/dist/0.5.0/SHA256SUMS`, ca)).status === 200);
    // The cloud closed the tarball it was streaming to the clients that left.
    await waitFor('no open descriptor on the tarball', () => !openOnTarball());
  });

  it('lets an agent upgrade name only a version it serves (the API and the catalog are one)', async () => {
    const api = tlsApi(cloud);
    const refused = await api.call<{ error: string }>('POST', '/agent-upgrades', { name: 'to-666', version: '6.6.6' });
    expect(refused.status).toBe(400);
    expect(refused.body.error).toContain('is not in cloudcore\'s dist directory');
    expect((await api.call('POST', '/agent-upgrades', { name: 'to-100', version: '1.0.0' })).status).toBe(201);
  });

  it('serves /install.sh with the URL the node used, the newest release and the release key written in', async () => {
    const res = await get(`${cloud.url}/install.sh`, ca);
    expect(res.status).toBe(200);
    const script = res.body.toString('utf8');
    expect(script).toContain(`CLOUD_URL='${cloud.url}'`);
    expect(script).toContain("DEFAULT_VERSION='1.2.0'");
    expect(script).toContain(key.publicPem.trimEnd());
    const bad = await get(`${cloud.url}/install.sh`, ca, { host: "x';id;'" });
    expect(bad.status).toBe(400);
  });
});
