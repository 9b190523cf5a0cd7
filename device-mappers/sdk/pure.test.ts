import { describe, expect, it } from 'vitest';
import type { DeviceModelSpec, PropertyValue } from '../../protocol/index.js';
import { backoffDelayMs } from './backoff.js';
import { reportTickMs, selectDueReports, type ReportState } from './cycles.js';
import { differingDesired, planWrites } from './delta.js';
import { canonicalJson, deviceFingerprint, diffDevices, parseDeviceList, type MapperDevice } from './deviceList.js';
import { rawToValue, valueToRaw, withoutFloatNoise } from './scaling.js';

describe('scaling', () => {
  it('value = raw * scale + offset, rounded for int, without float noise', () => {
    expect(rawToValue(255, { scale: 0.1, offset: 0 }, 'float')).toBe(25.5);
    expect(rawToValue(215, { scale: 0.1, offset: -5 }, 'double')).toBe(16.5);
    expect(rawToValue(7, { scale: 0.5, offset: 0 }, 'int')).toBe(4); // 3.5 rounds up
    expect(rawToValue(-7, { scale: 0.5, offset: 0 }, 'int')).toBe(-3);
    expect(withoutFloatNoise(0.1 + 0.2)).toBe(0.3);
  });

  it('the inverse gives integer raw values for integer registers', () => {
    expect(valueToRaw(25.5, { scale: 0.1, offset: 0 }, true)).toBe(255);
    expect(valueToRaw(16.5, { scale: 0.1, offset: -5 }, true)).toBe(215);
    expect(valueToRaw(1.25, { scale: 2, offset: 0 }, false)).toBe(0.625);
    expect(() => valueToRaw(1, { scale: 0, offset: 0 }, true)).toThrow(/scale must not be 0/);
    for (const raw of [0, 1, 99, 1234, 65535]) expect(valueToRaw(rawToValue(raw, { scale: 0.01, offset: 3 }, 'float'), { scale: 0.01, offset: 3 }, true)).toBe(raw);
  });
});

describe('backoff', () => {
  const policy = { baseMs: 100, maxMs: 1000 };
  it('doubles per failure, is capped, and jitters within [half, full]', () => {
    expect(backoffDelayMs(1, policy, () => 0)).toBe(50);
    expect(backoffDelayMs(1, policy, () => 1)).toBe(100);
    expect(backoffDelayMs(3, policy, () => 1)).toBe(400);
    expect(backoffDelayMs(3, policy, () => 0)).toBe(200);
    expect(backoffDelayMs(10, policy, () => 1)).toBe(1000);
    expect(backoffDelayMs(1000, policy, () => 0.5)).toBe(750);
    expect(backoffDelayMs(0, policy, () => 1)).toBe(100);
  });
});

describe('cycle scheduling', () => {
  it('ticks at the common divisor of the report cycles, never under 50 ms', () => {
    expect(reportTickMs([1000, 1500])).toBe(500);
    expect(reportTickMs([2000])).toBe(2000);
    expect(reportTickMs([1000, 1001])).toBe(50);
    expect(reportTickMs([])).toBe(1000);
  });

  it('reports changed values whose own cycle elapsed', () => {
    const states = new Map<string, ReportState>([
      ['never-read', { reportCycleMs: 1000 }],
      ['first', { reportCycleMs: 1000, value: 1 }],
      ['unchanged', { reportCycleMs: 1000, value: 5, reportedValue: 5, reportedAt: 0 }],
      ['changed-due', { reportCycleMs: 1000, value: 6, reportedValue: 5, reportedAt: 0 }],
      ['changed-early', { reportCycleMs: 3000, value: 6, reportedValue: 5, reportedAt: 0 }],
      ['late-timer', { reportCycleMs: 1000, value: true, reportedValue: false, reportedAt: 40 }],
      ['too-soon', { reportCycleMs: 1000, value: true, reportedValue: false, reportedAt: 100 }],
    ]);
    expect(selectDueReports(states, 1000, 50)).toEqual({ first: 1, 'changed-due': 6, 'late-timer': true });
  });
});

