/**
 * Shared by every program that dials cloudcore (edgecore, edgectl): whether a failed TLS
 * handshake means the peer's certificate chain is not trusted here, the case a private CA
 * meets first and the one with a known way out (NODE_EXTRA_CA_CERTS).
 */

/** OpenSSL's verification codes for a chain this machine does not trust. */
const UNTRUSTED_CHAIN = new Set([
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'SELF_SIGNED_CERT_IN_CHAIN', 'DEPTH_ZERO_SELF_SIGNED_CERT',
  'UNABLE_TO_GET_ISSUER_CERT', 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY', 'CERT_UNTRUSTED',
]);

/** True for a socket error (its `code`) that says the certificate chain is not trusted. */
export function isUntrustedCertificate(err: unknown): boolean {
  const code = typeof err === 'object' && err !== null && 'code' in err ? err.code : undefined;
  return typeof code === 'string' && UNTRUSTED_CHAIN.has(code);
}
