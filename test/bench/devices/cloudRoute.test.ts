import { describe, expect, it } from 'vitest';
import { brokerLoginOf, hubOnlyFlagsProblem, parseEnviron, routedRecords, targetRouteProblem } from './cloudRoute.js';
import { telemetryPayload } from './benchDevices.js';
import { LatencyRecorder } from './latencyRecorder.js';

const T0 = Date.parse('2026-12-06T08:00:00.000Z');
const stored = (id: number, sentUs: number, receivedAt: string, encoding: 'utf8' | 'base64' = 'utf8') => {
  const text = telemetryPayload(id, sentUs);
  return {
    id, node: 'bench-edge', seq: id, topic: 'ef/devices/bench-dev-0001/telemetry', t: receivedAt, receivedAt, encoding,
    payload: encoding === 'utf8' ? text : Buffer.from(text).toString('base64'),
  };
};

describe('edgecore target options', () => {
  it('pairs the cloud route with the edgecore target and the mqtt route with the hub', () => {
    expect(targetRouteProblem('edgecore', 'cloud')).toBeNull();
    expect(targetRouteProblem('edgecore', 'none')).toBeNull();
    expect(targetRouteProblem('hub', 'mqtt')).toBeNull();
    expect(targetRouteProblem('hub', 'none')).toBeNull();
    expect(targetRouteProblem('hub', 'cloud')).toMatch(/--route cloud needs --target edgecore/);
    expect(targetRouteProblem('edgecore', 'mqtt')).toMatch(/--target edgecore runs --route cloud or none/);
  });

  it('names the hub-only flags given with the edgecore target, as typed', () => {
    const none = { hubCpuProf: false, hubNodeFlags: false, hubMaxBatch: false, hubTwinUpstreamMs: false };
    expect(hubOnlyFlagsProblem('edgecore', none)).toBeNull();
    expect(hubOnlyFlagsProblem('hub', { ...none, hubCpuProf: true })).toBeNull();
    expect(hubOnlyFlagsProblem('edgecore', { ...none, hubCpuProf: true, hubTwinUpstreamMs: true }))
      .toBe('--hub-cpu-prof, --hub-twin-upstream-ms: only for --target hub (edgecore runs with its own defaults)');
  });
});

describe('a workload\'s broker login', () => {
  it('reads EF_MQTT_* out of /proc/<pid>/environ text, values with "=" kept whole', () => {
    const env = parseEnviron('PATH=/usr/bin\0EF_MQTT_USERNAME=app-bench-app-01\0EF_MQTT_PASSWORD_FILE=/d/w/mqtt/password\0EF_MQTT_URL=mqtt://127.0.0.1:41883\0X=a=b\0junk\0');
    expect(env.X).toBe('a=b');
    expect(env.junk).toBeUndefined();
    expect(brokerLoginOf(env)).toEqual({ username: 'app-bench-app-01', passwordFile: '/d/w/mqtt/password', url: 'mqtt://127.0.0.1:41883' });
  });

  it('says which variables are missing (a workload without a grant has none)', () => {
    expect(brokerLoginOf(parseEnviron('PATH=/bin\0EF_MQTT_URL=mqtt://127.0.0.1:1\0'))).toBe('no EF_MQTT_USERNAME, EF_MQTT_PASSWORD_FILE in the workload\'s environment');
  });
});

describe('the cloud\'s stored route messages as timed records', () => {
  it('times each from its send time to the cloud\'s receipt, on the run\'s axis, and moves the cursor', () => {
    const page = [stored(1, 1_000_000, '2026-12-06T08:00:01.250Z'), stored(2, 1_500_000, '2026-12-06T08:00:02.000Z', 'base64')];
    const r = routedRecords(page, 0, T0);
    expect(r).toEqual({ sentUs: [1_000_000, 1_500_000], receivedUs: [1_250_000, 2_000_000], unreadable: 0, lastId: 2, missing: 0 });
  });

  it('counts a jump in ids as messages trimmed before they were read, and unreadable payloads apart', () => {
    const odd = { ...stored(9, 1, '2026-12-06T08:00:01.000Z'), payload: 'not json' };
    const r = routedRecords([stored(6, 5, '2026-12-06T08:00:01.000Z'), stored(7, 6, 'not a date'), odd], 3, T0);
    expect(r.missing).toBe(2 + 1);
    expect(r.unreadable).toBe(2);
    expect(r.lastId).toBe(9);
    expect(routedRecords([], 42, T0)).toEqual({ sentUs: [], receivedUs: [], unreadable: 0, lastId: 42, missing: 0 });
  });

  it('gives the rate arriving in the cloud over a phase window (receipts outside it left out)', () => {
    // 30 messages stored 100 ms apart from t0+1 s; the window [2 s, 4 s) holds 20 of them.
    const page = Array.from({ length: 30 }, (_, i) => stored(i + 1, 900_000 + i * 100_000, new Date(T0 + 1000 + i * 100).toISOString()));
    const recorder = new LatencyRecorder();
    recorder.addAll(routedRecords(page, 0, T0));
    const w = recorder.window(2_000_000, 4_000_000);
    expect(w.count).toBe(20);
    expect(w.perSecond).toBe(10);
    expect(w.latencyMs.p50).toBeCloseTo(100, 5);
  });
});
