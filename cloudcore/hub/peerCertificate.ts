import { X509Certificate } from 'node:crypto';
import type { TLSSocket } from 'node:tls';
import { NODE_CERT_ORG, normalizeSerial, subjectAttribute } from '../../protocol/index.js';
import type { CertificateAuthority } from '../pki/certificateAuthority.js';

/**
 * Who a TLS client is, from the certificate it presented: the node named by a certificate this
 * cloud's CA signed for a node. The handshake asks for a client certificate without requiring
 * one (see ServerTls), so every check is made here, each refusal with its reason for the log.
 * Expiry is reported, not refused: the renew route accepts an expired certificate within the
 * grace window, every other route refuses it.
 */

export type PeerCertificate =
  | { ok: true; node: string; serial: string; notAfter: Date; expired: boolean }
  | { ok: false; reason: string };

export function nodeFromPeerCertificate(socket: TLSSocket, ca: CertificateAuthority, now = new Date()): PeerCertificate {
  const peer = socket.getPeerCertificate(false);
  if (!peer || !peer.raw) return { ok: false, reason: 'no client certificate: a node links with the certificate it got at join' };
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(peer.raw);
  } catch (err) {
    return { ok: false, reason: `client certificate cannot be read: ${(err as Error).message}` };
  }
  if (!ca.issued(cert)) {
    return { ok: false, reason: `client certificate was not issued by this cloud's CA (issuer "${oneLine(cert.issuer)}")` };
  }
  const subject = subjectFields(cert.subject);
  if (subject.O !== NODE_CERT_ORG || subject.CN === undefined) {
    return { ok: false, reason: `client certificate "${oneLine(cert.subject)}" is not a node certificate (O=${NODE_CERT_ORG})` };
  }
  if (Date.parse(cert.validFrom) > now.getTime()) return { ok: false, reason: `client certificate is not valid before ${cert.validFrom}` };
  const notAfter = new Date(cert.validTo);
  return { ok: true, node: subject.CN, serial: normalizeSerial(cert.serialNumber), notAfter, expired: notAfter.getTime() <= now.getTime() };
}

/** CN and O when each appears once; a repeated field reads as not one value. */
function subjectFields(subject: string): { CN?: string; O?: string } {
  const out: { CN?: string; O?: string } = {};
  const [cn, ...moreCn] = subjectAttribute(subject, 'CN');
  const [o, ...moreO] = subjectAttribute(subject, 'O');
  if (cn !== undefined && moreCn.length === 0) out.CN = cn;
  if (o !== undefined && moreO.length === 0) out.O = o;
  return out;
}

function oneLine(name: string): string {
  return name.split('\n').join(', ');
}
