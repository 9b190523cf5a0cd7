import { describe, expect, it } from 'vitest';
import { EdgeStatusSchema } from '../../protocol/edgeStatus.js';
import { buildEdgeStatus, LinkTimes, linkStatus, LogTailCache, withoutUserInfo, withRecentLogs, type StatusParts } from './statusSnapshot.js';

const T0 = Date.parse('2025-01-01T10:00:00Z');
const stats = { connects: 1, syncFrames: 2, snapshots: 1, changesReceived: 3, upstreamSent: 4, errorsFromCloud: 0, bytesIn: 10, bytesOut: 20 };

function parts(over: Partial<StatusParts> = {}): StatusParts {
  return {
    node: 'edge-1', version: '0.1.0', cloudUrl: 'http://ops:hunter2@cloud.example:8080/', startedAt: T0, now: T0 + 90_000, pid: 42,
    link: undefined, linkTimes: new LinkTimes(), joinError: null,
    sync: { epoch: 'e1', lastRevision: 7 }, outbox: { depth: 2, dropped: 0, oldestSeq: 5 }, mqtt: null,
    workloads: [{ name: 'web', generation: 1, runtime: 'process', status: null }],
    host: { hostname: 'h', os: 'linux', arch: 'x64', uptimeSeconds: 1, loadAverage: [0, 0, 0], memory: { totalBytes: 1, availableBytes: 1, edgecoreRssBytes: 1 }, disk: null },
    ...over,
  };
}

describe('edge /status snapshot', () => {
  it('before any link exists the link is down since edgecore started', () => {
    const link = linkStatus(parts());
    expect(link).toMatchObject({ state: 'disconnected', downSince: new Date(T0).toISOString(), downForSeconds: 90, connectedSince: null, lastConnectedAt: null, stats: null });
  });

  it('a link that went down reports since when and when it was last up', () => {
    const times = new LinkTimes();
    times.onPhase('connected', T0 + 10_000);
    times.onPhase('disconnected', T0 + 30_000);
    const link = linkStatus(parts({ linkTimes: times, link: { phase: 'connecting', downSince: T0 + 30_000, lastError: 'ECONNREFUSED', stats } }));
    expect(link).toMatchObject({ state: 'connecting', downForSeconds: 60, connectedSince: null, lastConnectedAt: new Date(T0 + 30_000).toISOString(), lastError: 'ECONNREFUSED' });
  });

  it('a connected link has no down time and says since when it is up', () => {
    const times = new LinkTimes();
    times.onPhase('connected', T0 + 10_000);
    const link = linkStatus(parts({ linkTimes: times, link: { phase: 'connected', downSince: null, lastError: null, stats } }));
    expect(link).toMatchObject({ state: 'connected', downSince: null, downForSeconds: null, connectedSince: new Date(T0 + 10_000).toISOString() });
  });

  it('a join that failed is named, and the cloud URL never shows its password', () => {
    const link = linkStatus(parts({ joinError: 'token expired' }));
    expect(link.state).toBe('join-failed');
    expect(link.lastError).toBe('token expired');
    expect(link.cloudUrl).toBe('http://cloud.example:8080/');
    expect(withoutUserInfo('http://127.0.0.1:1')).toBe('http://127.0.0.1:1');
  });

  it('with several replicas: the URL the link is on, and every configured one, none with its password', () => {
    const cloudUrls = ['https://a.example:8443', 'https://ops:pw@b.example:8443/'];
    const before = linkStatus(parts({ cloudUrl: cloudUrls.join(','), cloudUrls }));
    expect(before.cloudUrl).toBe('https://a.example:8443');
    const on = linkStatus(parts({ cloudUrl: cloudUrls.join(','), cloudUrls, link: { phase: 'connected', cloudUrl: cloudUrls[1], downSince: null, lastError: null, stats } }));
    expect(on.cloudUrl).toBe('https://b.example:8443/');
    expect(on.cloudUrls).toEqual(['https://a.example:8443', 'https://b.example:8443/']);
    expect(JSON.stringify(on)).not.toContain('pw@');
  });

  it('the whole answer parses with the schema edgectl uses, and logs are added and cut', async () => {
    const status = buildEdgeStatus(parts());
    expect(EdgeStatusSchema.parse(status).edgecore).toEqual({ version: '0.1.0', pid: 42, startedAt: new Date(T0).toISOString(), uptimeSeconds: 90 });
    const long = 'x'.repeat(1000);
    const withLogs = await withRecentLogs(status, async (_name, tail) => ['a', 'b', long].slice(-tail), 2);
    expect(withLogs.workloads[0]!.recentLogs).toEqual(['b', `${'x'.repeat(400)}…`]);
    const broken = await withRecentLogs(status, async () => { throw new Error('gone'); }, 2);
    expect(broken.workloads[0]!.recentLogs).toEqual([]);
  });

  it('log tails are re-read at most once per ttl, and forgotten with their workload', async () => {
    let clock = 0;
    let reads = 0;
    const cache = new LogTailCache(async (name) => { reads++; return [`${name} line ${reads}`]; }, 10_000, () => clock);
    expect(await cache.tail('web', 5)).toEqual(['web line 1']);
    clock = 9_999;
    expect(await cache.tail('web', 5)).toEqual(['web line 1']);
    clock = 10_000;
    expect(await cache.tail('web', 5)).toEqual(['web line 2']);
    cache.retain(new Set(['other']));
    expect(await cache.tail('web', 5)).toEqual(['web line 3']);
  });
});
