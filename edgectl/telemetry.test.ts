import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { thermostatDevice, thermostatModel } from '../test/helpers/cloudcore/deviceFixtures.js';
import { ADMIN_TOKEN, READONLY_TOKEN, startTestApi, type TestApi } from '../test/helpers/cloudcore/testServer.js';
import { openSqliteTelemetry, type SqliteTelemetry } from '../cloudcore/telemetry/sqliteTelemetry.js';
import { parseSince, UsageError } from './parse.js';
import { runCli } from '../test/helpers/edgectl/runCli.js';
import { renderTelemetry } from './telemetryFormat.js';

/** `edgectl get telemetry` against the real cloudcore API and its real SQLite telemetry store. */

const NOW = new Date('2025-01-01T12:00:00Z');
const at = (minutesAgo: number) => new Date(NOW.getTime() - minutesAgo * 60_000).toISOString();

let api: TestApi;
let telemetry: SqliteTelemetry;
let dir: string;

const cli = (args: string[], token = ADMIN_TOKEN) => runCli(args, { origin: api.origin, token, homeDir: dir, now: NOW });

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'edgectl-telemetry-'));
  telemetry = await openSqliteTelemetry({ path: join(dir, 'telemetry.db'), now: () => NOW.getTime() });
  api = await startTestApi({ telemetry });
  for (const doc of [thermostatModel(), thermostatDevice('therm-1'), thermostatDevice('quiet-1')]) {
    const kind = doc.kind === 'DeviceModel' ? 'devicemodels' : 'devices';
    const res = await fetch(`${api.origin}/api/v1/${kind}`, { method: 'POST', headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json' }, body: JSON.stringify(doc) });
    expect(res.status).toBe(201);
  }
  // As the hub appends what an edge sends upstream.
  await telemetry.append('therm-1', [
    { t: at(60), values: { temperature: 19.5 } },
    { t: at(10), values: { temperature: 20.25, mode: 'eco' } },
    { t: at(5), values: { temperature: 21, power: true } },
    { t: at(1), values: { mode: 'eco boost' } },
  ]);
});

afterAll(async () => {
  await api.close();
  await telemetry.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('edgectl get telemetry', () => {
  it('shows the last 15 minutes by default, oldest first, a column per property', async () => {
    const r = await cli(['get', 'telemetry', 'therm-1']);
    expect(r.err).toBe('');
    const lines = r.out.trimEnd().split('\n').map((l) => l.trim().split(/\s{2,}/));
    expect(lines[0]).toEqual(['TIME', 'MODE', 'POWER', 'TEMPERATURE']);
    expect(lines.slice(1).map((l) => l[0])).toEqual([at(10), at(5), at(1)]);
    expect(r.out).toContain('"eco boost"');
    expect(r.out).not.toContain('19.5');
  });

  it('takes --since as a span or an ISO time, --limit, and -o json; says when the limit cut newer samples off', async () => {
    expect((await cli(['get', 'telemetry', 'therm-1', '--since', '2h'])).out).toContain('19.5');
    const iso = await cli(['get', 'telemetry', 'therm-1', '--since', at(6), '-o', 'json']);
    expect(JSON.parse(iso.out)).toEqual({ items: [{ t: at(5), values: { temperature: 21, power: true } }, { t: at(1), values: { mode: 'eco boost' } }] });
    const limited = await cli(['get', 'telemetry', 'therm-1', '--since', '1d', '--limit', '2']);
    expect(limited.out).toContain('19.5');
    expect(limited.out).not.toContain('21');
    expect(limited.out).toContain('(the first 2 samples since');
    // The readonly role may read it.
    expect((await cli(['get', 'telemetry', 'therm-1'], READONLY_TOKEN)).code).toBe(0);
  });

  it('says when there is nothing, and names what is wrong otherwise', async () => {
    expect((await cli(['get', 'telemetry', 'quiet-1'])).out).toBe(`No telemetry of device quiet-1 since ${at(15)}.\n`);
    const missing = await cli(['get', 'telemetry', 'ghost-1']);
    expect(missing).toMatchObject({ code: 1, err: expect.stringContaining('device "ghost-1" not found') as unknown });
    const since = await cli(['get', 'telemetry', 'therm-1', '--since', 'yesterday']);
    expect(since).toMatchObject({ code: 1, err: expect.stringContaining('invalid --since "yesterday"') as unknown });
    expect((await cli(['get', 'telemetry', 'therm-1', '--limit', '0'])).err).toContain('invalid --limit');
  });
});

describe('parseSince and renderTelemetry', () => {
  it('turns spans and ISO times with an offset into the API\'s ISO time', () => {
    expect(parseSince('90s', NOW)).toBe('2025-01-01T11:58:30.000Z');
    expect(parseSince('2h', NOW)).toBe('2025-01-01T10:00:00.000Z');
    expect(parseSince('7d', NOW)).toBe('2024-12-25T12:00:00.000Z');
    expect(parseSince('2025-01-01T13:00:00+02:00', NOW)).toBe('2025-01-01T11:00:00.000Z');
    for (const bad of ['', '15', '15 m', '-5m', '2025-01-01', 'now']) expect(() => parseSince(bad, NOW)).toThrow(UsageError);
  });

  it('leaves a cell empty where a sample has no value for the property', () => {
    const text = renderTelemetry([{ t: 'T1', values: { a: 1 } }, { t: 'T2', values: { b: false } }]);
    expect(text.split('\n').map((l) => l.trimEnd())).toEqual(['TIME   A   B', 'T1     1', 'T2         false', '']);
  });
});
