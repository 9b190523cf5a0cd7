import { createHash, generateKeyPairSync, sign, type KeyObject } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { artefactName, type EdgeArch } from '../../protocol/index.js';

/**
 * A release directory in the contract's layout (SHA256SUMS, SHA256SUMS.sig, release-key.pub),
 * signed with a key made here: for the tests of what cloudcore serves, where the tarballs'
 * contents do not matter (the installer tests install real ones from build:edge-artefacts).
 */
export interface ReleaseKey { privateKey: KeyObject; publicPem: string }

export function makeReleaseKey(): ReleaseKey {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  return { privateKey, publicPem: publicKey.export({ type: 'spki', format: 'pem' }).toString() };
}

export function signSums(sums: Buffer, key: ReleaseKey): string {
  return `${sign(null, sums, key.privateKey).toString('base64')}\n`;
}

export function writeRelease(distDir: string, version: string, tarballs: Partial<Record<EdgeArch, Buffer>>, key: ReleaseKey): string {
  const dir = join(distDir, version);
  mkdirSync(dir, { recursive: true });
  const lines: string[] = [];
  for (const [arch, body] of Object.entries(tarballs) as [EdgeArch, Buffer][]) {
    const name = artefactName(version, arch);
    writeFileSync(join(dir, name), body);
    lines.push(`${createHash('sha256').update(body).digest('hex')}  ${name}`);
  }
  const sums = Buffer.from(lines.join('\n') + '\n');
  writeFileSync(join(dir, 'SHA256SUMS'), sums);
  writeFileSync(join(dir, 'SHA256SUMS.sig'), signSums(sums, key));
  writeFileSync(join(dir, 'release-key.pub'), key.publicPem);
  return dir;
}
