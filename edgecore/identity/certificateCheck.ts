import { createPrivateKey, X509Certificate } from 'node:crypto';
import { bundleCertificates, issuedByOneOf, NODE_CERT_ORG, normalizeSerial, pemBlocks, subjectAttribute } from '../../protocol/index.js';

/**
 * Checks on a node certificate the cloud answered, before anything is committed: it names this
 * node, its public key is the key made here (so the cloud signed our CSR, not someone else's),
 * and it chains to the CA bundle the node will trust. Pure functions over PEM text.
 */

export interface CertificateFacts {
  /** Lower-case hex without leading zeros: the form the cloud stores. */
  serial: string;
  notBefore: Date;
  notAfter: Date;
  subject: { commonName: string | undefined; organization: string | undefined };
}

const subjectField = (subject: string, key: string): string | undefined => subjectAttribute(subject, key)[0];

export function certificateFacts(certPem: string): CertificateFacts {
  const cert = new X509Certificate(certPem);
  return {
    serial: normalizeSerial(cert.serialNumber),
    notBefore: new Date(cert.validFrom),
    notAfter: new Date(cert.validTo),
    subject: { commonName: subjectField(cert.subject, 'CN'), organization: subjectField(cert.subject, 'O') },
  };
}

/** True when `certPem` carries the public half of `keyPem`. */
export function certificateMatchesKey(certPem: string, keyPem: string): boolean {
  return new X509Certificate(certPem).checkPrivateKey(createPrivateKey(keyPem));
}

/**
 * Why an issued certificate must not be committed, or null when it may. `now` guards against a
 * certificate already expired (a cloud clock far ahead of ours would make a useless one).
 */
export function issuedCertificateProblem(p: { node: string; certPem: string; keyPem: string; caBundle: string; now: Date }): string | null {
  const blocks = pemBlocks(p.certPem);
  if (blocks.length === 0) return 'the answer holds no PEM certificate';
  if (pemBlocks(p.caBundle).length === 0) return 'the answer\'s CA bundle holds no PEM certificate';
  let facts: CertificateFacts;
  try {
    facts = certificateFacts(blocks[0]!);
  } catch (err) {
    return `the certificate cannot be read: ${(err as Error).message}`;
  }
  if (facts.subject.commonName !== p.node) return `the certificate names ${String(facts.subject.commonName)}, not this node ${p.node}`;
  if (facts.subject.organization !== NODE_CERT_ORG) return `the certificate's organization is ${String(facts.subject.organization)}, not ${NODE_CERT_ORG}`;
  if (!certificateMatchesKey(blocks[0]!, p.keyPem)) return 'the certificate is not for the key this node made (its public key differs)';
  if (!issuedByOneOf(new X509Certificate(blocks[0]!), bundleCertificates(p.caBundle))) return 'the certificate is not signed by a CA in the CA bundle';
  if (facts.notAfter.getTime() <= p.now.getTime()) return `the certificate expired already (${facts.notAfter.toISOString()}): is this node's clock right?`;
  return null;
}
