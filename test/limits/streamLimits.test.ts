import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Fleet, type Cloud } from '../helpers/fleet.js';
import { Scrape } from '../metrics/promText.js';

/**
 * Issue 20: watch and log streams are exempt from the request timeout, so they are bounded by
 * count: at most --max-streams-per-address open at once from one address (here 2); the next one
 * gets 429 naming the setting, and closing one frees its slot. Real cloudcore process.
 */
describe('watch streams per source address', () => {
  const fleet = new Fleet();
  let cloud: Cloud;
  const aborts: AbortController[] = [];
  beforeAll(async () => { cloud = await fleet.startCloud({ extra: ['--max-streams-per-address', '2'] }); });
  afterAll(async () => {
    for (const a of aborts) a.abort();
    await fleet.cleanup();
  });

  const watch = async (path: string) => {
    const abort = new AbortController();
    aborts.push(abort);
    const res = await fetch(`${cloud.url}/api/v1${path}`, { headers: { authorization: `Bearer ${cloud.token}` }, signal: abort.signal });
    return { res, abort };
  };

  it('answers 429 past the limit and admits a new stream once one closed', async () => {
    const first = await watch('/apps?watch=true');
    const second = await watch('/fleet/changes');
    expect([first.res.status, second.res.status]).toEqual([200, 200]);
    const third = await watch('/nodes?watch=true');
    expect(third.res.status).toBe(429);
    expect(((await third.res.json()) as { error: string }).error).toContain('maxStreamsPerAddress = 2');
    // Ordinary requests are not streams and still pass.
    expect((await fetch(`${cloud.url}/api/v1/healthz`)).status).toBe(200);

    first.abort.abort();
    let next = await watch('/apps?watch=true');
    for (let i = 0; i < 50 && next.res.status === 429; i++) {
      await new Promise((r) => setTimeout(r, 100)); // the server sees the close a moment later
      next = await watch('/apps?watch=true');
    }
    expect(next.res.status).toBe(200);
    const metrics = new Scrape(await (await fetch(`${cloud.url}/metrics`, { headers: { authorization: `Bearer ${cloud.token}` } })).text());
    expect(metrics.value('edgefleet_cloud_connections_refused_total', { what: 'stream' })).toBeGreaterThanOrEqual(1);
    expect(cloud.proc.exitCode).toBeUndefined();
  });
});
