import { createHash, webcrypto, X509Certificate } from 'node:crypto';

/**
 * The identity contract shared by cloudcore (which signs), edgecore (a node asks for its
 * certificate) and edgectl (a device's certificate): what a pinned join token looks like, how
 * the pin is computed, and what a certificate request must contain. Keys are ECDSA P-256, made
 * where they are used: a private key never crosses the wire.
 *
 * The X.509 work is @peculiar/x509 (CSR and certificate builders over WebCrypto); node:crypto's
 * own X509Certificate reads and verifies certificates. Both load on first use, so a binary that
 * never touches a certificate does not pay for them at start.
 */

/** Organization (O) of every node certificate: a certificate without it is no node's. */
export const NODE_CERT_ORG = 'edgefleet-node';
/** Organization (O) of every device certificate: a device certificate never opens a node link. */
export const DEVICE_CERT_ORG = 'edgefleet-device';

/** The largest certificate request accepted, as PEM text (a P-256 CSR is ~500 bytes). */
export const MAX_CSR_PEM_BYTES = 4096;

const KEY_ALGORITHM = { name: 'ECDSA', namedCurve: 'P-256' } as const;
const SIGNING_ALGORITHM = { name: 'ECDSA', hash: 'SHA-256' } as const;

/**
 * A join token is `EF1-<pin>-<id>.<secret>`: pin is the SHA-256 (hex) of the cloud's CA bundle
 * as `GET /hub/v1/ca` serves it (K3s's `K10<hash>::` idea). An edge checks the bundle against
 * the pin before it sends the secret, so a cloudcore impostor never sees one. An unpinned
 * token (`<id>.<secret>`) comes from a cloudcore serving plain HTTP, or an older one.
 */
export interface ParsedJoinToken { pin: string | null; id: string; secret: string }

const PINNED_TOKEN = /^EF1-([0-9a-f]{64})-([0-9a-f]{1,64})\.([0-9a-f]{1,128})$/;
const UNPINNED_TOKEN = /^([0-9a-f]{1,64})\.([0-9a-f]{1,128})$/;

export function parseJoinToken(token: string): ParsedJoinToken | undefined {
  const pinned = PINNED_TOKEN.exec(token);
  if (pinned) return { pin: pinned[1]!, id: pinned[2]!, secret: pinned[3]! };
  const plain = UNPINNED_TOKEN.exec(token);
  return plain ? { pin: null, id: plain[1]!, secret: plain[2]! } : undefined;
}

export function formatJoinToken(pin: string | null, id: string, secret: string): string {
  return pin === null ? `${id}.${secret}` : `EF1-${pin}-${id}.${secret}`;
}

/**
 * A serial as the allow-lists keep it: lower-case hex without leading zeros (node:crypto prints
 * serials upper case and may keep a leading zero; openssl prints them its own way).
 */
export function normalizeSerial(serialHex: string): string {
  return serialHex.toLowerCase().replace(/^0+(?=.)/, '');
}

/** The values of one attribute of a distinguished name as node:crypto prints it (`CN=edge-1\nO=edgefleet-node`). */
export function subjectAttribute(subject: string, key: string): string[] {
  return subject.split('\n').filter((line) => line.startsWith(`${key}=`)).map((line) => line.slice(key.length + 1));
}

/** The certificates of a CA bundle, parsed once (a block that does not parse is left out). */
export function bundleCertificates(bundlePem: string): X509Certificate[] {
  return pemBlocks(bundlePem).flatMap((pem) => {
    try {
      return [new X509Certificate(pem)];
    } catch {
      return [];
    }
  });
}

/** True when one of `cas` issued `cert` and its signature verifies with that CA's key. */
export function issuedByOneOf(cert: X509Certificate, cas: readonly X509Certificate[]): boolean {
  return cas.some((ca) => cert.checkIssued(ca) && cert.verify(ca.publicKey));
}

/** The pin of a CA bundle: SHA-256 over its bytes exactly as served (hex). */
export function caBundlePin(bundlePem: string): string {
  return createHash('sha256').update(bundlePem, 'utf8').digest('hex');
}

const PEM_BLOCK = /-----BEGIN ([A-Z0-9 ]+)-----\r?\n[\s\S]*?-----END \1-----/g;

/** The PEM blocks of one kind in a text (a bundle, a chain file, a key-and-certificate file). */
export function pemBlocks(text: string, label = 'CERTIFICATE'): string[] {
  return [...text.matchAll(PEM_BLOCK)].filter((m) => m[1] === label).map((m) => `${m[0]}\n`);
}

type X509Module = typeof import('@peculiar/x509');
let x509Module: Promise<X509Module> | undefined;

/** @peculiar/x509 on node:crypto's WebCrypto (its DI container needs reflect-metadata first). */
export function loadX509(): Promise<X509Module> {
  x509Module ??= (async () => {
    await import('reflect-metadata');
    const x509 = await import('@peculiar/x509');
    x509.cryptoProvider.set(webcrypto as unknown as Crypto);
    return x509;
  })();
  return x509Module;
}

/** A fresh P-256 key pair as WebCrypto keys (extractable: the private half is written to a 0600 file). */
export async function newKeyPair(): Promise<CryptoKeyPair> {
  return (await webcrypto.subtle.generateKey(KEY_ALGORITHM, true, ['sign', 'verify'])) as CryptoKeyPair;
}

/** PKCS#8 PEM of a private key, the form node:tls reads. */
export async function privateKeyPem(key: CryptoKey): Promise<string> {
  const der = Buffer.from(await webcrypto.subtle.exportKey('pkcs8', key));
  const body = der.toString('base64').replace(/.{64}/g, '$&\n').replace(/\n$/, '');
  return `-----BEGIN PRIVATE KEY-----\n${body}\n-----END PRIVATE KEY-----\n`;
}

/**
 * A new key pair and a CSR for `commonName` in `organization`: what a node sends at join and at
 * renewal, and what edgectl sends for a device. The subject is all the cloud reads from it; the
 * cloud sets every extension itself.
 */
export async function newKeyAndCsr(commonName: string, organization: string): Promise<{ keyPem: string; csrPem: string }> {
  const x509 = await loadX509();
  const keys = await newKeyPair();
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({
    name: [{ CN: [commonName] }, { O: [organization] }],
    keys,
    signingAlgorithm: SIGNING_ALGORITHM,
  });
  return { keyPem: await privateKeyPem(keys.privateKey), csrPem: `${csr.toString('pem')}\n` };
}

export { KEY_ALGORITHM, SIGNING_ALGORITHM };
