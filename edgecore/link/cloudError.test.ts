import { describe, expect, it } from 'vitest';
import { describeCloudError } from './cloudError.js';

const tlsError = (code: string, message: string) => Object.assign(new Error(message), { code });

describe('describeCloudError', () => {
  it("unwraps fetch's cause and says what to do about an untrusted chain", () => {
    const err = new TypeError('fetch failed', { cause: tlsError('SELF_SIGNED_CERT_IN_CHAIN', 'self-signed certificate in certificate chain') });
    expect(describeCloudError(err)).toBe("self-signed certificate in certificate chain: cloudcore's TLS certificate is not signed by a CA this node trusts; "
      + 'give edgecore that CA certificate (environment NODE_EXTRA_CA_CERTS=/path/to/ca.pem)');
  });

  it('words the WebSocket client\'s own TLS errors, a wrong host name and an expired certificate', () => {
    expect(describeCloudError(tlsError('UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'unable to verify the first certificate'))).toContain('NODE_EXTRA_CA_CERTS');
    expect(describeCloudError(tlsError('ERR_TLS_CERT_ALTNAME_INVALID', "Hostname/IP does not match certificate's altnames"))).toMatch(/does not name the host of --cloud-url$/);
    expect(describeCloudError(tlsError('CERT_HAS_EXPIRED', 'certificate has expired'))).toBe("certificate has expired: cloudcore's certificate has expired");
  });

  it('leaves other failures as they are', () => {
    expect(describeCloudError(new TypeError('fetch failed', { cause: tlsError('ECONNREFUSED', 'connect ECONNREFUSED 127.0.0.1:1') }))).toBe('connect ECONNREFUSED 127.0.0.1:1');
    expect(describeCloudError('gone')).toBe('gone');
  });
});
