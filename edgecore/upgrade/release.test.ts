import { generateKeyPairSync, sign } from 'node:crypto';
import { mkdirSync, mkdtempSync, readlinkSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { commitLinks, installedIntact, linkTarget, pruneVersions, signedSha256, switchTo } from './release.js';

const dirs: string[] = [];
afterEach(() => { for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true }); });
function home(): string {
  const h = mkdtempSync(join(tmpdir(), 'ef-release-'));
  dirs.push(h);
  return h;
}
function release(h: string, v: string, arch = 'x64'): void {
  mkdirSync(join(h, v, 'bin'), { recursive: true });
  writeFileSync(join(h, v, 'VERSION'), `${v}\n`);
  writeFileSync(join(h, v, 'ARCH'), `${arch}\n`);
  writeFileSync(join(h, v, 'bin', 'edgecore'), '#!/bin/sh\n', { mode: 0o755 });
}

describe('the release on disk', () => {
  it('switches old → current, new and current → version; a commit drops new and broken, keeps old', () => {
    const h = home();
    release(h, '1.0.0');
    release(h, '2.0.0');
    symlinkSync('1.0.0', join(h, 'current'));
    symlinkSync('0.9.0', join(h, 'broken'));
    expect(switchTo(h, '2.0.0')).toBe('1.0.0');
    expect(['current', 'new', 'old'].map((l) => readlinkSync(join(h, l)))).toEqual(['2.0.0', '2.0.0', '1.0.0']);
    commitLinks(h);
    expect(linkTarget(h, 'new')).toBeNull();
    expect(linkTarget(h, 'broken')).toBeNull();
    expect(linkTarget(h, 'old')).toBe('1.0.0');
    expect(readdirSync(h).filter((n) => n.includes('.tmp-'))).toEqual([]);
  });

  it('prunes releases no link names and leftover temp dirs, and nothing else', () => {
    const h = home();
    for (const v of ['0.8.0', '0.9.0', '1.0.0', '2.0.0', '3.0.0']) release(h, v);
    mkdirSync(join(h, '4.0.0.tmp-abc123'));
    mkdirSync(join(h, 'operator-notes'));
    symlinkSync('2.0.0', join(h, 'current'));
    symlinkSync('1.0.0', join(h, 'old'));
    symlinkSync('3.0.0', join(h, 'broken'));
    expect(pruneVersions(h)).toEqual(['0.8.0', '0.9.0', '4.0.0.tmp-abc123']);
    expect(readdirSync(h).sort()).toEqual(['1.0.0', '2.0.0', '3.0.0', 'broken', 'current', 'old', 'operator-notes']);
  });

  it('knows an intact installed version (VERSION, ARCH, an executable edgecore)', () => {
    const h = home();
    release(h, '1.0.0');
    release(h, '2.0.0', 'arm64');
    expect(installedIntact(h, '1.0.0', 'x64')).toBe(true);
    expect(installedIntact(h, '2.0.0', 'x64')).toBe(false);
    expect(installedIntact(h, '3.0.0', 'x64')).toBe(false);
  });

  it('takes a file\'s sha256 only from SHA256SUMS signed by the release key', () => {
    const { privateKey, publicKey } = generateKeyPairSync('ed25519');
    const pem = publicKey.export({ type: 'spki', format: 'pem' }).toString();
    const sums = Buffer.from(`${'a'.repeat(64)}  x.tar.gz\n`);
    const sig = Buffer.from(sign(null, sums, privateKey).toString('base64'));
    expect(signedSha256(sums, sig, pem, 'x.tar.gz')).toBe('a'.repeat(64));
    expect(() => signedSha256(sums, sig, pem, 'y.tar.gz')).toThrow('SHA256SUMS does not list y.tar.gz');
    expect(() => signedSha256(Buffer.from(`${'b'.repeat(64)}  x.tar.gz\n`), sig, pem, 'x.tar.gz')).toThrow(/does not verify/);
    const rsa = generateKeyPairSync('rsa', { modulusLength: 1024 }).publicKey.export({ type: 'spki', format: 'pem' }).toString();
    expect(() => signedSha256(sums, sig, rsa, 'x.tar.gz')).toThrow('the release key is rsa, not Ed25519');
  });
});
