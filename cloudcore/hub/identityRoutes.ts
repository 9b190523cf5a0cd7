import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { TLSSocket } from 'node:tls';
import type { Logger } from 'pino';
import {
  HUB_PATHS, JoinRequestSchema, JoinResponseSchema, NODE_CERT_ORG, RenewRequestSchema, RenewResponseSchema, type JoinResponse,
} from '../../protocol/index.js';
import { ApiError } from '../http/apiError.js';
import { zodSerializerCompiler, zodValidatorCompiler, type ZodTypeProvider } from '../http/zodRoutes.js';
import { CertificateRequestError, type IssuedCertificate } from '../pki/certificateAuthority.js';
import { parseCertificateRequest, type CheckedRequest } from '../pki/certificateRequest.js';
import type { ServerTls } from '../pki/serverTls.js';
import type { Store } from '../store/store.js';
import {
  acceptsCertificate, joinWithToken, JoinError, renewNodeIdentity, replaceNodeIdentity, verifyNodeCredential,
} from './credentials.js';
import { nodeFromPeerCertificate } from './peerCertificate.js';

/**
 * How a node gets and keeps its identity: the CA bundle its join token pins (`GET /hub/v1/ca`,
 * public), the join (token + CSR → client certificate; plain HTTP: token → bearer credential)
 * and the renewal (current identity + new CSR → new certificate). A bad request changes nothing:
 * the CSR is checked before the token is spent.
 */
export interface IdentityRoutesOptions {
  store: Store;
  log: Logger;
  /** cloudcore's HTTPS; absent when it serves plain HTTP. */
  tls: ServerTls | undefined;
  nodeCertLifetimeSeconds: number;
  nodeCertGraceSeconds: number;
}

/** A CSR is ~500 bytes; the join body never needs more than this. */
const IDENTITY_BODY_LIMIT = 16 * 1024;

