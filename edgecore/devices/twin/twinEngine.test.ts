import { describe, expect, it } from 'vitest';
import { twinView, type Device, type DeviceModelSpec, type PropertyValue } from '../../../protocol/index.js';
import {
  applyReported, deltaMessage, deltasForSubscriptions, desiredFingerprint, emptyTwin, errorMessage, MAX_PAYLOAD_BYTES, parseReportedPayload,
  parseTelemetryPayload, twinReportedEntry,
} from './twinEngine.js';
import { THERMOSTAT_MODEL, makeDevice } from '../../../test/helpers/devices/deviceHubFixtures.js';

const json = (value: unknown) => Buffer.from(JSON.stringify(value));
const T0 = '2024-05-01T10:00:00.000Z';
const T1 = '2024-05-01T10:00:05.000Z';

describe('parseReportedPayload', () => {
  it('accepts values and nulls that fit the model, ReadOnly ones included', () => {
    const parsed = parseReportedPayload(json({ properties: { temperature: 21.5, mode: null, count: 3 } }), THERMOSTAT_MODEL);
    expect(parsed).toEqual({ ok: true, value: { temperature: 21.5, mode: null, count: 3 } });
  });

  it.each([
    ['not JSON', Buffer.from('{"properties":'), /not valid JSON/, undefined],
    ['not an object', json([1, 2]), /expected object/, undefined],
    ['missing properties', json({ temperature: 1 }), /Unrecognized key|properties/, undefined],
    ['unknown property', json({ properties: { humidity: 3 } }), /unknown property "humidity" \(model has: temperature, setpoint/, 'humidity'],
    ['wrong type', json({ properties: { enabled: 'yes' } }), /must be true or false/, 'enabled'],
    ['not an integer', json({ properties: { count: 2.5 } }), /must be an integer/, 'count'],
    ['below minimum', json({ properties: { setpoint: 2 } }), /≥ 5, got 2/, 'setpoint'],
    ['above maximum', json({ properties: { temperature: 126 } }), /≤ 125, got 126/, 'temperature'],
    ['object value', json({ properties: { mode: { a: 1 } } }), /must be a number, a string, true\/false or null/, 'mode'],
    ['bad property name', json({ properties: { '9lives': 1 } }), /property name "9lives" is invalid/, '9lives'],
    ['__proto__', Buffer.from('{"properties":{"__proto__":1}}'), /not allowed/, '__proto__'],
    ['__proto__ spelled with a \\u escape', Buffer.from('{"properties":{"\\u005f_proto__":1}}'), /not allowed/, '__proto__'],
  ])('refuses %s', (_case, payload, error, property) => {
    const parsed = parseReportedPayload(payload, THERMOSTAT_MODEL);
    expect(parsed.ok).toBe(false);
    if (parsed.ok) return;
    expect(parsed.refusal.error).toMatch(error);
    expect(parsed.refusal.property).toBe(property);
  });

  it('refuses oversized payloads without parsing them', () => {
    const parsed = parseReportedPayload(Buffer.alloc(MAX_PAYLOAD_BYTES + 1, 0x20), THERMOSTAT_MODEL);
    expect(parsed.ok ? '' : parsed.refusal.error).toMatch(/at most/);
  });

  it('takes what fits the model as the full schema would, whatever the model\'s types', () => {
    // Reports that fit skip the full schema (see parseReportedPayload): the same values come out.
    const model: DeviceModelSpec = {
      protocol: 'virtual', properties: [
        { name: 'i', type: 'int', accessMode: 'ReadOnly' }, { name: 'f', type: 'float', accessMode: 'ReadWrite' },
        { name: 'b', type: 'boolean', accessMode: 'ReadWrite' }, { name: 's', type: 'string', accessMode: 'ReadWrite' },
        { name: 'y', type: 'bytes', accessMode: 'ReadWrite' },
      ],
    };
    const accepted = { i: -3, f: 1.5e300, b: false, s: '', y: 'AAE=' };
    expect(parseReportedPayload(json({ properties: accepted }), model)).toEqual({ ok: true, value: accepted });
    expect(parseReportedPayload(json({ properties: { i: null, s: null } }), model)).toEqual({ ok: true, value: { i: null, s: null } });
    expect(parseReportedPayload(json({ properties: {} }), model)).toEqual({ ok: true, value: {} });
    for (const [properties, property] of [[{ b: 1 }, 'b'], [{ s: 7 }, 's'], [{ y: 'not base64!' }, 'y'], [{ i: 1.5 }, 'i'], [{ f: [1] }, 'f'], [{ constructor: 1 }, 'constructor']] as const) {
      const parsed = parseReportedPayload(json({ properties }), model);
      expect(parsed.ok ? null : parsed.refusal.property).toBe(property);
    }
    expect(parseReportedPayload(json({ properties: { i: 1 }, extra: true }), model).ok).toBe(false);
  });

  it('without a model checks only names and value types', () => {
    expect(parseReportedPayload(json({ properties: { anything: 'goes' } }), undefined).ok).toBe(true);
    expect(parseReportedPayload(json({ properties: { anything: [1] } }), undefined).ok).toBe(false);
  });
});

describe('parseTelemetryPayload', () => {
  it('takes a batch or a single sample and stamps samples without t', () => {
    const batch = parseTelemetryPayload(json({ samples: [{ t: '2024-05-01T09:00:00+02:00', values: { temperature: 1 } }, { values: { count: 2 } }] }), THERMOSTAT_MODEL, T0);
    expect(batch).toEqual({ ok: true, value: [{ t: '2024-05-01T09:00:00+02:00', values: { temperature: 1 } }, { t: T0, values: { count: 2 } }] });
    expect(parseTelemetryPayload(json({ values: { temperature: 3 } }), THERMOSTAT_MODEL, T0)).toEqual({ ok: true, value: [{ t: T0, values: { temperature: 3 } }] });
  });

  it.each([
    ['a bad timestamp', { t: 'yesterday', values: { temperature: 1 } }, /t:/],
    ['empty values', { values: {} }, /at least one property/],
    ['an out-of-range value in a batch', { samples: [{ values: { temperature: 1 } }, { values: { temperature: -41 } }] }, /samples\.1: property "temperature" must be ≥ -40/],
    ['an empty batch', { samples: [] }, /samples/],
    ['null values', { values: { temperature: null } }, /must be a number, a string or true\/false/],
    ['an unknown property', { values: { humidity: 3 } }, /unknown property "humidity"/],
    ['a wrong type', { values: { enabled: 'yes' } }, /must be true or false/],
    ['an object value', { values: { mode: { nested: 1 } } }, /must be a number, a string or true\/false/],
    ['an array value', { samples: [{ values: { temperature: [1] } }] }, /samples\.0: property "temperature" must be a number/],
    ['a reserved name', { values: { constructor: 1 } }, /property name "constructor" is invalid|unknown property "constructor"/],
    ['an extra field', { values: { temperature: 1 }, unit: 'C' }, /Unrecognized key/],
    ['values that are not an object', { values: 3 }, /values/],
  ])('refuses %s', (_case, payload, error) => {
    const parsed = parseTelemetryPayload(json(payload), THERMOSTAT_MODEL, T0);
    expect(parsed.ok ? '' : parsed.refusal.error).toMatch(error);
  });

  it('accepts with a model exactly what it accepts without one and the model allows', () => {
    // With a model only the payload's shape is parsed before the model check (a fast path):
    // what it lets through must be what the full schemas plus the model let through.
    const payloads: unknown[] = [
      { values: { temperature: 3, mode: 'eco' } },
      { t: '2024-05-01T09:00:00Z', values: { count: 2 } },
      { samples: [{ values: { temperature: 1 } }, { t: '2024-05-01T09:00:00+02:00', values: { enabled: true } }] },
      { values: { temperature: null } },
      { samples: [{ values: { temperature: 1 } }, { values: {} }] },
      { t: 5, values: { temperature: 1 } },
    ];
    for (const payload of payloads) {
      const withModel = parseTelemetryPayload(json(payload), THERMOSTAT_MODEL, T0);
      const without = parseTelemetryPayload(json(payload), undefined, T0);
      expect(withModel.ok, JSON.stringify(payload)).toBe(without.ok);
      if (withModel.ok && without.ok) expect(withModel.value).toEqual(without.value);
    }
  });
});

describe('applyReported', () => {
  it('merges, bumps the version and stamps only the changed properties', () => {
    const first = applyReported(emptyTwin(), { temperature: 20, mode: 'eco' }, T0);
    expect(first.changed).toBe(true);
    expect(first.twin).toMatchObject({ reported: { temperature: 20, mode: 'eco' }, version: 1, lastSeen: T0 });
    const second = applyReported(first.twin, { temperature: 21, mode: 'eco', count: null }, T1);
    expect(second.twin.version).toBe(2);
    expect(second.twin.metadata).toEqual({ temperature: { updatedAt: T1 }, mode: { updatedAt: T0 } });
  });

  it('deletes with null and treats a repeat as no change', () => {
    const base = applyReported(emptyTwin(), { temperature: 20, mode: 'eco' }, T0).twin;
    const deleted = applyReported(base, { mode: null }, T1);
    expect(deleted.twin).toMatchObject({ reported: { temperature: 20 }, metadata: { temperature: { updatedAt: T0 } }, version: 2 });
    const repeat = applyReported(base, { temperature: 20, count: null }, T1);
    expect(repeat.changed).toBe(false);
    expect(repeat.twin).toEqual({ ...base, lastSeen: T1 });
  });

  it('does not take inherited object keys for reported values', () => {
    const result = applyReported(emptyTwin(), { constructor: 'x' }, T0);
    expect(result.changed).toBe(true);
    expect(result.twin.reported).toEqual({ constructor: 'x' });
  });
});

describe('desired, delta and views', () => {
  const device = makeDevice('pump-1', { desired: { setpoint: 21, mode: 'eco' }, desiredVersion: 4, generation: 9 });

  it('computes the delta, null when in sync', () => {
    expect(deltaMessage(device.spec, { setpoint: 21 })).toEqual({ properties: { mode: 'eco' }, version: 4 });
    expect(deltaMessage(device.spec, { setpoint: 21, mode: 'eco', temperature: 3 })).toBeNull();
  });

  it('picks the deltas a new subscription should get right away', () => {
    const inSync = makeDevice('fan-1', { desired: { mode: 'eco' }, desiredVersion: 1 });
    const other = makeDevice('meter-1', { desired: { setpoint: 9 }, desiredVersion: 2 });
    const devices: { device: Device; reported: Record<string, PropertyValue> }[] = [
      { device, reported: {} }, { device: inSync, reported: { mode: 'eco' } }, { device: other, reported: {} },
    ];
    const everything = (_topic: string) => true;
    expect(deltasForSubscriptions(devices, [{ topic: 'ef/devices/+/twin/+', qos: 1 }], everything)).toEqual([
      { topic: 'ef/devices/pump-1/twin/delta', message: { properties: { setpoint: 21, mode: 'eco' }, version: 4 }, qos: 1 },
      { topic: 'ef/devices/meter-1/twin/delta', message: { properties: { setpoint: 9 }, version: 2 }, qos: 1 },
    ]);
    const onlyMeter = (topic: string) => topic.startsWith('ef/devices/meter-1/');
    expect(deltasForSubscriptions(devices, [{ topic: 'ef/devices/+/#', qos: 0 }], onlyMeter).map((d) => [d.topic, d.qos])).toEqual([['ef/devices/meter-1/twin/delta', 0]]);
    expect(deltasForSubscriptions(devices, [{ topic: 'ef/devices/pump-1/twin/desired', qos: 1 }], everything)).toEqual([]);
  });

  it('fingerprints desired independent of key order', () => {
    const reordered = makeDevice('pump-1', { desired: { mode: 'eco', setpoint: 21 }, desiredVersion: 4 });
    expect(desiredFingerprint(reordered.spec)).toBe(desiredFingerprint(device.spec));
    expect(desiredFingerprint(makeDevice('pump-1', { desired: { mode: 'eco', setpoint: 21 }, desiredVersion: 5 }).spec)).not.toBe(desiredFingerprint(device.spec));
  });

  it('builds the twin view and the upstream entry', () => {
    const twin = applyReported(emptyTwin(), { setpoint: 20 }, T0).twin;
    expect(twinView(device.spec, twin)).toEqual({
      desired: { setpoint: 21, mode: 'eco' }, reported: { setpoint: 20 }, delta: { setpoint: 21, mode: 'eco' },
      version: { desired: 4, reported: 1 }, metadata: { desired: {}, reported: { setpoint: { updatedAt: T0 } } },
    });
    expect(twinReportedEntry(device, twin)).toEqual({
      kind: 'twinReported', key: 'pump-1',
      body: { device: 'pump-1', twin: { reported: { setpoint: 20 }, version: 1, metadata: { setpoint: { updatedAt: T0 } } }, online: false, lastSeen: T0, observedGeneration: 9 },
    });
  });

  it('quotes at most 200 characters of a refused payload', () => {
    const message = errorMessage({ error: 'bad', property: 'x' }, 'ef/devices/a/twin/reported', Buffer.from('é'.repeat(300)));
    expect(message).toEqual({ error: 'bad', property: 'x', topic: 'ef/devices/a/twin/reported', payload: 'é'.repeat(200) });
    expect(errorMessage({ error: 'bad' }, 't', Buffer.alloc(0))).toEqual({ error: 'bad', topic: 't' });
  });
});
