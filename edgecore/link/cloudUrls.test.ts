import { writeFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadEdgeSettings } from '../config.js';
import { CloudUrlRing, tryCloudUrls } from './cloudUrls.js';

const dir = mkdtempSync(join(tmpdir(), 'ef-cloudurls-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const settings = (flags: Record<string, unknown>, env: NodeJS.ProcessEnv = {}) => loadEdgeSettings({ node: 'edge-1', ...flags }, env);

describe('cloudUrl: one URL or several replicas', () => {
  it('one URL reads as before', () => {
    const s = settings({ cloudUrl: 'https://cloud.example:8443' });
    expect(s.cloudUrl).toBe('https://cloud.example:8443');
    expect(s.cloudUrls).toEqual(['https://cloud.example:8443']);
  });

  it('a comma list from the flag or the env, a YAML sequence or a comma string from the file', () => {
    expect(settings({ cloudUrl: 'https://a.example:8443, https://b.example:8443' }).cloudUrls).toEqual(['https://a.example:8443', 'https://b.example:8443']);
    expect(settings({}, { EF_EDGE_CLOUD_URL: 'http://127.0.0.1:1,http://127.0.0.1:2' }).cloudUrls).toEqual(['http://127.0.0.1:1', 'http://127.0.0.1:2']);
    const listFile = join(dir, 'list.yaml');
    writeFileSync(listFile, 'cloudUrl:\n  - https://a.example:8443\n  - https://b.example:8443\n  - https://c.example:8443\n');
    expect(settings({ config: listFile }).cloudUrls).toEqual(['https://a.example:8443', 'https://b.example:8443', 'https://c.example:8443']);
    const commaFile = join(dir, 'comma.yaml');
    writeFileSync(commaFile, "cloudUrl: 'https://a.example:8443,https://b.example:8443'\n");
    expect(settings({ config: commaFile }).cloudUrls).toHaveLength(2);
  });

  it('a bad entry is named, with the setting and where it came from', () => {
    expect(() => settings({ cloudUrl: 'https://a.example:8443,ftp://b.example' })).toThrow(/invalid setting "cloudUrl" \(from flag --cloud-url\): "ftp:\/\/b.example" must be an http\(s\) URL/);
    expect(() => settings({}, { EF_EDGE_CLOUD_URL: 'https://a.example,not a url' })).toThrow(/\(from env EF_EDGE_CLOUD_URL\): "not a url" must be/);
    expect(() => settings({ cloudUrl: ' , ' })).toThrow(/invalid setting "cloudUrl"/);
  });

  it('cloudUrlOrder: shuffled by default, listed when asked (flag, env, YAML), anything else refused by name', () => {
    expect(settings({ cloudUrl: 'https://a.example' }).cloudUrlOrder).toBe('shuffled');
    expect(settings({ cloudUrl: 'https://a.example', cloudUrlOrder: 'listed' }).cloudUrlOrder).toBe('listed');
    expect(settings({ cloudUrl: 'https://a.example' }, { EF_EDGE_CLOUD_URL_ORDER: 'listed' }).cloudUrlOrder).toBe('listed');
    const file = join(dir, 'order.yaml');
    writeFileSync(file, 'cloudUrl: [https://a.example, https://b.example]\ncloudUrlOrder: listed\n');
    expect(settings({ config: file }).cloudUrlOrder).toBe('listed');
    expect(() => settings({ cloudUrl: 'https://a.example', cloudUrlOrder: 'nearest' })).toThrow(/invalid setting "cloudUrlOrder" \(from flag --cloud-url-order\): must be one of: shuffled, listed/);
  });

  it('the same replica twice is refused, however it is spelled', () => {
    expect(() => settings({ cloudUrl: 'https://a.example:443,https://a.example/' })).toThrow(/"https:\/\/a.example\/" is given twice \(also as "https:\/\/a.example:443"\)/);
  });

  it('http and https mixed are refused; plain HTTP off loopback is refused for each entry, named', () => {
    expect(() => settings({ cloudUrl: 'https://a.example,http://127.0.0.1:8080' })).toThrow(/mixes http:\/\/ and https:\/\//);
    expect(() => settings({ cloudUrl: 'http://127.0.0.1:8080,http://cloud.example:8080' })).toThrow(/http:\/\/cloud.example:8080 is plain HTTP to a host that is not loopback/);
    expect(settings({ cloudUrl: 'http://127.0.0.1:8080,http://cloud.example:8080', insecurePlainHttp: 'true' }).cloudUrls).toHaveLength(2);
  });
});

describe('CloudUrlRing', () => {
  it('walks a shuffle of the list round, every replica once per round', () => {
    const urls = ['u1', 'u2', 'u3', 'u4'];
    const ring = new CloudUrlRing(urls, { random: () => 0.5 });
    const round = [ring.current(), ring.advance(), ring.advance(), ring.advance()];
    expect([...round].sort()).toEqual(urls);
    expect(ring.advance()).toBe(round[0]);
    expect(ring.fromCurrent()).toEqual(round);
    ring.advance();
    expect(ring.fromCurrent()).toEqual([...round.slice(1), round[0]]);
  });

  it('different edges start at different replicas and move to different next ones', () => {
    const urls = ['u1', 'u2', 'u3'];
    const starts = new Set<string>();
    const nextAfterU1 = new Set<string>();
    let seed = 1;
    // A fixed pseudo-random sequence: the test must not depend on luck.
    const random = () => { seed = (seed * 16807) % 2147483647; return (seed - 1) / 2147483646; };
    for (let i = 0; i < 60; i++) {
      const ring = new CloudUrlRing(urls, { random });
      starts.add(ring.current());
      const order = ring.fromCurrent();
      nextAfterU1.add(order[(order.indexOf('u1') + 1) % order.length]!);
    }
    expect(starts).toEqual(new Set(urls));
    expect(nextAfterU1).toEqual(new Set(['u2', 'u3']));
  });

  it('listed: the order given, the first preferred, whatever the random source says', () => {
    for (const r of [0, 0.5, 0.99]) {
      const ring = new CloudUrlRing(['near', 'far-1', 'far-2'], { order: 'listed', random: () => r });
      expect(ring.fromCurrent()).toEqual(['near', 'far-1', 'far-2']);
      expect(ring.advance()).toBe('far-1');
      // Moved on: it stays on far-1 until that link fails, then far-2, then back round to near.
      expect(ring.current()).toBe('far-1');
      expect(ring.advance()).toBe('far-2');
      expect(ring.advance()).toBe('near');
    }
  });

  it('one URL stays that URL', () => {
    const ring = new CloudUrlRing(['only']);
    expect(ring.advance()).toBe('only');
  });
});

describe('tryCloudUrls', () => {
  it('goes on past a failing replica, stops at a final answer, names every failure', async () => {
    const tried: string[] = [];
    await expect(tryCloudUrls(['a', 'b'], async (u) => { tried.push(u); if (u === 'a') throw new Error('down'); return u; }, () => false)).resolves.toBe('b');
    class Final extends Error {}
    await expect(tryCloudUrls(['a', 'b'], async () => { throw new Final('refused'); }, (e) => e instanceof Final)).rejects.toThrow('refused');
    await expect(tryCloudUrls(['a', 'b'], async (u) => { throw new Error(`${u} down`); }, () => false)).rejects.toThrow('no cloudcore replica answered: a: a down; b: b down');
    // One URL: its own error, as before there were replicas.
    await expect(tryCloudUrls(['a'], async () => { throw new Error('down'); }, () => false)).rejects.toThrow(/^down$/);
    expect(tried).toEqual(['a', 'b']);
  });
});
