import { createServer, type Server, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TelemetrySample } from '../../protocol/index.js';
import { mergeSamples } from '../../cloudcore/peers/federatedTelemetry.js';
import type { CertificateAuthority } from '../../cloudcore/pki/certificateAuthority.js';
import { openSqliteStore, type SqliteStore } from '../../cloudcore/store/sqliteStore.js';
import { openSqliteTelemetry, type SqliteTelemetry } from '../../cloudcore/telemetry/sqliteTelemetry.js';
import { freeLoopbackPort } from '../helpers/etcdCluster.js';
import { httpsCall } from '../helpers/tlsClient.js';
import { makeDevice } from '../store/fixtures.js';
import { makeCa, randomToken, removeTempDirs, startReplica, stopReplica, tempDir, type Replica } from './peerRig.js';

const s = (t: string, values: TelemetrySample['values']): TelemetrySample => ({ t, values });

describe('mergeSamples (per-replica answers into one)', () => {
  const a = [s('2026-01-01T00:00:01Z', { temp: 1 }), s('2026-01-01T00:00:03Z', { temp: 3, hum: 30 })];
  const b = [s('2026-01-01T00:00:02Z', { temp: 2 }), s('2026-01-01T00:00:03.000Z', { hum: 30, temp: 3 }), s('2026-01-01T00:00:04Z', { temp: 4 })];

  it('orders by time and keeps a sample two replicas hold once (same instant, same values in any key order)', () => {
    expect(mergeSamples([a, b], { limit: 100 }).map((x) => x.values.temp)).toEqual([1, 2, 3, 4]);
  });

  it('keeps two different readings taken at the same instant', () => {
    const merged = mergeSamples([[s('2026-01-01T00:00:01Z', { temp: 1 })], [s('2026-01-01T00:00:01Z', { temp: 9 })]], { limit: 10 });
    expect(merged.map((x) => x.values.temp)).toEqual([1, 9]);
  });

  it('answers the newest `limit` without since, and the first `limit` after since with it, oldest first either way', () => {
    expect(mergeSamples([a, b], { limit: 2 }).map((x) => x.values.temp)).toEqual([3, 4]);
    expect(mergeSamples([a, b], { since: '2026-01-01T00:00:01Z', limit: 2 }).map((x) => x.values.temp)).toEqual([1, 2]);
  });

  it('sorts a time that does not parse last and does not merge it with another unparsed time', () => {
    const merged = mergeSamples([[s('garbage', { temp: 0 }), s('2026-01-01T00:00:01Z', { temp: 1 })], [s('other', { temp: 0 })]], { limit: 10 });
    expect(merged.map((x) => x.t)).toEqual(['2026-01-01T00:00:01Z', 'garbage', 'other']);
  });

  it('answers nothing from nothing', () => {
    expect(mergeSamples([[], []], { limit: 5 })).toEqual([]);
  });
});

/**
 * `GET /devices/{d}/telemetry` from any replica: two real HTTPS replicas, each with its own real
 * SQLite telemetry file holding the samples that came over its links, one shared object store.
 */
