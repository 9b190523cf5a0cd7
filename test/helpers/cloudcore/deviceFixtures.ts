/**
 * Request bodies for device API tests (cloudcore and edgectl): a thermostat model and devices
 * of it. Not a test itself.
 */

export const thermostatModel = (name = 'thermostat', extra: Array<Record<string, unknown>> = []) => ({
  kind: 'DeviceModel',
  metadata: { name, labels: { vendor: 'acme' } },
  spec: {
    protocol: 'modbus',
    properties: [
      { name: 'temperature', type: 'float', accessMode: 'ReadOnly', unit: '°C', minimum: -40, maximum: 125 },
      { name: 'setpoint', type: 'float', accessMode: 'ReadWrite', unit: '°C', minimum: 5, maximum: 35 },
      { name: 'mode', type: 'string', accessMode: 'ReadWrite' },
      { name: 'power', type: 'boolean', accessMode: 'ReadWrite' },
      { name: 'fanSteps', type: 'int', accessMode: 'ReadWrite', minimum: 0, maximum: 5 },
      ...extra,
    ],
  },
});

export const thermostatDevice = (name: string, opts: { node?: string; model?: string; desired?: Record<string, unknown>; labels?: Record<string, string> } = {}) => ({
  kind: 'Device',
  metadata: { name, ...(opts.labels ? { labels: opts.labels } : {}) },
  spec: {
    model: opts.model ?? 'thermostat',
    nodeName: opts.node ?? 'edge-1',
    protocol: { name: 'modbus', config: { host: '127.0.0.1', port: 5020 } },
    properties: [
      { name: 'temperature', visitor: { register: 0, scale: 0.1 } },
      { name: 'setpoint', visitor: { register: 1, scale: 0.1 } },
    ],
    desired: opts.desired ?? { setpoint: 21 },
  },
});
