import { createPublicKey, generateKeyPairSync, verify } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadReleaseKey, signDetached } from '../../arm-builds/signing.js';
import { artefactBase, parseArches, parseVersion } from '../../arm-builds/targets.js';
import { launcher } from '../../arm-builds/tarball.js';

/** The edge artefact build's inputs: versions, architectures, the release key, the launchers. */

const dir = mkdtempSync(join(tmpdir(), 'ef-build-options-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('edge artefact build options', () => {
  it('a version must be usable in file names; architectures are x64, arm64, armv7', () => {
    expect(parseVersion('1.4.0-rc.1+build_7')).toBe('1.4.0-rc.1+build_7');
    for (const bad of ['', '../1', '1/2', '-1', '.1', '1 2', '$(id)', 'a'.repeat(65)]) expect(() => parseVersion(bad), bad).toThrow(/not usable in file names/);
    expect(parseArches('arm64, x64,arm64')).toEqual(['arm64', 'x64']);
    expect(() => parseArches('x64,riscv64')).toThrow(/unknown architecture "riscv64" \(expected x64, arm64, armv7\)/);
    expect(() => parseArches(',')).toThrow(/names no architecture/);
    expect(artefactBase('1.0.0', 'armv7')).toBe('edgefleet-edge-1.0.0-linux-armv7');
  });

  it('signs with a given Ed25519 key: the signature verifies under the public half it ships', () => {
    const { privateKey, publicKey } = generateKeyPairSync('ed25519');
    const file = join(dir, 'release.pem');
    writeFileSync(file, privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 });
    const key = loadReleaseKey(file, join(dir, 'unused-dev.pem'));
    expect(key.source).toBe(file);
    expect(key.publicPem).toBe(publicKey.export({ type: 'spki', format: 'pem' }));
    expect(existsSync(join(dir, 'unused-dev.pem'))).toBe(false);
    const data = Buffer.from('abc  edgefleet-edge-1-linux-x64.tar.gz\n');
    const signature = Buffer.from(signDetached(key, data), 'base64');
    expect(verify(null, data, createPublicKey(key.publicPem), signature)).toBe(true);
  });

  it('refuses a key that is not Ed25519 or not a key at all', () => {
    const rsa = join(dir, 'rsa.pem');
    writeFileSync(rsa, generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ type: 'pkcs8', format: 'pem' }));
    expect(() => loadReleaseKey(rsa, join(dir, 'dev.pem'))).toThrow(/is rsa, not Ed25519/);
    const junk = join(dir, 'junk.pem');
    writeFileSync(junk, 'not a key\n');
    expect(() => loadReleaseKey(junk, join(dir, 'dev.pem'))).toThrow(/is not a PEM private key/);
  });

  it('without a key makes a development key once (0600) and reuses it', () => {
    const dev = join(dir, 'dev', '.dev-release-key.pem');
    const first = loadReleaseKey(undefined, dev);
    expect(statSync(dev).mode & 0o777).toBe(0o600);
    expect(loadReleaseKey(undefined, dev).publicPem).toBe(first.publicPem);
  });

  it('launchers are POSIX sh that run the bundle on the runtime beside them', () => {
    expect(launcher('edgectl')).toContain('exec "$here/../node/bin/node" "$here/../lib/edgectl.mjs" "$@"');
    expect(launcher('edgecore')).toContain('exec "$here/../node/bin/node" --lite-mode "$here/../lib/edgecore.mjs" "$@"');
    expect(launcher('mapper').startsWith('#!/bin/sh\n')).toBe(true);
  });
});
