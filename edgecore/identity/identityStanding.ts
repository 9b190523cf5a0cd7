import { renewAt, renewalStanding, type Validity } from '../../protocol/index.js';
import { certificateFacts } from './certificateCheck.js';
import type { StoredIdentity } from './identityStore.js';

/**
 * Where the node's identity stands, for the renewal timer and the status page. The grace window
 * is the cloud operator's setting, which the edge does not know: an expired identity is
 * 'expired-in-grace' until the cloud answers that it is past it ('needs-new-token').
 */

export type IdentityStanding = 'valid' | 'renew-due' | 'expired-in-grace' | 'needs-new-token';

export interface IdentitySummary {
  mode: 'certificate' | 'bearer';
  /** Certificate mode only. */
  serial: string | null;
  /** null: a bearer credential from a cloudcore that does not expire them (never renewed). */
  validity: Validity | null;
}

export function summarize(id: StoredIdentity): IdentitySummary {
  if (id.mode === 'certificate') {
    const facts = certificateFacts(id.certPem);
    return { mode: 'certificate', serial: facts.serial, validity: { notBefore: facts.notBefore, notAfter: facts.notAfter } };
  }
  return {
    mode: 'bearer', serial: null,
    validity: id.expiresAt === null ? null : { notBefore: new Date(id.issuedAt), notAfter: new Date(id.expiresAt) },
  };
}

export function identityStanding(validity: Validity | null, now: Date, needsNewToken: boolean): IdentityStanding {
  if (needsNewToken) return 'needs-new-token';
  if (validity === null) return 'valid';
  const standing = renewalStanding(validity, now, Number.POSITIVE_INFINITY);
  return standing === 'expired-past-grace' ? 'expired-in-grace' : standing;
}

/** When to renew (null: never). */
export function renewalTime(validity: Validity | null): Date | null {
  return validity === null ? null : renewAt(validity);
}

export function isExpired(validity: Validity | null, now: Date): boolean {
  return validity !== null && now.getTime() >= validity.notAfter.getTime();
}
