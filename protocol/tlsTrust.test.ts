import { describe, expect, it } from 'vitest';
import { isUntrustedCertificate } from './tlsTrust.js';

describe('isUntrustedCertificate', () => {
  it('recognises the chain-not-trusted codes and nothing else', () => {
    const withCode = (code: string) => Object.assign(new Error('x'), { code });
    for (const code of ['SELF_SIGNED_CERT_IN_CHAIN', 'DEPTH_ZERO_SELF_SIGNED_CERT', 'UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY']) {
      expect(isUntrustedCertificate(withCode(code))).toBe(true);
    }
    for (const other of [withCode('CERT_HAS_EXPIRED'), withCode('ECONNREFUSED'), new Error('no code'), 'text', null]) {
      expect(isUntrustedCertificate(other)).toBe(false);
    }
  });
});
