import { describe, expect, it } from 'vitest';
import { brokerExposureWarnings } from './brokerExposure.js';

describe('brokerExposureWarnings', () => {
  it('is quiet for the defaults (loopback, no anonymous access)', () => {
    expect(brokerExposureWarnings({ mqttHost: '127.0.0.1', mqttAllowAnonymous: false })).toEqual([]);
    expect(brokerExposureWarnings({ mqttHost: 'localhost', mqttAllowAnonymous: false })).toEqual([]);
  });

  it('names anonymous access and a plain listener on a non-loopback address', () => {
    const warnings = brokerExposureWarnings({ mqttHost: '0.0.0.0', mqttAllowAnonymous: true });
    expect(warnings).toHaveLength(2);
    expect(warnings[0]).toMatch(/^anonymous MQTT clients are allowed \(--mqtt-allow-anonymous\)/);
    expect(warnings[1]).toBe('plain MQTT (no TLS) listens on 0.0.0.0, not loopback: device passwords and data cross the network unencrypted and anyone on it may connect');
  });
});
