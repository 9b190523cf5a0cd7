import { randomBytes } from 'node:crypto';
import {
  chmodSync, closeSync, existsSync, fsyncSync, lstatSync, mkdirSync, openSync, readdirSync, readFileSync, readlinkSync, renameSync,
  rmSync, symlinkSync, unlinkSync, writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { certificateMatchesKey } from './certificateCheck.js';

/**
 * The node's identity on disk, committed so that a crash at any point leaves either the old
 * complete identity or the new one:
 *
 *   <dataDir>/pki/            0700
 *     g-<time>-<rand>/        one generation: node.key (0600), node.crt, ca-bundle.crt, identity.json
 *     current -> g-…          the committed generation: a symlink replaced by rename(2), atomic
 *     node.key, node.crt, ca-bundle.crt -> current/…   stable paths for operators and openssl
 *
 * A new generation is written and fsynced whole, then `current` is swapped; older generations
 * (and a half-written one a crash left) are deleted after. Bearer mode (a cloud on plain HTTP)
 * keeps today's `<dataDir>/node.credential` (0600), replaced by rename.
 */

export interface CertificateIdentity {
  mode: 'certificate';
  keyPem: string;
  certPem: string;
  caBundle: string;
  /** SHA-256 of the join token this identity descends from: a different token given at start means "join again". */
  joinTokenSha256: string | null;
}

export interface BearerIdentity {
  mode: 'bearer';
  credential: string;
  /** When the cloud said the credential expires; null from a cloudcore that predates expiry. */
  expiresAt: string | null;
  /** When this node received it (its life's start for the renewal time). */
  issuedAt: string;
  joinTokenSha256: string | null;
}

export type StoredIdentity = CertificateIdentity | BearerIdentity;

const FILES = { key: 'node.key', cert: 'node.crt', bundle: 'ca-bundle.crt', meta: 'identity.json' } as const;
const GENERATION = /^g-[0-9a-z]+-[0-9a-f]{8}$/;
const IdentityMetaSchema = z.object({ joinTokenSha256: z.string().regex(/^[0-9a-f]{64}$/).nullable() });

export function pkiDir(dataDir: string): string { return join(dataDir, 'pki'); }
export function credentialPath(dataDir: string): string { return join(dataDir, 'node.credential'); }

function fsyncPath(path: string): void {
  const fd = openSync(path, 'r');
  try { fsyncSync(fd); } finally { closeSync(fd); }
}

function writeDurably(path: string, text: string, mode: number): void {
  writeFileSync(path, text, { mode });
  chmodSync(path, mode); // an existing file keeps its mode through writeFileSync
  fsyncPath(path);
}

/** The generation `current` points at, or null (never committed). */
function currentGeneration(dir: string): string | null {
  let target: string;
  try { target = readlinkSync(join(dir, 'current')); } catch { return null; }
  if (!GENERATION.test(target)) throw new Error(`${join(dir, 'current')} points at ${target}, which is not an identity generation; move ${dir} away and join again`);
  return target;
}

/** Replaces (or makes) the symlink `path` -> `target` atomically. */
function swapLink(dir: string, name: string, target: string): void {
  const tmp = join(dir, `${name}.tmp-${process.pid}`);
  rmSync(tmp, { force: true });
  symlinkSync(target, tmp);
  renameSync(tmp, join(dir, name));
}

/** Deletes every generation but the committed one, and leftovers of an interrupted swap. */
function sweep(dir: string, keep: string | null): void {
  if (!existsSync(dir)) return;
  for (const entry of readdirSync(dir)) {
    if ((GENERATION.test(entry) && entry !== keep) || /\.tmp-\d+$/.test(entry)) rmSync(join(dir, entry), { recursive: true, force: true });
  }
}

function readCertificateIdentity(dataDir: string): CertificateIdentity | null {
  const dir = pkiDir(dataDir);
  const generation = currentGeneration(dir);
  sweep(dir, generation);
  if (generation === null) return null;
  const at = (file: string) => join(dir, generation, file);
  const read = (file: string) => {
    try { return readFileSync(at(file), 'utf8'); } catch (err) { throw new Error(`the node identity in ${dir} is incomplete: cannot read ${at(file)}: ${(err as Error).message}`); }
  };
  const keyPem = read(FILES.key);
  const certPem = read(FILES.cert);
  const caBundle = read(FILES.bundle);
  let meta: z.infer<typeof IdentityMetaSchema>;
  try {
    meta = IdentityMetaSchema.parse(JSON.parse(read(FILES.meta)));
  } catch (err) {
    throw new Error(`the node identity in ${dir} is unreadable: ${at(FILES.meta)}: ${(err as Error).message}`);
  }
  try {
    if (!certificateMatchesKey(certPem, keyPem)) throw new Error('node.crt does not carry the public half of node.key');
  } catch (err) {
    throw new Error(`the node identity in ${join(dir, generation)} is unusable: ${(err as Error).message}`);
  }
  return { mode: 'certificate', keyPem, certPem, caBundle, joinTokenSha256: meta.joinTokenSha256 };
}

/**
 * node.credential: the credential on the first line (what every edgecore wrote), then
 * `expires-at`, `issued-at` and `join-token-sha256` lines (absent in older files).
 */
export function parseCredentialFile(text: string, fileMtime: Date): BearerIdentity | null {
  const [first, ...rest] = text.split('\n');
  const credential = (first ?? '').trim();
  if (credential === '') return null;
  const field = (name: string) => rest.find((l) => l.startsWith(`${name} `))?.slice(name.length + 1).trim();
  const expiresAt = field('expires-at');
  const issuedAt = field('issued-at');
  const tokenHash = field('join-token-sha256');
  const validDate = (v: string | undefined) => (v !== undefined && !Number.isNaN(Date.parse(v)) ? v : null);
  return {
    mode: 'bearer', credential,
    expiresAt: validDate(expiresAt),
    issuedAt: validDate(issuedAt) ?? fileMtime.toISOString(),
    joinTokenSha256: tokenHash !== undefined && /^[0-9a-f]{64}$/.test(tokenHash) ? tokenHash : null,
  };
}

export function formatCredentialFile(id: BearerIdentity): string {
  return [
    id.credential,
    ...(id.expiresAt !== null ? [`expires-at ${id.expiresAt}`] : []),
    `issued-at ${id.issuedAt}`,
    ...(id.joinTokenSha256 !== null ? [`join-token-sha256 ${id.joinTokenSha256}`] : []),
  ].join('\n') + '\n';
}

/**
 * The committed identity: the certificate one if there is one, else the bearer credential, else
 * null. Throws with a message naming the file when what is there cannot be used.
 */
export function loadIdentity(dataDir: string): StoredIdentity | null {
  const certificate = readCertificateIdentity(dataDir);
  if (certificate) return certificate;
  const path = credentialPath(dataDir);
  if (!existsSync(path)) return null;
  return parseCredentialFile(readFileSync(path, 'utf8'), lstatSync(path).mtime);
}

export function commitCertificateIdentity(dataDir: string, id: CertificateIdentity): void {
  const dir = pkiDir(dataDir);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  chmodSync(dir, 0o700);
  const before = currentGeneration(dir);
  const generation = `g-${Date.now().toString(36)}-${randomBytes(4).toString('hex')}`;
  const genDir = join(dir, generation);
  mkdirSync(genDir, { mode: 0o700 });
  // The key first and 0600 from its first byte: it never exists with a wider mode.
  writeDurably(join(genDir, FILES.key), id.keyPem, 0o600);
  writeDurably(join(genDir, FILES.cert), id.certPem, 0o644);
  writeDurably(join(genDir, FILES.bundle), id.caBundle, 0o644);
  writeDurably(join(genDir, FILES.meta), JSON.stringify({ joinTokenSha256: id.joinTokenSha256 }) + '\n', 0o600);
  fsyncPath(genDir);
  // The commit point.
  swapLink(dir, 'current', generation);
  fsyncPath(dir);
  for (const file of [FILES.key, FILES.cert, FILES.bundle]) {
    if (!isLinkTo(join(dir, file), join('current', file))) swapLink(dir, file, join('current', file));
  }
  sweep(dir, generation);
  if (before !== generation) rmSync(credentialPath(dataDir), { force: true });
}

function isLinkTo(path: string, target: string): boolean {
  try { return readlinkSync(path) === target; } catch { return false; }
}

export function commitBearerIdentity(dataDir: string, id: BearerIdentity): void {
  const path = credentialPath(dataDir);
  const tmp = `${path}.tmp-${process.pid}`;
  writeDurably(tmp, formatCredentialFile(id), 0o600);
  renameSync(tmp, path);
  fsyncPath(dataDir);
  // A bearer join replaces a certificate identity: the credential is committed, so drop `current`.
  const dir = pkiDir(dataDir);
  if (currentGeneration(dir) !== null) {
    unlinkSync(join(dir, 'current'));
    sweep(dir, null);
  }
}
