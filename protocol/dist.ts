import { createPublicKey, verify, type KeyObject } from 'node:crypto';
import { z } from 'zod';

/**
 * The release contract cloudcore's `/dist` serves, the installer downloads and an upgrading
 * edge checks (issue 22): one directory per version holding one tarball per architecture,
 * `SHA256SUMS` (sha256sum format), `SHA256SUMS.sig` (base64 Ed25519 signature over the exact
 * bytes of SHA256SUMS) and `release-key.pub` (PEM SPKI). Pure: callers do the file I/O.
 */

export const EDGE_ARCHES = ['x64', 'arm64', 'armv7'] as const;
export const EdgeArchSchema = z.enum(EDGE_ARCHES);
export type EdgeArch = z.infer<typeof EdgeArchSchema>;

/** `uname -m` → artefact arch (armv8l: a 32-bit userland on a 64-bit core runs the armv7 build). */
export const UNAME_ARCH: Readonly<Record<string, EdgeArch>> = {
  x86_64: 'x64', aarch64: 'arm64', arm64: 'arm64', armv7l: 'armv7', armv8l: 'armv7',
};

/** A node's os.arch() (what it reports in its hello) → the artefact arch it runs. */
const NODE_ARCH: Readonly<Record<string, EdgeArch>> = { x64: 'x64', arm64: 'arm64', arm: 'armv7' };

export function edgeArchOfNode(nodeArch: string): EdgeArch | undefined {
  return Object.hasOwn(NODE_ARCH, nodeArch) ? NODE_ARCH[nodeArch] : undefined;
}

/**
 * A release version is one path segment: letters, digits and `.+_-`, starting with a letter or
 * digit, never `..` (it names a directory on the cloud and on every node).
 */
export const ReleaseVersionSchema = z.string().regex(/^[0-9A-Za-z][0-9A-Za-z.+_-]{0,63}$/, 'a release version is letters, digits and . + _ - (at most 64), e.g. 1.4.0')
  .refine((v) => !v.includes('..'), 'a release version never contains ".."');

export const SUMS_FILE = 'SHA256SUMS';
export const SUMS_SIG_FILE = 'SHA256SUMS.sig';
export const RELEASE_KEY_FILE = 'release-key.pub';
/** Files of a release directory served besides the tarballs SHA256SUMS lists. */
export const RELEASE_META_FILES: readonly string[] = [SUMS_FILE, SUMS_SIG_FILE, RELEASE_KEY_FILE];

export function artefactName(version: string, arch: EdgeArch): string {
  return `edgefleet-edge-${version}-linux-${arch}.tar.gz`;
}

const ARTEFACT_NAME = /^edgefleet-edge-([0-9A-Za-z.+_-]+)-linux-(x64|arm64|armv7)\.tar\.gz$/;

/** The version and arch a tarball's name carries, or undefined for any other name. */
export function parseArtefactName(name: string): { version: string; arch: EdgeArch } | undefined {
  const m = ARTEFACT_NAME.exec(name);
  return m ? { version: m[1]!, arch: m[2] as EdgeArch } : undefined;
}

export const Sha256Schema = z.string().regex(/^[0-9a-f]{64}$/, 'a SHA-256 is 64 lower-case hex digits');

export const DistFileSchema = z.object({ name: z.string().min(1), arch: EdgeArchSchema, size: z.number().int().nonnegative(), sha256: Sha256Schema });
export type DistFile = z.infer<typeof DistFileSchema>;
export const DistVersionSchema = z.object({ version: ReleaseVersionSchema, files: z.array(DistFileSchema) });
export type DistVersion = z.infer<typeof DistVersionSchema>;
/** `GET /dist/index.json`: the versions whose signature verified, newest first. */
export const DistIndexSchema = z.object({ versions: z.array(DistVersionSchema) });
export type DistIndex = z.infer<typeof DistIndexSchema>;

export const DIST_PATHS = { index: '/dist/index.json', installer: '/install.sh' } as const;
export function distFilePath(version: string, file: string): string {
  return `/dist/${encodeURIComponent(version)}/${encodeURIComponent(file)}`;
}

export class ReleaseError extends Error {}

/**
 * Parses SHA256SUMS of release `version`: every line `<64 hex>  <artefact name>` (a `*` before the
 * name, sha256sum's binary mark, is accepted), each name a tarball of this version, one per arch.
 * Anything else refuses the whole file: a release is served exactly as signed or not at all.
 */
export function parseSha256Sums(text: string, version: string): Map<string, { arch: EdgeArch; sha256: string }> {
  const entries = new Map<string, { arch: EdgeArch; sha256: string }>();
  const lines = text.split('\n');
  if (lines.at(-1) === '') lines.pop();
  for (const [i, line] of lines.entries()) {
    const m = /^([0-9a-f]{64}) [ *](\S+)$/.exec(line);
    if (!m) throw new ReleaseError(`${SUMS_FILE} line ${i + 1} is not "<sha256>  <file>"`);
    const name = m[2]!;
    const parsed = parseArtefactName(name);
    if (!parsed || parsed.version !== version) throw new ReleaseError(`${SUMS_FILE} line ${i + 1} names "${name}", not a tarball of version ${version}`);
    if ([...entries.values()].some((e) => e.arch === parsed.arch)) throw new ReleaseError(`${SUMS_FILE} lists arch ${parsed.arch} twice`);
    entries.set(name, { arch: parsed.arch, sha256: m[1]! });
  }
  if (entries.size === 0) throw new ReleaseError(`${SUMS_FILE} lists no tarball`);
  return entries;
}

/** The release public key (PEM SPKI), refused unless it is an Ed25519 key. */
export function parseReleaseKey(pem: string): KeyObject {
  let key: KeyObject;
  try {
    key = createPublicKey(pem);
  } catch (err) {
    throw new ReleaseError(`release public key is not a PEM public key: ${(err as Error).message}`);
  }
  if (key.asymmetricKeyType !== 'ed25519') throw new ReleaseError(`release public key is ${key.asymmetricKeyType ?? 'unknown'}, not Ed25519`);
  return key;
}

/** True when `sigText` (SHA256SUMS.sig: one line of base64) is the release key's signature over `sums`. */
export function verifyReleaseSignature(sums: Buffer, sigText: string, key: KeyObject): boolean {
  const b64 = sigText.trim();
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(b64)) return false;
  const sig = Buffer.from(b64, 'base64');
  if (sig.length !== 64) return false;
  return verify(null, sums, key, sig);
}
