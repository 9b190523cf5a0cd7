import { scryptSync } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { CredentialVerifier, hashPassword, parseCredentialHash } from './deviceCredentials.js';

describe('device credentials', () => {
  it('hashes in the scrypt$salt$hash format with N=16384 and a 32-byte key', async () => {
    const stored = await hashPassword('s3cret');
    const parsed = parseCredentialHash(stored);
    expect(parsed?.key.length).toBe(32);
    // Independent re-derivation with node's defaults for r and p.
    expect(scryptSync('s3cret', parsed!.salt, 32, { N: 16384 }).equals(parsed!.key)).toBe(true);
  });

  it('verifies right and wrong passwords, remembering only successes', async () => {
    const verifier = new CredentialVerifier();
    const stored = await hashPassword('s3cret');
    expect(await verifier.verify(stored, Buffer.from('s3cret'))).toBe(true);
    expect(await verifier.verify(stored, Buffer.from('s3cret'))).toBe(true);
    expect(await verifier.verify(stored, Buffer.from('S3cret'))).toBe(false);
    expect(await verifier.verify(undefined, Buffer.from('s3cret'))).toBe(false);
    expect(await verifier.verify('scrypt$bad', Buffer.from('s3cret'))).toBe(false);
    // A remembered success is bound to the hash: a new hash needs the new password.
    const rotated = await hashPassword('other');
    expect(await verifier.verify(rotated, Buffer.from('s3cret'))).toBe(false);
  });

  it('rejects malformed hashes', () => {
    for (const bad of ['', 'scrypt$$', 'bcrypt$YQ==$YWJjZGVmZ2hpamtsbW5vcA==', 'scrypt$YQ==$YQ==', 'scrypt$YQ==$!!!']) {
      expect(parseCredentialHash(bad), bad).toBeNull();
    }
  });
});
