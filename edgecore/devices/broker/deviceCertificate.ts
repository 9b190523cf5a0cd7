import { X509Certificate } from 'node:crypto';
import type { TLSSocket } from 'node:tls';
import { DEVICE_CERT_ORG, normalizeSerial, subjectAttribute, type Device } from '../../../protocol/index.js';

/**
 * A device's X.509 identity on the broker's TLS listener, beside its password. The listener asks
 * for a client certificate (not requiring one) and has node:tls verify it against the cloud CA
 * bundle the node holds; this decides what a presented certificate proves. Pure: the TLS facts
 * are read off the socket by `presentedCertificate`, the devices come from the hub.
 *
 * A certificate is a device's when it chains to that bundle, is inside its validity, names
 * O=edgefleet-device and CN=<a device of this node>, and its serial is on that Device's
 * `spec.certificates` allow-list (with the entry's notAfter not passed). Anything else is
 * refused with the reason: a node's certificate (O=edgefleet-node) never logs in as a device.
 */

/** What the TLS handshake established about the client's certificate. */
export interface PresentedCertificate {
  certificate: X509Certificate;
  /** node:tls' verdict against the listener's `ca` (chain and validity dates). */
  chainVerified: boolean;
  /** OpenSSL's reason when not verified, e.g. CERT_HAS_EXPIRED, UNABLE_TO_GET_ISSUER_CERT_LOCALLY. */
  chainError?: string | undefined;
}

export type CertificateLogin = { ok: true; device: string; serial: string } | { ok: false; reason: string };

/** The certificate a TLS client presented, or null: none presented, or not a TLS connection. */
export function presentedCertificate(conn: unknown): PresentedCertificate | null {
  const socket = conn as Partial<TLSSocket>;
  if (typeof socket.getPeerX509Certificate !== 'function') return null;
  const certificate = socket.getPeerX509Certificate();
  if (certificate === undefined) return null;
  const error = socket.authorizationError as unknown;
  return {
    certificate,
    chainVerified: socket.authorized === true,
    chainError: error instanceof Error ? error.message : typeof error === 'string' ? error : undefined,
  };
}

/**
 * Decides which device, if any, a presented certificate logs in as. `hasDeviceCa` false: the node
 * has no CA bundle yet, so no certificate can be checked (node:tls would otherwise have used the
 * system's CAs).
 */
export function deviceForCertificate(presented: PresentedCertificate, hasDeviceCa: boolean, deviceNamed: (name: string) => Device | undefined, now: Date): CertificateLogin {
  if (!hasDeviceCa) return { ok: false, reason: 'this node has no CA bundle to check device certificates against yet' };
  const { certificate } = presented;
  if (!presented.chainVerified) return { ok: false, reason: `certificate not issued by the cloud CA: ${presented.chainError ?? 'not verified'}` };
  // node:tls checked the dates already; checked again so the decision stands on its own.
  if (Date.parse(certificate.validTo) <= now.getTime()) return { ok: false, reason: `certificate expired at ${certificate.validTo}` };
  if (Date.parse(certificate.validFrom) > now.getTime()) return { ok: false, reason: `certificate not valid before ${certificate.validFrom}` };
  const organizations = subjectAttribute(certificate.subject, 'O');
  if (organizations.length !== 1 || organizations[0] !== DEVICE_CERT_ORG) {
    return { ok: false, reason: `certificate is not a device's (O=${organizations.join(',') || 'none'}, need O=${DEVICE_CERT_ORG})` };
  }
  const names = subjectAttribute(certificate.subject, 'CN');
  if (names.length !== 1) return { ok: false, reason: 'certificate must name exactly one device (CN)' };
  const name = names[0]!;
  const device = deviceNamed(name);
  if (device === undefined) return { ok: false, reason: `certificate names device ${name}, which is not on this node` };
  const serial = normalizeSerial(certificate.serialNumber);
  const listed = (device.spec.certificates ?? []).find((entry) => entry.serial === serial);
  if (listed === undefined) return { ok: false, reason: `certificate ${serial} of device ${name} is not on the device's certificate list (revoked, or not synced yet)` };
  if (Date.parse(listed.notAfter) <= now.getTime()) return { ok: false, reason: `certificate ${serial} of device ${name} expired at ${listed.notAfter}` };
  return { ok: true, device: name, serial };
}
