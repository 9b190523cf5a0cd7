import { describe, expect, it } from 'vitest';
import { warningText } from './client.js';
import { networkReason } from './transport.js';

describe('warningText', () => {
  it('takes the quoted text of an RFC 7234 warning, unescaping it', () => {
    expect(warningText('299 - "node \\"edge-9\\" does not exist"')).toBe('node "edge-9" does not exist');
  });

  it('shows any other warning as it came', () => {
    expect(warningText('something odd')).toBe('something odd');
  });
});

describe('networkReason', () => {
  const socketError = (message: string, code: string) => Object.assign(new Error(message), { code });

  it('names the way to trust the cloud when its chain is untrusted, by whether a CA is configured', () => {
    const untrusted = socketError('self-signed certificate in certificate chain', 'SELF_SIGNED_CERT_IN_CHAIN');
    expect(networkReason(untrusted, false)).toMatch(/^self-signed certificate in certificate chain \(a private CA\? .*edgectl config set-cluster --server URL --ca-pin PIN/);
    expect(networkReason(untrusted, true)).toMatch(/does not chain to the CA in your edgectl config/);
    expect(networkReason(new TypeError('fetch failed', { cause: untrusted }), false)).toMatch(/^self-signed certificate in certificate chain \(a private CA\?/);
  });

  it('says which address to use for a host name the certificate lacks, and that a timeout is one', () => {
    expect(networkReason(socketError("Hostname/IP does not match certificate's altnames", 'ERR_TLS_CERT_ALTNAME_INVALID'), true)).toMatch(/cloudcore's --advertise-address/);
    expect(networkReason(new DOMException('signal timed out', 'TimeoutError'), false)).toBe('request timed out');
    expect(networkReason(socketError('connect ECONNREFUSED 127.0.0.1:1', 'ECONNREFUSED'), false)).toBe('connect ECONNREFUSED 127.0.0.1:1');
  });
});
