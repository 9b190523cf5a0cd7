import { describe, expect, it } from 'vitest';
import { SettingsError } from '../../protocol/index.js';
import { loadCloudSettings } from '../config.js';

/** The limit settings of issue 20: narrow defaults, widened only on purpose, nonsense refused by name. */
describe('cloudcore limit settings', () => {
  it('defaults narrow', () => {
    expect(loadCloudSettings({}, {})).toMatchObject({
      requestTimeoutSeconds: 10, headersTimeoutSeconds: 5, keepAliveTimeoutSeconds: 5,
      maxConnectionsPerAddress: 256, maxStreamsPerAddress: 32,
      eventsPerSecondPerNode: 20, eventBurstPerNode: 200, maxEventObjectChanges: 10_000,
    });
  });

  it('reads flags and env', () => {
    const s = loadCloudSettings({ maxConnectionsPerAddress: '1000' }, { EF_CLOUD_EVENTS_PER_SECOND_PER_NODE: '5' });
    expect(s.maxConnectionsPerAddress).toBe(1000);
    expect(s.eventsPerSecondPerNode).toBe(5);
  });

  it('refuses a headers timeout longer than the request timeout, naming it', () => {
    expect(() => loadCloudSettings({ requestTimeoutSeconds: '3', headersTimeoutSeconds: '5' }, {})).toThrow(SettingsError);
    expect(() => loadCloudSettings({ requestTimeoutSeconds: '3', headersTimeoutSeconds: '5' }, {})).toThrow(/headersTimeoutSeconds/);
    expect(() => loadCloudSettings({ maxStreamsPerAddress: '0' }, {})).toThrow(/maxStreamsPerAddress/);
  });
});
