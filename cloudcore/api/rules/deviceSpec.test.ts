import { describe, expect, it } from 'vitest';
import { hashDevicePassword, issueDeviceCredentials, newDevicePassword, verifyDevicePassword } from './deviceCredentials.js';
import { DeviceInputSchema } from '../../../protocol/index.js';
import { deviceFromInput, nextDesired, parseIfMatch } from './deviceSpec.js';
import { ApiError } from '../plumbing/errors.js';

describe('nextDesired', () => {
  it('starts at version 1 with values, 0 without, timing every property', () => {
    expect(nextDesired(undefined, { a: 1, b: 'x' }, 'T1')).toEqual({
      desired: { a: 1, b: 'x' }, desiredVersion: 1, desiredMetadata: { a: { updatedAt: 'T1' }, b: { updatedAt: 'T1' } },
    });
    expect(nextDesired(undefined, {}, 'T1')).toEqual({ desired: {}, desiredVersion: 0, desiredMetadata: {} });
  });

  it('keeps version and times when nothing changed, bumps once and times only changes otherwise', () => {
    const previous = { desired: { a: 1, b: 'x' }, desiredVersion: 4, desiredMetadata: { a: { updatedAt: 'T1' }, b: { updatedAt: 'T1' } } };
    expect(nextDesired(previous, { b: 'x', a: 1 }, 'T2')).toEqual(previous);
    expect(nextDesired(previous, { a: 2, b: 'x', c: true }, 'T2')).toEqual({
      desired: { a: 2, b: 'x', c: true }, desiredVersion: 5,
      desiredMetadata: { a: { updatedAt: 'T2' }, b: { updatedAt: 'T1' }, c: { updatedAt: 'T2' } },
    });
    expect(nextDesired(previous, { a: 1 }, 'T2')).toEqual({ desired: { a: 1 }, desiredVersion: 5, desiredMetadata: { a: { updatedAt: 'T1' } } });
    // 1 and true are different values, not "the same".
    expect(nextDesired({ desired: { a: 1 }, desiredVersion: 1, desiredMetadata: {} }, { a: true }, 'T2').desiredVersion).toBe(2);
  });
});

describe('parseIfMatch', () => {
  it('reads bare, quoted and weak versions; * and absence mean any', () => {
    expect(parseIfMatch('3')).toBe(3);
    expect(parseIfMatch('"3"')).toBe(3);
    expect(parseIfMatch('W/"12"')).toBe(12);
    expect(parseIfMatch(' 0 ')).toBe(0);
    expect(parseIfMatch('*')).toBeUndefined();
    expect(parseIfMatch(undefined)).toBeUndefined();
  });

  it('refuses anything else as a 400 naming If-Match', () => {
    for (const bad of ['', 'abc', '"1", "2"', '-1', '1.5']) {
      expect(() => parseIfMatch(bad)).toThrow(ApiError);
      try { parseIfMatch(bad); } catch (err) { expect((err as ApiError).field).toBe('If-Match'); }
    }
  });
});

describe('device credentials', () => {
  it('issues 32-character base64url passwords that differ every time', () => {
    const a = newDevicePassword();
    expect(a).toMatch(/^[A-Za-z0-9_-]{32}$/);
    expect(newDevicePassword()).not.toBe(a);
  });

  it('hashes with a random salt and verifies only the right password', async () => {
    const { credentials, credentialHash } = await issueDeviceCredentials('pump-1');
    expect(credentials.username).toBe('pump-1');
    expect(credentialHash).toMatch(/^scrypt\$[A-Za-z0-9+/]+=*\$[A-Za-z0-9+/]+=*$/);
    expect(await verifyDevicePassword(credentials.password, credentialHash)).toBe(true);
    expect(await verifyDevicePassword(`${credentials.password}x`, credentialHash)).toBe(false);
    expect(await hashDevicePassword('same')).not.toBe(await hashDevicePassword('same'));
    const fixedSalt = Buffer.alloc(16, 7);
    expect(await hashDevicePassword('same', fixedSalt)).toBe(await hashDevicePassword('same', fixedSalt));
  });

  it('treats malformed hashes as no match', async () => {
    for (const bad of ['', 'plain', 'bcrypt$a$b', 'scrypt$AAAA$AAAA', 'scrypt$a$b$c']) expect(await verifyDevicePassword('pw', bad)).toBe(false);
  });
});

describe('deviceFromInput keeps credentials out of the operator\'s hands', () => {
  it('a re-applied device keeps its certificate allow-list and password hash; a list in the input is ignored', () => {
    const model = { protocol: 'virtual', properties: [] };
    const input = DeviceInputSchema.parse({
      metadata: { name: 'lamp-1' },
      spec: { model: 'lamp', nodeName: 'edge-1', protocol: { name: 'virtual' }, certificates: [{ serial: 'f00d', notAfter: '2099-01-01T00:00:00.000Z' }] },
    });
    const previous = deviceFromInput(input, model, undefined, 'T1', false);
    expect(previous.spec.certificates).toBeUndefined(); // not forged from input
    const issued = { ...previous, spec: { ...previous.spec, credentialHash: 'scrypt$x$y', certificates: [{ serial: '1abc', notAfter: '2027-01-01T00:00:00.000Z' }] } };
    const reapplied = deviceFromInput(input, model, issued, 'T2', false);
    expect(reapplied.spec.certificates).toEqual([{ serial: '1abc', notAfter: '2027-01-01T00:00:00.000Z' }]);
    expect(reapplied.spec.credentialHash).toBe('scrypt$x$y');
  });
});