describe('delta selection', () => {
  const model: DeviceModelSpec = {
    protocol: 'virtual',
    properties: [
      { name: 'setpoint', type: 'float', accessMode: 'ReadWrite', minimum: 5, maximum: 30 },
      { name: 'temperature', type: 'float', accessMode: 'ReadOnly' },
      { name: 'mode', type: 'int', accessMode: 'ReadWrite' },
      { name: 'label', type: 'string', accessMode: 'ReadWrite' },
    ],
  };
  it('writes valid ReadWrite values with a visitor and skips the rest with reasons', () => {
    const { writes, skipped } = planWrites(
      { setpoint: 21.5, temperature: 3, mode: 1.5, colour: 'red', label: 'x', bad: null },
      model, new Set(['setpoint', 'temperature', 'mode']),
    );
    expect(writes.map((w) => [w.name, w.value])).toEqual([['setpoint', 21.5]]);
    expect(Object.fromEntries(skipped.map((s) => [s.name, s.reason]))).toEqual({
      temperature: 'property "temperature" is ReadOnly',
      mode: 'property "mode" must be an integer',
      colour: expect.stringContaining('unknown property "colour"'),
      label: expect.stringContaining('has no visitor'),
      bad: expect.stringContaining('unknown property'),
    });
    expect(planWrites({ setpoint: 40 }, model, new Set(['setpoint'])).skipped[0]?.reason).toContain('≤ 30');
  });

  it('differingDesired keeps only what the device does not show yet', () => {
    expect(differingDesired({ a: 1, b: true, c: 'x' }, new Map<string, PropertyValue>([['a', 1], ['b', false]]))).toEqual({ b: true, c: 'x' });
  });
});

describe('device list', () => {
  const model = { protocol: 'virtual', properties: [{ name: 'on', type: 'boolean', accessMode: 'ReadWrite' }] };
  const entry = (name: string, extra: Record<string, unknown> = {}) => ({ name, protocol: { name: 'virtual', config: { kind: 'switch' } }, properties: [{ name: 'on' }], model, ...extra });

  it('parses the answer, fills defaults, and rejects bad entries one by one', () => {
    const list = parseDeviceList({ node: 'edge-1', devices: [entry('a'), entry('b', { protocol: { name: 'modbus' } }), { name: 'c' }, entry('a'), 7] }, 'virtual');
    expect(list.node).toBe('edge-1');
    expect(list.devices.map((d) => d.name)).toEqual(['a']);
    expect(list.devices[0]!.properties[0]).toEqual({ name: 'on', visitor: {}, collectCycleMs: 1000, reportCycleMs: 1000 });
    expect(list.rejected.map((r) => r.name)).toEqual(['b', 'c', 'a', '#4']);
    expect(list.rejected[0]!.reason).toContain('speaks protocol "modbus"');
    expect(() => parseDeviceList({ devices: 'x' }, 'virtual')).toThrow(/malformed at "node"/);
  });

  it('diffs running devices by fingerprint, ignoring desired', () => {
    const [a, b] = parseDeviceList({ node: 'n', devices: [entry('a'), entry('b')] }, 'virtual').devices as [MapperDevice, MapperDevice];
    const running = new Map([['a', deviceFingerprint(a)], ['gone', 'x'], ['b', deviceFingerprint(b)]]);
    const changedB = { ...b, protocol: { name: 'virtual', config: { kind: 'switch', initial: true } } };
    const desiredOnly = { ...a, desired: { on: true } };
    const diff = diffDevices(running, [desiredOnly, changedB, { ...a, name: 'new' }]);
    expect(diff.added.map((d) => d.name)).toEqual(['new']);
    expect(diff.removed).toEqual(['gone']);
    expect(diff.changed.map((d) => d.name)).toEqual(['b']);
    expect(canonicalJson({ b: 1, a: [{ d: 2, c: undefined }] })).toBe('{"a":[{"d":2}],"b":1}');
  });
});
