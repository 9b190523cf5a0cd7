import { describe, expect, it } from 'vitest';
import type { Device } from '../protocol/index.js';
import { deviceRow, formatPropertyValue, twinRows } from './format.js';

const NOW = new Date('2025-01-01T12:00:00Z');

const device = (status?: Device['status']): Device => ({
  kind: 'Device',
  metadata: { name: 'pump-1' },
  spec: {
    model: 'pump', nodeName: 'edge-1', protocol: { name: 'modbus', config: {} }, properties: [],
    desired: { speed: 1200, valve: 'open', legacy: 1 },
    desiredVersion: 3,
    desiredMetadata: { speed: { updatedAt: '2025-01-01T11:00:00Z' }, valve: { updatedAt: '2025-01-01T11:50:00Z' } },
    modelSpec: { protocol: 'modbus', properties: [
      { name: 'pressure', type: 'float', accessMode: 'ReadOnly', unit: 'bar' },
      { name: 'speed', type: 'int', accessMode: 'ReadWrite', unit: 'rpm' },
      { name: 'valve', type: 'string', accessMode: 'ReadWrite' },
    ] },
  },
  ...(status ? { status } : {}),
});

describe('device formatting', () => {
  it('rows show online state and both twin versions', () => {
    expect(deviceRow(device())).toEqual(['pump-1', 'edge-1', 'pump', 'modbus', '<unknown>', '3/-']);
    expect(deviceRow(device({ online: false, lastSeen: null, twin: { reported: {}, version: 9, metadata: {} } }))[4]).toBe('no');
  });

  it('twin rows follow the model, then extra keys, with delta marks, units and the newest update', () => {
    const rows = twinRows(device({
      online: true, lastSeen: null,
      twin: { reported: { pressure: 2.5, speed: 1200, valve: 'closed', stray: true }, version: 5, metadata: { speed: { updatedAt: '2025-01-01T11:59:30Z' }, valve: { updatedAt: 'garbage' } } },
    }), NOW);
    expect(rows).toEqual([
      ['pressure', '-', '2.5', '', 'bar', '-'],
      ['speed', '1200', '1200', '', 'rpm', '30s ago'],
      ['valve', 'open', 'closed', '*', '-', '10m ago'],
      ['legacy', '1', '-', '*', '-', '-'],
      ['stray', '-', 'true', '', '-', '-'],
    ]);
  });

  it('values print plainly, long ones shortened', () => {
    expect(formatPropertyValue(undefined)).toBe('-');
    expect(formatPropertyValue(false)).toBe('false');
    expect(formatPropertyValue('x'.repeat(100))).toHaveLength(40);
  });
});
