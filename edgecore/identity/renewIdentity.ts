import { HUB_PATHS, newKeyAndCsr, NODE_CERT_ORG } from '../../protocol/index.js';
import { hubRequest } from './hubRequest.js';
import { identityFromAnswer } from './join.js';
import type { StoredIdentity } from './identityStore.js';

/**
 * One renewal: a NEW key pair and CSR, sent with the CURRENT identity (its client certificate
 * over mutual TLS, or its bearer credential). Returns the new identity, checked, not committed:
 * committing is the caller's, and until then the current identity stays in use.
 */
export async function renewIdentity(cloudUrl: string, node: string, current: StoredIdentity, now: Date): Promise<StoredIdentity> {
  const url = new URL(HUB_PATHS.renew, cloudUrl);
  if (current.mode === 'certificate') {
    const { keyPem, csrPem } = await newKeyAndCsr(node, NODE_CERT_ORG);
    const answer = await hubRequest(url, {
      method: 'POST', body: { csr: csrPem },
      tls: { ca: current.caBundle, cert: current.certPem, key: current.keyPem },
    });
    return identityFromAnswer(answer, { node, keyPem, joinTokenSha256: current.joinTokenSha256, now, what: 'renewal' });
  }
  const answer = await hubRequest(url, { method: 'POST', body: {}, headers: { authorization: `Bearer ${current.credential}` } });
  return identityFromAnswer(answer, { node, keyPem: undefined, joinTokenSha256: current.joinTokenSha256, now, what: 'renewal' });
}
