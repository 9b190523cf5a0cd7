import { createPrivateKey, randomBytes, webcrypto, X509Certificate } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from 'pino';
import {
  bundleCertificates, caBundlePin, DEVICE_CERT_ORG, issuedByOneOf, loadX509, NODE_CERT_ORG, newKeyPair, pemBlocks, privateKeyPem, SIGNING_ALGORITHM,
} from '../../protocol/index.js';
import { CA_LIFETIME_SECONDS, validityFrom } from '../../protocol/certificatePolicy.js';
import { parseCertificateRequest, type CertificateRequestProblem, type CheckedRequest } from './certificateRequest.js';

/**
 * The cloud's certificate authority: it signs node client certificates, device certificates and
 * cloudcore's own server certificate. Made on first start (`<dataDir>/pki/ca.crt`, `ca.key`
 * 0600 in a 0700 dir) or taken from the operator (`--ca-cert`/`--ca-key`). Its key never
 * leaves the cloud side; edges receive only the bundle of certificates they must trust.
 */

export interface IssuedCertificate { pem: string; serial: string; notBefore: string; notAfter: string }

export class CertificateRequestError extends Error {
  constructor(readonly problem: CertificateRequestProblem, message: string) { super(message); }
}

export interface CertificateAuthorityFiles {
  dataDir: string;
  caCert?: string | undefined;
  caKey?: string | undefined;
  /** Further CA certificates trusted for client certificates and served in the bundle (a CA rotation's old CA). */
  caExtraTrust?: string | undefined;
}

interface SigningKey { key: CryptoKey; algorithm: Algorithm | EcdsaParams }

export class CertificateAuthority {
  /** What `GET /hub/v1/ca` serves and join tokens pin: this CA, then any extra trusted CAs. */
  readonly bundlePem: string;
  readonly pin: string;

  private constructor(readonly certPem: string, private readonly signing: SigningKey, extraTrust: string[], readonly origin: 'created' | 'loaded' | 'operator') {
    this.bundlePem = [certPem, ...extraTrust].join('');
    this.pin = caBundlePin(this.bundlePem);
    this.trusted = pemBlocks(this.bundlePem);
    this.trustedCertificates = bundleCertificates(this.bundlePem);
  }

  /** Every CA certificate in the bundle (the TLS server's `ca` for client certificates). */
  readonly trusted: string[];
  /** The same, parsed once: every link's client certificate is checked against them. */
  private readonly trustedCertificates: X509Certificate[];

  static async open(files: CertificateAuthorityFiles, log: Logger): Promise<CertificateAuthority> {
    const extra = files.caExtraTrust === undefined ? [] : readCaCertificates(files.caExtraTrust, 'caExtraTrust');
    if ((files.caCert === undefined) !== (files.caKey === undefined)) throw new Error('caCert and caKey must be given together');
    if (files.caCert !== undefined && files.caKey !== undefined) {
      const certPem = readPem(files.caCert, 'caCert');
      const keyPem = readPem(files.caKey, 'caKey');
      checkCaPair(certPem, keyPem, `caCert ${files.caCert}`);
      return new CertificateAuthority(certPem, await importSigningKey(keyPem), extra, 'operator');
    }
    const dir = join(files.dataDir, 'pki');
    const certPath = join(dir, 'ca.crt');
    const keyPath = join(dir, 'ca.key');
    if (existsSync(certPath) && existsSync(keyPath)) {
      const certPem = readPem(certPath, 'CA certificate');
      const keyPem = readPem(keyPath, 'CA key');
      checkCaPair(certPem, keyPem, certPath);
      return new CertificateAuthority(certPem, await importSigningKey(keyPem), extra, 'loaded');
    }
    if (existsSync(certPath) !== existsSync(keyPath)) {
      throw new Error(`${dir} holds only one of ca.crt and ca.key: restore the missing one from a backup, or move both away to make a new CA (every node then needs a new join token)`);
    }
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const { certPem, keyPem } = await createCa();
    // Key first, each written whole and renamed in: a crash leaves no half CA.
    writeAtomically(keyPath, keyPem, 0o600);
    writeAtomically(certPath, certPem, 0o644);
    log.info({ path: certPath }, 'created the cloud CA (its key stays in this data dir, mode 0600)');
    return new CertificateAuthority(certPem, await importSigningKey(keyPem), extra, 'created');
  }