describe('device telemetry answered whole from any replica', () => {
  const replicaToken = randomToken();
  const operatorToken = randomToken();
  const owners = new Map<string, string>();
  const urls = new Map<string, string>();
  const warnings: string[] = [];
  const log = pino({ level: 'warn' }, { write: (line: string) => { warnings.push(line); } });
  let ca: CertificateAuthority;
  let store: SqliteStore;
  const own = new Map<string, SqliteTelemetry>();
  const replicas: Replica[] = [];
  /** Accepts connections and never answers: a peer that hangs. */
  let silent: Server;
  const silentSockets: Socket[] = [];

  beforeAll(async () => {
    ca = await makeCa();
    const dir = tempDir('ef-peer-telemetry-');
    store = await openSqliteStore({ path: join(dir, 'store.db') });
    await store.create(makeDevice('thermo-1', 'edge-a'));
    silent = createServer((socket) => { silentSockets.push(socket); });
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    for (const id of ['r-a', 'r-b']) {
      const telemetry = await openSqliteTelemetry({ path: join(dir, `${id}-telemetry.db`) });
      own.set(id, telemetry);
      replicas.push(await startReplica({
        id, ca, trust: ca, store, replicaToken, operatorToken, owners, urls, telemetry, requestTimeoutMs: 1000, log,
      }));
    }
  });
  afterAll(async () => {
    for (const replica of replicas) await stopReplica(replica);
    for (const socket of silentSockets) socket.destroy();
    await new Promise<void>((resolve) => silent?.close(() => resolve()));
    for (const telemetry of own.values()) await telemetry.close();
    await store?.close();
    removeTempDirs();
  });

  const telemetryAt = (replica: Replica, query = '') => httpsCall<{ items: TelemetrySample[] }>(
    `${replica.url}/api/v1/devices/thermo-1/telemetry${query}`, { ca: ca.bundlePem, headers: { authorization: `Bearer ${operatorToken}` } });

  it('merges what each replica received, with a resent sample once, in time order, limited', async () => {
    const now = Date.now();
    const at = (n: number) => new Date(now - (10 - n) * 60_000).toISOString();
    // The device's node was linked to A, then its session moved to B, whose outbox resent sample 3.
    await own.get('r-a')!.append('thermo-1', [1, 2, 3].map((n) => s(at(n), { temp: n })));
    await own.get('r-b')!.append('thermo-1', [3, 4, 5, 6].map((n) => s(at(n), { temp: n })));
    for (const replica of replicas) {
      const all = await telemetryAt(replica);
      expect(all.status).toBe(200);
      expect(all.body.items.map((x) => x.values.temp)).toEqual([1, 2, 3, 4, 5, 6]);
      expect((await telemetryAt(replica, '?limit=2')).body.items.map((x) => x.values.temp)).toEqual([5, 6]);
      expect((await telemetryAt(replica, `?since=${encodeURIComponent(at(2))}&limit=3`)).body.items.map((x) => x.values.temp)).toEqual([3, 4, 5]);
    }
  });

  it('leaves a peer that is down or hangs out of the answer, with a warning, and still answers', async () => {
    urls.set('r-down', `https://127.0.0.1:${await freeLoopbackPort()}`);
    urls.set('r-hangs', `https://127.0.0.1:${(silent.address() as AddressInfo).port}`);
    try {
      warnings.length = 0;
      const answer = await telemetryAt(replicas[0]!);
      expect(answer.status).toBe(200);
      expect(answer.body.items.map((x) => x.values.temp)).toEqual([1, 2, 3, 4, 5, 6]);
      const left = warnings.map((line) => JSON.parse(line) as { replica?: string; msg: string }).filter((w) => w.msg === 'telemetry of one replica left out of the answer');
      expect(left.map((w) => w.replica).sort()).toEqual(['r-down', 'r-hangs']);
    } finally {
      urls.delete('r-down');
      urls.delete('r-hangs');
    }
  });

  it('a peer with the telemetry routes answers only its own samples (never asks further)', async () => {
    const a = replicas[0]!;
    const direct = await httpsCall<{ items: TelemetrySample[] }>(`${a.url}/peer/v1/devices/thermo-1/telemetry?limit=100`, { ca: ca.bundlePem, headers: { authorization: `Bearer ${replicaToken}` } });
    expect(direct.status).toBe(200);
    expect(direct.body.items.map((x) => x.values.temp)).toEqual([1, 2, 3]);
    const bad = await httpsCall<{ error: string }>(`${a.url}/peer/v1/devices/thermo-1/telemetry?limit=0`, { ca: ca.bundlePem, headers: { authorization: `Bearer ${replicaToken}` } });
    expect(bad.status).toBe(400);
  });

  it('deleting the device at one replica drops its samples at every replica', async () => {
    const b = replicas[1]!;
    const deleted = await httpsCall(`${b.url}/api/v1/devices/thermo-1`, { method: 'DELETE', ca: ca.bundlePem, headers: { authorization: `Bearer ${operatorToken}` } });
    expect(deleted.status).toBeLessThan(300);
    expect(own.get('r-a')!.count('thermo-1')).toBe(0);
    expect(own.get('r-b')!.count('thermo-1')).toBe(0);
  });
});
