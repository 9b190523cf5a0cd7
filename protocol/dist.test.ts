import { generateKeyPairSync, sign } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { artefactName, edgeArchOfNode, parseArtefactName, parseReleaseKey, parseSha256Sums, ReleaseVersionSchema, verifyReleaseSignature } from './dist.js';

const sha = 'a'.repeat(64);

describe('the release contract', () => {
  it('names tarballs per version and arch, and reads the name back', () => {
    expect(artefactName('1.2.0', 'armv7')).toBe('edgefleet-edge-1.2.0-linux-armv7.tar.gz');
    expect(parseArtefactName('edgefleet-edge-1.2.0-rc.1-linux-arm64.tar.gz')).toEqual({ version: '1.2.0-rc.1', arch: 'arm64' });
    expect(parseArtefactName('edgefleet-edge-1.2.0-linux-mips.tar.gz')).toBeUndefined();
  });
  it('maps a node\'s os.arch() to the artefact it runs', () => {
    expect(['x64', 'arm64', 'arm', 'ia32', 'constructor'].map(edgeArchOfNode)).toEqual(['x64', 'arm64', 'armv7', undefined, undefined]);
  });
  it('accepts versions that are one safe path segment only', () => {
    for (const ok of ['1.2.0', '0.1.0-dev+abc', 'v2']) expect(ReleaseVersionSchema.safeParse(ok).success, ok).toBe(true);
    for (const bad of ['..', '1..2', '.hidden', '1/2', '', 'a b', "1'"]) expect(ReleaseVersionSchema.safeParse(bad).success, bad).toBe(false);
  });
  it('parses SHA256SUMS of its own version, one tarball per arch, and refuses anything else', () => {
    const sums = parseSha256Sums(`${sha}  ${artefactName('1.0.0', 'x64')}\n${sha} *${artefactName('1.0.0', 'arm64')}\n`, '1.0.0');
    expect([...sums.entries()]).toEqual([
      ['edgefleet-edge-1.0.0-linux-x64.tar.gz', { arch: 'x64', sha256: sha }],
      ['edgefleet-edge-1.0.0-linux-arm64.tar.gz', { arch: 'arm64', sha256: sha }],
    ]);
    expect(() => parseSha256Sums(`${sha}  ${artefactName('1.0.1', 'x64')}\n`, '1.0.0')).toThrow(/not a tarball of version 1.0.0/);
    expect(() => parseSha256Sums(`${sha}  ../../etc/passwd\n`, '1.0.0')).toThrow();
    expect(() => parseSha256Sums(`${sha}  ${artefactName('1.0.0', 'x64')}\n${sha}  ${artefactName('1.0.0', 'x64')}\n`, '1.0.0')).toThrow(/twice/);
    expect(() => parseSha256Sums('', '1.0.0')).toThrow(/no tarball/);
  });
  it('verifies the Ed25519 signature over the exact bytes, and only under an Ed25519 key', () => {
    const { publicKey, privateKey } = generateKeyPairSync('ed25519');
    const key = parseReleaseKey(publicKey.export({ type: 'spki', format: 'pem' }).toString());
    const sums = Buffer.from(`${sha}  ${artefactName('1.0.0', 'x64')}\n`);
    const sig = sign(null, sums, privateKey).toString('base64');
    expect(verifyReleaseSignature(sums, `${sig}\n`, key)).toBe(true);
    expect(verifyReleaseSignature(Buffer.concat([sums, Buffer.from(' ')]), sig, key)).toBe(false);
    expect(verifyReleaseSignature(sums, 'not base64!', key)).toBe(false);
    const rsa = generateKeyPairSync('rsa', { modulusLength: 1024 }).publicKey.export({ type: 'spki', format: 'pem' }).toString();
    expect(() => parseReleaseKey(rsa)).toThrow(/not Ed25519/);
  });
});
