import { createHash, randomBytes, scrypt, timingSafeEqual } from 'node:crypto';

/**
 * MQTT passwords are stored as `scrypt$<saltB64>$<hashB64>` (N=16384, r=8, p=1, 32-byte key),
 * the format cloudcore writes into Device.spec.credentialHash.
 */

export const SCRYPT_PARAMS = { N: 16384, r: 8, p: 1 } as const;
export const SCRYPT_KEY_LENGTH = 32;
const SALT_BYTES = 16;
const BASE64 = /^[A-Za-z0-9+/]+={0,2}$/;

function derive(password: Buffer | string, salt: Buffer, keyLength: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    scrypt(password, salt, keyLength, { ...SCRYPT_PARAMS, maxmem: 64 * 1024 * 1024 }, (err, key) => (err ? reject(err) : resolve(key)));
  });
}

/** Hashes a password in the credentialHash format (for tests, tools and mapper credentials). */
export async function hashPassword(password: string): Promise<string> {
  const salt = randomBytes(SALT_BYTES);
  const key = await derive(password, salt, SCRYPT_KEY_LENGTH);
  return `scrypt$${salt.toString('base64')}$${key.toString('base64')}`;
}

/** Splits a stored hash; null when it is not in the expected format. */
export function parseCredentialHash(stored: string): { salt: Buffer; key: Buffer } | null {
  const parts = stored.split('$');
  if (parts.length !== 3 || parts[0] !== 'scrypt' || !BASE64.test(parts[1]!) || !BASE64.test(parts[2]!)) return null;
  const salt = Buffer.from(parts[1]!, 'base64');
  const key = Buffer.from(parts[2]!, 'base64');
  if (salt.length === 0 || key.length < 16 || key.length > 64) return null;
  return { salt, key };
}

// Compared against when the username is unknown, so a miss costs as much as a wrong password
// and response times do not reveal which device names exist.
const DUMMY_HASH = { salt: Buffer.alloc(SALT_BYTES, 1), key: Buffer.alloc(SCRYPT_KEY_LENGTH, 2) };

/**
 * Checks passwords against stored hashes, timing-safe. scrypt costs ~50 ms of a thread-pool
 * thread, so after an edge restart hundreds of devices reconnecting at once would queue for
 * seconds; a successful check is therefore remembered (as a SHA-256 of hash + password, in
 * memory only) and a repeat login with the same password against the same hash is immediate.
 */
export class CredentialVerifier {
  private readonly verified = new Set<string>();

  constructor(private readonly maxRemembered = 10_000) {}

  /** `stored` undefined (unknown user, no credential) always fails, after the same work as a real check. */
  async verify(stored: string | undefined, password: Buffer): Promise<boolean> {
    const parsed = stored === undefined ? null : parseCredentialHash(stored);
    const memo = parsed && stored !== undefined ? createHash('sha256').update(stored).update('\0').update(password).digest('base64') : null;
    if (memo !== null && this.verified.has(memo)) return true;
    const target = parsed ?? DUMMY_HASH;
    const key = await derive(password, target.salt, target.key.length);
    const ok = parsed !== null && timingSafeEqual(key, target.key);
    if (ok && memo !== null) this.remember(memo);
    return ok;
  }

  private remember(memo: string): void {
    if (this.verified.size >= this.maxRemembered) {
      const oldest = this.verified.values().next();
      if (!oldest.done) this.verified.delete(oldest.value);
    }
    this.verified.add(memo);
  }
}
