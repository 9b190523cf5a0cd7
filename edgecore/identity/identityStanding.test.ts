import { describe, expect, it } from 'vitest';
import { MIN_CERT_LIFETIME_SECONDS, validityFrom } from '../../protocol/certificatePolicy.js';
import { backoffDelayMs } from '../link/backoff.js';
import { RENEWAL_BACKOFF } from './certificateRenewal.js';
import { identityStanding, isExpired, renewalTime } from './identityStanding.js';
import { formatCredentialFile, parseCredentialFile } from './identityStore.js';

const validity = { notBefore: new Date('2026-01-01T00:00:00Z'), notAfter: new Date('2026-01-31T00:00:00Z') };
const at = (iso: string) => new Date(iso);

describe('identity standing', () => {
  it('valid, then renew-due at two thirds, then expired (still renewing), whatever the edge thinks the grace is', () => {
    expect(renewalTime(validity)?.toISOString()).toBe('2026-01-21T00:00:00.000Z');
    expect(identityStanding(validity, at('2026-01-10T00:00:00Z'), false)).toBe('valid');
    expect(identityStanding(validity, at('2026-01-21T00:00:00Z'), false)).toBe('renew-due');
    expect(identityStanding(validity, at('2026-01-31T00:00:00Z'), false)).toBe('expired-in-grace');
    // Years later the edge still tries: only the cloud knows its grace window.
    expect(identityStanding(validity, at('2029-01-01T00:00:00Z'), false)).toBe('expired-in-grace');
    expect(isExpired(validity, at('2026-01-30T23:59:59Z'))).toBe(false);
    expect(isExpired(validity, at('2026-01-31T00:00:00Z'))).toBe(true);
  });

  it('at the shortest life cloudcore issues, a renewal and its first three retries fit before expiry', () => {
    const issued = at('2026-01-01T00:00:00Z');
    // Retries after 1, 2 and 3 failures, each at its longest (the jitter only shortens them).
    const retries = [1, 2, 3].reduce((sum, failures) => sum + backoffDelayMs(failures, RENEWAL_BACKOFF, () => 1), 0);
    expect(retries).toBe(7_000);
    const certificate = validityFrom(issued, MIN_CERT_LIFETIME_SECONDS);
    // A bearer credential is not backdated: its window is the tighter one.
    const bearer = { notBefore: issued, notAfter: new Date(issued.getTime() + MIN_CERT_LIFETIME_SECONDS * 1000) };
    for (const validity of [certificate, bearer]) {
      const window = validity.notAfter.getTime() - renewalTime(validity)!.getTime();
      expect(window).toBeGreaterThan(retries);
    }
  });

  it('the cloud\'s refusal wins; a credential without expiry is valid and never renewed', () => {
    expect(identityStanding(validity, at('2026-01-10T00:00:00Z'), true)).toBe('needs-new-token');
    expect(identityStanding(null, at('2026-01-10T00:00:00Z'), false)).toBe('valid');
    expect(renewalTime(null)).toBeNull();
    expect(isExpired(null, at('2099-01-01T00:00:00Z'))).toBe(false);
  });
});

describe('node.credential', () => {
  const mtime = at('2026-02-01T00:00:00Z');

  it('an older edgecore\'s file (the credential alone) reads as a credential without expiry, issued at the file\'s time', () => {
    expect(parseCredentialFile('edge-1.abc\n', mtime)).toEqual({ mode: 'bearer', credential: 'edge-1.abc', expiresAt: null, issuedAt: mtime.toISOString(), joinTokenSha256: null });
    expect(parseCredentialFile('\n', mtime)).toBeNull();
  });

  it('round-trips with its expiry and token hash; bad values are dropped, not trusted', () => {
    const id = { mode: 'bearer' as const, credential: 'edge-1.abc', expiresAt: '2026-03-01T00:00:00.000Z', issuedAt: '2026-02-01T00:00:00.000Z', joinTokenSha256: 'a'.repeat(64) };
    expect(parseCredentialFile(formatCredentialFile(id), mtime)).toEqual(id);
    const bad = parseCredentialFile('edge-1.abc\nexpires-at soon\njoin-token-sha256 xyz\n', mtime);
    expect(bad).toMatchObject({ expiresAt: null, joinTokenSha256: null });
  });
});
