import { describe, expect, it } from 'vitest';
import { keptCertificates, MIN_CERT_LIFETIME_SECONDS, renewAt, renewalStanding, validityFrom } from './certificatePolicy.js';

describe('certificate policy', () => {
  const v = { notBefore: new Date('2026-12-01T00:00:00Z'), notAfter: new Date('2026-12-31T00:00:00Z') };

  it('renews at two thirds of the life', () => {
    expect(renewAt(v).toISOString()).toBe('2026-12-21T00:00:00.000Z');
  });

  it('stands valid, due, expired within grace, then past it', () => {
    const grace = 7 * 86_400;
    expect(renewalStanding(v, new Date('2026-12-10T00:00:00Z'), grace)).toBe('valid');
    expect(renewalStanding(v, new Date('2026-12-22T00:00:00Z'), grace)).toBe('renew-due');
    expect(renewalStanding(v, new Date('2027-01-02T00:00:00Z'), grace)).toBe('expired-in-grace');
    expect(renewalStanding(v, new Date('2027-01-08T00:00:00Z'), grace)).toBe('expired-past-grace');
  });

  it('backdates notBefore a little (clock skew), never more than a tenth of a short life', () => {
    const now = new Date('2026-12-01T00:00:00Z');
    expect(validityFrom(now, 30 * 86_400).notBefore.toISOString()).toBe('2026-11-30T23:55:00.000Z');
    expect(validityFrom(now, 60).notBefore.toISOString()).toBe('2026-11-30T23:59:54.000Z');
  });

  it('at the shortest life cloudcore accepts (30 s): backdated 3 s, renewal due 19 s after issue, 11 s before expiry', () => {
    const now = new Date('2026-12-01T00:00:00Z');
    const shortest = validityFrom(now, MIN_CERT_LIFETIME_SECONDS);
    expect(MIN_CERT_LIFETIME_SECONDS).toBe(30);
    expect(shortest.notBefore.toISOString()).toBe('2026-11-30T23:59:57.000Z');
    expect(renewAt(shortest).toISOString()).toBe('2026-12-01T00:00:19.000Z');
    expect(shortest.notAfter.getTime() - renewAt(shortest).getTime()).toBe(11_000);
    const at = (s: number) => new Date(now.getTime() + s * 1000);
    expect(renewalStanding(shortest, at(18.999), 0)).toBe('valid');
    expect(renewalStanding(shortest, at(19), 0)).toBe('renew-due');
    expect(renewalStanding(shortest, at(30), 10)).toBe('expired-in-grace');
    expect(renewalStanding(shortest, at(40), 10)).toBe('expired-past-grace');
  });

  it('keeps the new serial and older ones still alive within grace, newest first, bounded', () => {
    const now = new Date('2026-12-15T00:00:00Z');
    const old = [
      { serial: 'a', notAfter: '2026-12-01T00:00:00.000Z' }, // dead past a 1-day grace
      { serial: 'b', notAfter: '2026-12-20T00:00:00.000Z' },
      { serial: 'c', notAfter: '2026-12-14T12:00:00.000Z' }, // expired, within grace
    ];
    const kept = keptCertificates(old, { serial: 'd', notAfter: '2027-01-14T00:00:00.000Z' }, now, 86_400);
    expect(kept.map((c) => c.serial)).toEqual(['d', 'b', 'c']);
    expect(keptCertificates(old, { serial: 'd', notAfter: '2027-01-14T00:00:00.000Z' }, now, 86_400, 2).map((c) => c.serial)).toEqual(['d', 'b']);
  });
});
