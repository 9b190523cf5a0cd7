import { isUntrustedCertificate } from '../../protocol/index.js';

/**
 * Words a failure to reach cloudcore for the edge's log and status page. fetch() reports only
 * "fetch failed" and keeps the socket's error as its cause; a TLS verification failure gets
 * what to do about it, since that is what a node meeting a private CA first hits.
 */

export function describeCloudError(err: unknown): string {
  const cause = err instanceof Error && err.cause instanceof Error ? err.cause : err;
  const message = cause instanceof Error ? cause.message : String(cause);
  const code = typeof cause === 'object' && cause !== null && 'code' in cause ? cause.code : undefined;
  if (isUntrustedCertificate(cause)) {
    return `${message}: cloudcore's TLS certificate is not signed by a CA this node trusts; `
      + 'give edgecore that CA certificate (environment NODE_EXTRA_CA_CERTS=/path/to/ca.pem)';
  }
  if (code === 'ERR_TLS_CERT_ALTNAME_INVALID') return `${message}: cloudcore's certificate does not name the host of --cloud-url`;
  if (code === 'CERT_HAS_EXPIRED') return `${message}: cloudcore's certificate has expired`;
  return message;
}
