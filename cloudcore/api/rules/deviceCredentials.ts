import { randomBytes, scrypt, timingSafeEqual } from 'node:crypto';

/**
 * Per-device MQTT passwords. cloudcore keeps only a scrypt hash in `spec.credentialHash`
 * (`scrypt$<saltB64>$<hashB64>`, standard base64, N=16384, r=8, p=1, 32-byte key); the
 * password itself is shown once, in the answer that created or rotated it. scrypt runs on the
 * thread pool (about 50 ms each), so creating many devices does not stall the event loop the
 * API and the hub share.
 */

export const SCRYPT_N = 16384;
export const SCRYPT_KEY_LENGTH = 32;
const SALT_BYTES = 16;

export interface DeviceCredentials {
  /** The device's MQTT username: its name. */
  username: string;
  password: string;
}

/** 24 random bytes, base64url: 32 characters that survive any config file or shell. */
export function newDevicePassword(): string {
  return randomBytes(24).toString('base64url');
}

function derive(password: string, salt: Buffer): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    scrypt(password, salt, SCRYPT_KEY_LENGTH, { N: SCRYPT_N, r: 8, p: 1 }, (err, key) => (err ? reject(err) : resolve(key)));
  });
}

export async function hashDevicePassword(password: string, salt: Buffer = randomBytes(SALT_BYTES)): Promise<string> {
  const hash = await derive(password, salt);
  return `scrypt$${salt.toString('base64')}$${hash.toString('base64')}`;
}

/** True when `password` matches a `scrypt$…` hash; false for any other or malformed hash. */
export async function verifyDevicePassword(password: string, stored: string): Promise<boolean> {
  const [scheme, saltB64, hashB64, ...rest] = stored.split('$');
  if (scheme !== 'scrypt' || !saltB64 || hashB64 === undefined || rest.length > 0) return false;
  const expected = Buffer.from(hashB64, 'base64');
  if (expected.length !== SCRYPT_KEY_LENGTH) return false;
  return timingSafeEqual(await derive(password, Buffer.from(saltB64, 'base64')), expected);
}

/** A fresh password for `device` and the hash to store for it. */
export async function issueDeviceCredentials(device: string): Promise<{ credentials: DeviceCredentials; credentialHash: string }> {
  const password = newDevicePassword();
  return { credentials: { username: device, password }, credentialHash: await hashDevicePassword(password) };
}