  /** True when this CA (or an extra trusted one) issued and signed `cert`; expiry is the caller's to judge. */
  issued(cert: X509Certificate): boolean {
    return issuedByOneOf(cert, this.trustedCertificates);
  }

  /**
   * Signs a node's CSR: CN and O must name the node; the cloud sets every extension. A request
   * the caller already checked (the join checks it before spending the token) is not checked twice.
   */
  async signNode(node: string, csr: string | CheckedRequest, lifetimeSeconds: number, now = new Date()): Promise<IssuedCertificate> {
    return this.signRequest(csr, node, NODE_CERT_ORG, lifetimeSeconds, now, 'client');
  }

  /** Signs a device's CSR: CN is the device, O marks it a device (never a node). */
  async signDevice(device: string, csrPem: string, lifetimeSeconds: number, now = new Date()): Promise<IssuedCertificate> {
    return this.signRequest(csrPem, device, DEVICE_CERT_ORG, lifetimeSeconds, now, 'client');
  }

  /** A server certificate and its key for cloudcore's own names and addresses. */
  async issueServer(names: string[], lifetimeSeconds: number, now = new Date()): Promise<IssuedCertificate & { keyPem: string }> {
    const x509 = await loadX509();
    const keys = await newKeyPair();
    const { notBefore, notAfter } = validityFrom(now, lifetimeSeconds);
    const serial = newSerial();
    const sans = names.map((n) => (isIpAddress(n) ? { type: 'ip' as const, value: n } : { type: 'dns' as const, value: n }));
    const cert = await x509.X509CertificateGenerator.create({
      serialNumber: serial, subject: [{ CN: [names[0] ?? 'cloudcore'] }, { O: ['edgefleet-cloudcore'] }], issuer: new x509.X509Certificate(this.certPem).subject,
      notBefore, notAfter, publicKey: keys.publicKey, signingKey: this.signing.key, signingAlgorithm: this.signing.algorithm,
      extensions: [
        new x509.BasicConstraintsExtension(false, undefined, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment, true),
        new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth]),
        new x509.SubjectAlternativeNameExtension(sans),
        await x509.AuthorityKeyIdentifierExtension.create(new x509.X509Certificate(this.certPem)),
      ],
    });
    return { pem: `${cert.toString('pem')}\n`, keyPem: await privateKeyPem(keys.privateKey), serial, notBefore: notBefore.toISOString(), notAfter: notAfter.toISOString() };
  }

  private async signRequest(csr: string | CheckedRequest, commonName: string, organization: string, lifetimeSeconds: number, now: Date, usage: 'client'): Promise<IssuedCertificate> {
    const x509 = await loadX509();
    const parsed = typeof csr === 'string' ? await parseCertificateRequest(csr, { commonName, organization }) : csr;
    if (!parsed.ok) throw new CertificateRequestError(parsed.problem, parsed.message);
    if (parsed.commonName !== commonName || parsed.organization !== organization) {
      throw new Error(`a certificate request checked for CN=${parsed.commonName}, O=${parsed.organization} cannot be signed for CN=${commonName}, O=${organization}`);
    }
    const { notBefore, notAfter } = validityFrom(now, lifetimeSeconds);
    const serial = newSerial();
    const cert = await x509.X509CertificateGenerator.create({
      serialNumber: serial,
      subject: [{ CN: [commonName] }, { O: [organization] }],
      issuer: new x509.X509Certificate(this.certPem).subject,
      notBefore, notAfter,
      publicKey: parsed.request.publicKey,
      signingKey: this.signing.key,
      signingAlgorithm: this.signing.algorithm,
      extensions: [
        new x509.BasicConstraintsExtension(false, undefined, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
        new x509.ExtendedKeyUsageExtension([usage === 'client' ? x509.ExtendedKeyUsage.clientAuth : x509.ExtendedKeyUsage.serverAuth]),
        new x509.SubjectAlternativeNameExtension([{ type: 'dns', value: commonName }]),
        await x509.AuthorityKeyIdentifierExtension.create(new x509.X509Certificate(this.certPem)),
      ],
    });
    return { pem: `${cert.toString('pem')}\n`, serial, notBefore: notBefore.toISOString(), notAfter: notAfter.toISOString() };
  }
}

