/**
 * Admission control for edge links. A session costs the most while it settles: its upgrade,
 * hello, node status write and snapshot (or resume) until the edge has taken it in. When every
 * edge comes back at once after an outage, cloudcore takes at most `maxSettling` of those at a
 * time and answers the rest `503` with a `Retry-After` the edge honours; the jitter spreads the
 * retries so the refused do not all come back in the same second.
 */
export type AdmissionDecision = { admit: true } | { admit: false; retryAfterSeconds: number };

export function decideAdmission(settling: number, maxSettling: number, random: () => number = Math.random): AdmissionDecision {
  if (settling < maxSettling) return { admit: true };
  // 1–3 s: a settle takes milliseconds to a second, so a slot is soon free again.
  return { admit: false, retryAfterSeconds: 1 + Math.floor(random() * 3) };
}
