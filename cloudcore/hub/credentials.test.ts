import { describe, expect, it } from 'vitest';
import type { NodeCredential } from '../../protocol/index.js';
import { acceptsBearer, acceptsCertificate } from './credentials.js';

const record = (spec: Partial<NodeCredential['spec']>): NodeCredential => ({
  kind: 'NodeCredential', metadata: { name: 'edge-1' }, spec: { node: 'edge-1', issuedAt: '2026-12-01T00:00:00.000Z', certificates: [], ...spec },
});
const hash = 'ab'.repeat(32);
const other = 'cd'.repeat(32);

describe('node credential acceptance', () => {
  it('a bearer credential is accepted until it expires; the one a renewal replaced until its own expiry', () => {
    const r = record({ secretHash: hash, expiresAt: '2026-12-10T00:00:00.000Z', previousSecretHash: other, previousExpiresAt: '2026-12-05T00:00:00.000Z' });
    expect(acceptsBearer(r, hash, new Date('2026-12-09T00:00:00Z'))).toBe(true);
    expect(acceptsBearer(r, hash, new Date('2026-12-10T00:00:01Z'))).toBe(false);
    expect(acceptsBearer(r, other, new Date('2026-12-04T00:00:00Z'))).toBe(true);
    expect(acceptsBearer(r, other, new Date('2026-12-06T00:00:00Z'))).toBe(false);
  });

  it('a credential from before credentials expired lives a default certificate life from its issue', () => {
    const legacy = record({ secretHash: hash });
    expect(acceptsBearer(legacy, hash, new Date('2026-12-20T00:00:00Z'))).toBe(true);
    expect(acceptsBearer(legacy, hash, new Date('2027-01-01T00:00:00Z'))).toBe(false);
  });

  it('a certificate is accepted only while its serial is on the allow-list', () => {
    const r = record({ certificates: [{ serial: '1a2b', notAfter: '2027-01-01T00:00:00.000Z' }] });
    expect(acceptsCertificate(r, '1a2b')).toBe(true);
    expect(acceptsCertificate(r, '1a2c')).toBe(false);
    expect(acceptsCertificate(undefined, '1a2b')).toBe(false);
  });
});
