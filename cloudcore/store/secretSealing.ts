import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { z } from 'zod';
import type { Kind } from '../../protocol/index.js';

/**
 * Secret values sealed at rest: the store keeps a Secret's body as AES-256-GCM ciphertext under
 * a key that lives outside the database (a key file, as Kubernetes' EncryptionConfiguration
 * does), so a copied `cloudcore.db` leaks nothing. Other kinds are stored as they are: they hold
 * no secret values (tokens and credentials are stored as hashes).
 *
 * A sealed body reads `ef-sealed:v1:<key id>:<base64url(iv | tag | ciphertext)>`. The object's
 * kind and name are the GCM additional data, so a sealed body copied onto another row does not
 * open there.
 */

export const SEALED_KINDS: ReadonlySet<Kind> = new Set<Kind>(['Secret']);

const PREFIX = 'ef-sealed:v1:';
const IV_BYTES = 12;
const TAG_BYTES = 16;
const KEY_BYTES = 32;

export interface SealingKey { id: string; key: Buffer }

const keyIdSchema = z.string().regex(/^[A-Za-z0-9_-]{1,40}$/, 'a key id is 1–40 letters, digits, "-" or "_"');
const keyLineSchema = z.object({
  id: keyIdSchema,
  key: z.string().transform((b64, ctx) => {
    const key = Buffer.from(b64, 'base64');
    if (key.length !== KEY_BYTES || key.toString('base64') !== b64) {
      ctx.addIssue({ code: 'custom', message: `the key must be ${KEY_BYTES} bytes in base64 (openssl rand -base64 32)` });
      return z.NEVER;
    }
    return key;
  }),
});

/**
 * Reads a key file: one `<id>:<base64 key>` per line, `#` comments and blank lines ignored. The
 * first key seals; every key opens, so a key is rotated by putting a new one first and keeping the
 * old one below until cloudcore has restarted once (it reseals everything under the first key).
 */
export function parseKeyFile(text: string, source: string): SealingKey[] {
  const keys: SealingKey[] = [];
  text.split('\n').forEach((raw, index) => {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) return;
    const colon = line.indexOf(':');
    const parsed = keyLineSchema.safeParse(colon < 0 ? { id: line, key: '' } : { id: line.slice(0, colon), key: line.slice(colon + 1) });
    if (!parsed.success) {
      const issue = parsed.error.issues[0]!;
      throw new Error(`${source} line ${index + 1}: ${colon < 0 ? 'expected "<id>:<base64 key>"' : issue.message}`);
    }
    if (keys.some((k) => k.id === parsed.data.id)) throw new Error(`${source} line ${index + 1}: key id ${parsed.data.id} appears twice`);
    keys.push(parsed.data);
  });
  if (keys.length === 0) throw new Error(`${source} holds no key`);
  return keys;
}

/** A new key file's text: one random key, named after the day it was made. */
export function newKeyFileText(now = new Date()): string {
  const id = `k${now.toISOString().slice(0, 10).replaceAll('-', '')}-${randomBytes(3).toString('hex')}`;
  return `# EdgeFleet secret encryption keys: the first seals, all open. Keep a copy apart from backups of cloudcore.db.\n`
    + `${id}:${randomBytes(KEY_BYTES).toString('base64')}\n`;
}

export type OpenedBody = { body: string } | { reason: string };

export class SecretSealer {
  private readonly byId: ReadonlyMap<string, Buffer>;

  constructor(private readonly keys: readonly SealingKey[]) {
    if (keys.length === 0) throw new Error('a sealer needs at least one key');
    this.byId = new Map(keys.map((k) => [k.id, k.key]));
  }

  /** The id of the key new bodies are sealed with. */
  get primaryKeyId(): string {
    return this.keys[0]!.id;
  }

  /** The body as it is stored: sealed for a sealed kind, else unchanged. */
  seal(kind: Kind, name: string, body: string): string {
    if (!SEALED_KINDS.has(kind)) return body;
    const iv = randomBytes(IV_BYTES);
    const cipher = createCipheriv('aes-256-gcm', this.keys[0]!.key, iv);
    cipher.setAAD(additionalData(kind, name));
    const sealed = Buffer.concat([cipher.update(body, 'utf8'), cipher.final()]);
    return `${PREFIX}${this.primaryKeyId}:${Buffer.concat([iv, cipher.getAuthTag(), sealed]).toString('base64url')}`;
  }

  /** Whether a stored body should be sealed again: stored plain, or under a key that is no longer first. */
  needsReseal(kind: Kind, stored: string): boolean {
    if (!SEALED_KINDS.has(kind)) return false;
    const keyId = sealedKeyId(stored);
    return keyId !== this.primaryKeyId && (keyId === undefined || this.byId.has(keyId));
  }

  open(kind: Kind, name: string, stored: string): OpenedBody {
    return openStoredBody(kind, name, stored, this.byId);
  }
}

/** Opens a stored body with the keys given (none: a store opened without a key file). Plain bodies pass through. */
export function openStoredBody(kind: Kind, name: string, stored: string, keys: ReadonlyMap<string, Buffer>): OpenedBody {
  if (!stored.startsWith(PREFIX)) return { body: stored };
  const keyId = sealedKeyId(stored)!;
  const key = keys.get(keyId);
  if (!key) return { reason: `its value is sealed with key ${JSON.stringify(keyId)}, which is not in the secret key file` };
  const raw = Buffer.from(stored.slice(PREFIX.length + keyId.length + 1), 'base64url');
  if (raw.length < IV_BYTES + TAG_BYTES) return { reason: 'its sealed value is truncated' };
  try {
    const decipher = createDecipheriv('aes-256-gcm', key, raw.subarray(0, IV_BYTES));
    decipher.setAAD(additionalData(kind, name));
    decipher.setAuthTag(raw.subarray(IV_BYTES, IV_BYTES + TAG_BYTES));
    return { body: Buffer.concat([decipher.update(raw.subarray(IV_BYTES + TAG_BYTES)), decipher.final()]).toString('utf8') };
  } catch {
    return { reason: `its sealed value does not open with key ${JSON.stringify(keyId)} (altered, or sealed for another object)` };
  }
}

function sealedKeyId(stored: string): string | undefined {
  if (!stored.startsWith(PREFIX)) return undefined;
  const end = stored.indexOf(':', PREFIX.length);
  return end < 0 ? '' : stored.slice(PREFIX.length, end);
}

function additionalData(kind: Kind, name: string): Buffer {
  return Buffer.from(`${kind}/${name}`, 'utf8');
}
