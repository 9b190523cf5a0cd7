import { loadX509, MAX_CSR_PEM_BYTES, pemBlocks } from '../../protocol/index.js';

/**
 * Reading a certificate request (PKCS#10) someone sent: one PEM block, a valid self-signature
 * (proof the sender holds the key), a key type we sign, and a subject that names exactly who the
 * sender says it is. Everything else in it (extensions, other attributes) is ignored: the cloud
 * decides what a certificate may do.
 */

export type CertificateRequestProblem = 'malformed' | 'too-large' | 'bad-signature' | 'weak-key' | 'wrong-subject';

type Pkcs10 = InstanceType<Awaited<ReturnType<typeof loadX509>>['Pkcs10CertificateRequest']>;

export type ParsedRequest =
  | { ok: true; request: Pkcs10; commonName: string; organization: string }
  | { ok: false; problem: CertificateRequestProblem; message: string };
/** A request that passed every check, for the subject it was checked for: it can be signed without checking again. */
export type CheckedRequest = Extract<ParsedRequest, { ok: true }>;

export async function parseCertificateRequest(pem: string, expect: { commonName: string; organization: string }): Promise<ParsedRequest> {
  if (Buffer.byteLength(pem) > MAX_CSR_PEM_BYTES) return { ok: false, problem: 'too-large', message: `certificate request is larger than ${MAX_CSR_PEM_BYTES} bytes` };
  const blocks = pemBlocks(pem, 'CERTIFICATE REQUEST');
  if (blocks.length !== 1) return { ok: false, problem: 'malformed', message: 'csr must hold exactly one PEM block "CERTIFICATE REQUEST"' };
  const x509 = await loadX509();
  let request: Pkcs10;
  try {
    request = new x509.Pkcs10CertificateRequest(blocks[0]!);
  } catch (err) {
    return { ok: false, problem: 'malformed', message: `csr is not a PKCS#10 request: ${(err as Error).message}` };
  }
  let signed = false;
  try { signed = await request.verify(); } catch { signed = false; }
  if (!signed) return { ok: false, problem: 'bad-signature', message: 'csr signature does not verify: the request was not made with the key it carries' };
  const keyProblem = await checkKey(request);
  if (keyProblem) return { ok: false, problem: 'weak-key', message: keyProblem };
  const names = request.subjectName.getField('CN');
  const orgs = request.subjectName.getField('O');
  if (names.length !== 1 || names[0] !== expect.commonName || orgs.length !== 1 || orgs[0] !== expect.organization) {
    return {
      ok: false, problem: 'wrong-subject',
      message: `csr subject must be CN=${expect.commonName}, O=${expect.organization}; it asks for "${request.subject}"`,
    };
  }
  return { ok: true, request, ...expect };
}

async function checkKey(request: Pkcs10): Promise<string | undefined> {
  let algorithm: KeyAlgorithm & { namedCurve?: string; modulusLength?: number };
  try {
    algorithm = (await request.publicKey.export()).algorithm as typeof algorithm;
  } catch (err) {
    return `csr public key cannot be read: ${(err as Error).message}`;
  }
  if (algorithm.name === 'ECDSA' && (algorithm.namedCurve === 'P-256' || algorithm.namedCurve === 'P-384')) return undefined;
  if (algorithm.name === 'RSASSA-PKCS1-v1_5' && (algorithm.modulusLength ?? 0) >= 2048) return undefined;
  return `csr key ${algorithm.name}${algorithm.namedCurve ? ` ${algorithm.namedCurve}` : ''} is not accepted: use ECDSA P-256/P-384 or RSA of 2048 bits or more`;
}
