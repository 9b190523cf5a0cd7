import { describe, expect, it } from 'vitest';
import { MIN_CERT_LIFETIME_SECONDS } from '../protocol/certificatePolicy.js';
import { CloudSettingsSchema } from './config.js';

describe('cloudcore settings: certificate lives', () => {
  it('node and server certificates live at least MIN_CERT_LIFETIME_SECONDS (30 s); device certificates at least 60 s', () => {
    for (const key of ['nodeCertLifetimeSeconds', 'serverCertLifetimeSeconds'] as const) {
      expect(CloudSettingsSchema.safeParse({ [key]: MIN_CERT_LIFETIME_SECONDS }).success, key).toBe(true);
      expect(CloudSettingsSchema.safeParse({ [key]: MIN_CERT_LIFETIME_SECONDS - 1 }).success, key).toBe(false);
    }
    expect(CloudSettingsSchema.safeParse({ deviceCertLifetimeSeconds: 59 }).success).toBe(false);
  });
});