export async function identityRoutes(scope: FastifyInstance, opts: IdentityRoutesOptions): Promise<void> {
  scope.setValidatorCompiler(zodValidatorCompiler);
  scope.setSerializerCompiler(zodSerializerCompiler);
  const hub = scope.withTypeProvider<ZodTypeProvider>();
  const { store, log, tls } = opts;

  hub.get(HUB_PATHS.ca, async (_request, reply) => {
    if (!tls) throw new ApiError(404, 'cloudcore serves plain HTTP (--insecure-plain-http): it has no CA bundle for edges to pin');
    return reply.type('application/x-pem-file').send(tls.bundlePem);
  });

  hub.post(HUB_PATHS.join, { bodyLimit: IDENTITY_BODY_LIMIT, schema: { body: JoinRequestSchema, response: { '2xx': JoinResponseSchema } } }, async (request) => {
    const { node, token, csr } = request.body;
    try {
      if (!tls) {
        const made = await joinWithToken(store, node, token, () => replaceNodeIdentity(store, node, { kind: 'bearer', lifetimeSeconds: opts.nodeCertLifetimeSeconds }));
        log.info({ node, expiresAt: made.expiresAt }, 'node joined');
        return { node, credential: made.credential!, expiresAt: made.expiresAt! };
      }
      if (csr === undefined) throw new ApiError(400, 'over HTTPS a join carries a certificate request (csr) made with the node\'s own key', 'csr');
      // Checked before the token is spent: a bad CSR leaves the token usable.
      const checked = await parseCertificateRequest(csr, { commonName: node, organization: NODE_CERT_ORG });
      if (!checked.ok) throw new ApiError(400, checked.message, 'csr', 'EF_BAD_CERTIFICATE_REQUEST');
      const issued = await joinWithToken(store, node, token, async () => {
        const signed = await signNode(tls, node, checked, opts.nodeCertLifetimeSeconds);
        await replaceNodeIdentity(store, node, { kind: 'certificate', issued: signed });
        return signed;
      });
      log.info({ node, serial: issued.serial, notAfter: issued.notAfter }, 'node joined');
      return certificateAnswer(node, issued, tls);
    } catch (err) {
      if (!(err instanceof JoinError)) throw err;
      log.warn({ node, reason: err.message }, 'join refused');
      throw new ApiError(err.statusCode, err.message);
    }
  });

  hub.post(HUB_PATHS.renew, { bodyLimit: IDENTITY_BODY_LIMIT, schema: { body: RenewRequestSchema, response: { '2xx': RenewResponseSchema } } }, async (request) => {
    const refuse = (reason: string, node?: string, code: 'EF_UNAUTHENTICATED' | 'EF_NODE_CERT_EXPIRED' = 'EF_UNAUTHENTICATED'): never => {
      log.warn({ node, remote: request.ip, reason }, 'renewal refused');
      throw new ApiError(401, reason, undefined, code);
    };
    if (!tls) {
      const bearer = bearerOf(request);
      const verified = bearer ? await verifyNodeCredential(store, bearer) : undefined;
      if (!verified) return refuse('node credential missing, expired or revoked: the node needs a new join token');
      const made = await renewNodeIdentity(store, verified.node, { kind: 'bearer', lifetimeSeconds: opts.nodeCertLifetimeSeconds }, opts.nodeCertGraceSeconds)
        .catch((err: Error) => refuse(err.message, verified.node));
      log.info({ node: verified.node, expiresAt: made.expiresAt }, 'renewed a node credential');
      return { node: verified.node, credential: made.credential!, expiresAt: made.expiresAt! };
    }
    const peer = nodeFromPeerCertificate(request.raw.socket as TLSSocket, tls.ca);
    if (!peer.ok) return refuse(peer.reason);
    if (!acceptsCertificate(await store.get('NodeCredential', peer.node), peer.serial)) {
      return refuse(`certificate ${peer.serial} of node "${peer.node}" was revoked or replaced: the node needs a new join token`, peer.node);
    }
    const graceEnds = peer.notAfter.getTime() + opts.nodeCertGraceSeconds * 1000;
    if (graceEnds <= Date.now()) {
      return refuse(`certificate of node "${peer.node}" expired at ${peer.notAfter.toISOString()}, past the ${opts.nodeCertGraceSeconds} s grace window: the node needs a new join token`,
        peer.node, 'EF_NODE_CERT_EXPIRED');
    }
    const { csr } = request.body;
    if (csr === undefined) throw new ApiError(400, 'a renewal carries a certificate request (csr) made with a new key', 'csr');
    const issued = await signNode(tls, peer.node, csr, opts.nodeCertLifetimeSeconds);
    await renewNodeIdentity(store, peer.node, { kind: 'certificate', issued }, opts.nodeCertGraceSeconds)
      .catch((err: Error) => refuse(err.message, peer.node));
    log.info({ node: peer.node, serial: issued.serial, notAfter: issued.notAfter, renewedExpired: peer.expired }, 'renewed a node certificate');
    return certificateAnswer(peer.node, issued, tls);
  });
}

async function signNode(tls: ServerTls, node: string, csr: string | CheckedRequest, lifetimeSeconds: number): Promise<IssuedCertificate> {
  try {
    return await tls.ca.signNode(node, csr, lifetimeSeconds);
  } catch (err) {
    if (err instanceof CertificateRequestError) throw new ApiError(400, err.message, 'csr', 'EF_BAD_CERTIFICATE_REQUEST');
    throw err;
  }
}

function certificateAnswer(node: string, issued: IssuedCertificate, tls: ServerTls): JoinResponse {
  return { node, certificate: issued.pem, caBundle: tls.bundlePem };
}

function bearerOf(request: FastifyRequest): string | undefined {
  const auth = request.headers.authorization ?? '';
  return auth.startsWith('Bearer ') ? auth.slice(7) : undefined;
}
