/**
 * When certificates are made, renewed and no longer accepted: plain functions over times, so
 * the edge's renewal timer, the cloud's renewal check and the server certificate's own rotation
 * agree, and each rule has a unit test.
 */

export const DAY_SECONDS = 86_400;
/** Node certificates: short-lived, renewed by the edge while it runs. */
export const DEFAULT_NODE_CERT_LIFETIME_SECONDS = 30 * DAY_SECONDS;
/** An expired node certificate may still renew itself for this long (an edge that was offline). */
export const DEFAULT_NODE_CERT_GRACE_SECONDS = 7 * DAY_SECONDS;
/** cloudcore's own server certificate (when it issues it): rotated by cloudcore at 2/3. */
export const DEFAULT_SERVER_CERT_LIFETIME_SECONDS = 365 * DAY_SECONDS;
/** Device certificates: long-lived (a device cannot renew itself); revoked through the device. */
export const DEFAULT_DEVICE_CERT_LIFETIME_SECONDS = 365 * DAY_SECONDS;
export const CA_LIFETIME_SECONDS = 10 * 365 * DAY_SECONDS;
/**
 * The shortest node or server certificate life cloudcore accepts. Renewal starts at two thirds
 * of the life (a tenth backdated), which at 30 s leaves 11 s before expiry (10 s for a bearer
 * credential, not backdated): room for a renewal and its first three retries at the edge's
 * back-off (1, 2 and 4 s at most) before the certificate runs out. Lives this short are for
 * watching rotation happen (demos, the identity tests); fleets use days.
 */
export const MIN_CERT_LIFETIME_SECONDS = 30;
/**
 * notBefore is set this far back: an edge whose clock runs a little behind the cloud's must not
 * get a certificate that is not valid yet.
 */
export const BACKDATE_MS = 5 * 60_000;

export interface Validity { notBefore: Date; notAfter: Date }

/** The validity of a certificate issued now for `lifetimeSeconds`. */
export function validityFrom(now: Date, lifetimeSeconds: number): Validity {
  return { notBefore: new Date(now.getTime() - Math.min(BACKDATE_MS, lifetimeSeconds * 1000 / 10)), notAfter: new Date(now.getTime() + lifetimeSeconds * 1000) };
}

/** When a certificate should be renewed: two thirds into its life (kubelet and cert-manager renew around there). */
export function renewAt(validity: Validity): Date {
  const start = validity.notBefore.getTime();
  return new Date(start + (validity.notAfter.getTime() - start) * 2 / 3);
}

export type RenewalStanding = 'valid' | 'renew-due' | 'expired-in-grace' | 'expired-past-grace';

/** Where a certificate stands at `now`, for the edge's status page and the cloud's renewal check. */
export function renewalStanding(validity: Validity, now: Date, graceSeconds: number): RenewalStanding {
  const t = now.getTime();
  if (t >= validity.notAfter.getTime() + graceSeconds * 1000) return 'expired-past-grace';
  if (t >= validity.notAfter.getTime()) return 'expired-in-grace';
  if (t >= renewAt(validity).getTime()) return 'renew-due';
  return 'valid';
}

/**
 * The serials a node keeps after a new certificate is issued: the new one, and older ones still
 * within their life plus the grace window (the edge uses the old one until it has committed the
 * new one). Bounded, newest first.
 */
export function keptCertificates<T extends { serial: string; notAfter: string }>(
  existing: readonly T[], issued: T, now: Date, graceSeconds: number, max = 4,
): T[] {
  const alive = existing.filter((c) => c.serial !== issued.serial && Date.parse(c.notAfter) + graceSeconds * 1000 > now.getTime());
  alive.sort((a, b) => Date.parse(b.notAfter) - Date.parse(a.notAfter));
  return [issued, ...alive].slice(0, max);
}