/** A positive 128-bit serial, lower-case hex, never with a leading zero (so every reader prints it alike). */
export function newSerial(): string {
  const bytes = randomBytes(16);
  bytes[0] = (bytes[0]! & 0x7f) | 0x10;
  return bytes.toString('hex');
}

async function createCa(): Promise<{ certPem: string; keyPem: string }> {
  const x509 = await loadX509();
  const keys = await newKeyPair();
  const { notBefore, notAfter } = validityFrom(new Date(), CA_LIFETIME_SECONDS);
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: newSerial(),
    // A random suffix tells two clouds' CAs apart in every error that names an issuer.
    name: [{ CN: [`EdgeFleet cloud CA ${randomBytes(4).toString('hex')}`] }, { O: ['edgefleet'] }],
    notBefore, notAfter, keys, signingAlgorithm: SIGNING_ALGORITHM,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  return { certPem: `${cert.toString('pem')}\n`, keyPem: await privateKeyPem(keys.privateKey) };
}

/** The CA key as a WebCrypto signing key: EC P-256/P-384 or RSA, whatever the operator's CA uses. */
async function importSigningKey(keyPem: string): Promise<SigningKey> {
  const key = createPrivateKey(keyPem);
  const der = key.export({ type: 'pkcs8', format: 'der' });
  if (key.asymmetricKeyType === 'ec') {
    const curve = key.asymmetricKeyDetails?.namedCurve;
    const namedCurve = curve === 'prime256v1' ? 'P-256' : curve === 'secp384r1' ? 'P-384' : undefined;
    if (!namedCurve) throw new Error(`the CA key's curve ${String(curve)} is not supported (P-256 or P-384)`);
    const hash = namedCurve === 'P-256' ? 'SHA-256' : 'SHA-384';
    return { key: await webcrypto.subtle.importKey('pkcs8', der, { name: 'ECDSA', namedCurve }, false, ['sign']), algorithm: { name: 'ECDSA', hash } as EcdsaParams };
  }
  if (key.asymmetricKeyType === 'rsa') {
    const algorithm = { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' };
    return { key: await webcrypto.subtle.importKey('pkcs8', der, algorithm, false, ['sign']), algorithm };
  }
  throw new Error(`the CA key's type ${String(key.asymmetricKeyType)} is not supported (EC or RSA)`);
}

function checkCaPair(certPem: string, keyPem: string, where: string): void {
  const cert = new X509Certificate(certPem);
  if (!cert.ca) throw new Error(`${where} is not a CA certificate (basicConstraints CA:TRUE is missing)`);
  if (!cert.checkPrivateKey(createPrivateKey(keyPem))) throw new Error(`${where}: the CA key does not belong to the CA certificate`);
}

function readPem(path: string, what: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    throw new Error(`cannot read ${what} file ${path}: ${(err as Error).message}`);
  }
}

function readCaCertificates(path: string, what: string): string[] {
  const blocks = pemBlocks(readPem(path, what));
  if (blocks.length === 0) throw new Error(`${what} file ${path} holds no PEM certificate`);
  for (const pem of blocks) if (!new X509Certificate(pem).ca) throw new Error(`${what} file ${path} holds a certificate that is not a CA`);
  return blocks;
}

function writeAtomically(path: string, text: string, mode: number): void {
  const tmp = `${path}.tmp-${process.pid}`;
  writeFileSync(tmp, text, { mode });
  renameSync(tmp, path);
}

function isIpAddress(name: string): boolean {
  return /^\d{1,3}(\.\d{1,3}){3}$/.test(name) || name.includes(':');
}
