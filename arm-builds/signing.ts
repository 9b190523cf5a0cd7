import { createPrivateKey, createPublicKey, generateKeyPairSync, sign, verify, type KeyObject } from 'node:crypto';
import { existsSync, linkSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { log } from './exec.js';

export interface ReleaseKey { privateKey: KeyObject; publicPem: string; source: string }

/**
 * The release signing key: `--signing-key FILE` or EDGEFLEET_SIGNING_KEY_FILE (PEM PKCS#8
 * Ed25519). Without either, a development key is made once at `devKeyPath` (0600, gitignored)
 * and reused, with a warning: artefacts signed by it verify only against its own public half,
 * which is fine for tests and a lab, not for a fleet.
 */
export function loadReleaseKey(file: string | undefined, devKeyPath: string): ReleaseKey {
  let pem: string;
  let source: string;
  if (file !== undefined) {
    pem = readFileSync(file, 'utf8');
    source = file;
  } else {
    if (!existsSync(devKeyPath)) {
      mkdirSync(dirname(devKeyPath), { recursive: true });
      const { privateKey } = generateKeyPairSync('ed25519');
      // Written whole beside it, then linked into place: link fails if a build running beside
      // this one got there first, and then both sign with that one key.
      const tmp = `${devKeyPath}.${process.pid}`;
      writeFileSync(tmp, privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 });
      try {
        linkSync(tmp, devKeyPath);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      } finally {
        rmSync(tmp, { force: true });
      }
    }
    log(`WARNING: no --signing-key or EDGEFLEET_SIGNING_KEY_FILE: signing with the DEVELOPMENT key ${devKeyPath}; nodes installed from this release trust only that key`);
    pem = readFileSync(devKeyPath, 'utf8');
    source = devKeyPath;
  }
  let privateKey: KeyObject;
  try {
    privateKey = createPrivateKey({ key: pem, format: 'pem' });
  } catch (err) {
    throw new Error(`signing key ${source} is not a PEM private key: ${(err as Error).message}`);
  }
  if (privateKey.asymmetricKeyType !== 'ed25519') {
    throw new Error(`signing key ${source} is ${privateKey.asymmetricKeyType ?? 'not asymmetric'}, not Ed25519`);
  }
  const publicPem = createPublicKey(privateKey).export({ type: 'spki', format: 'pem' }).toString();
  return { privateKey, publicPem, source };
}

/** Base64 Ed25519 signature over the exact bytes given (SHA256SUMS), checked before it is used. */
export function signDetached(key: ReleaseKey, data: Buffer): string {
  const signature = sign(null, data, key.privateKey);
  if (!verify(null, data, createPublicKey(key.publicPem), signature)) throw new Error('the signature just made does not verify');
  return signature.toString('base64');
}
