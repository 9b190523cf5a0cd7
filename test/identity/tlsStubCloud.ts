import { X509Certificate } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TLSSocket } from 'node:tls';
import { pino } from 'pino';
import { WebSocketServer } from 'ws';
import { CertificateAuthority } from '../../cloudcore/pki/certificateAuthority.js';
import { normalizeSerial } from '../../protocol/index.js';
import { formatJoinToken, HUB_PATHS, PROTOCOL_VERSION } from '../../protocol/index.js';

/**
 * A stand-in for cloudcore's hub over real TLS, for the edge identity tests until the cloud side
 * is on main: the cloud CA (cloudcore/pki, a real one), a server certificate for 127.0.0.1,
 * GET /hub/v1/ca, POST /hub/v1/join (token + CSR → certificate), POST /hub/v1/renew (mutual TLS,
 * an expired certificate accepted within `graceSeconds`), and a WebSocket /hub/v1/connect that
 * admits only a verified client certificate and answers `welcome`. Every request is recorded.
 */

export interface StubRequest { method: string; path: string; body: string; peerCommonName: string | null; peerSerial: string | null }

export interface StubCloudOptions {
  lifetimeSeconds: number;
  graceSeconds?: number;
  /** The join token's id (the pin is the CA bundle's). */
  tokenId?: string;
  /** Serve a server certificate from another CA, not in the bundle (an operator's certificate left out of it). */
  foreignServerCert?: boolean;
}

export class TlsStubCloud {
  readonly requests: StubRequest[] = [];
  /** Links admitted on /hub/v1/connect: the client certificate's CN and serial. */
  readonly links: Array<{ commonName: string; serial: string }> = [];
  /** Serials the stub refuses to renew (revoked). */
  readonly revoked = new Set<string>();
  /** When set, /hub/v1/renew answers this status (and error) instead of renewing. */
  renewFailure: { status: number; code: string; error: string } | null = null;
  lifetimeSeconds: number;
  url = '';
  private server: Server | undefined;
  private wss: WebSocketServer | undefined;
  private readonly dataDir: string;

  private constructor(private readonly ca: CertificateAuthority, private readonly opts: StubCloudOptions, dataDir: string) {
    this.lifetimeSeconds = opts.lifetimeSeconds;
    this.dataDir = dataDir;
  }

  static async start(opts: StubCloudOptions): Promise<TlsStubCloud> {
    const dataDir = mkdtempSync(join(tmpdir(), 'ef-stubcloud-'));
    const ca = await CertificateAuthority.open({ dataDir }, pino({ level: 'silent' }));
    const stub = new TlsStubCloud(ca, opts, dataDir);
    await stub.listen();
    return stub;
  }

  get bundlePem(): string { return this.ca.bundlePem; }
  /** The secret of the one token the stub accepts; a test sets a new one to "create a new token". */
  tokenSecret = '0123456789abcdef';
  get token(): string { return formatJoinToken(this.ca.pin, this.opts.tokenId ?? 'abcdef', this.tokenSecret); }
  get unpinnedToken(): string { return formatJoinToken(null, this.opts.tokenId ?? 'abcdef', this.tokenSecret); }
  get caCertPath(): string { return join(this.dataDir, 'pki', 'ca.crt'); }

  private async listen(): Promise<void> {
    const issuer = this.opts.foreignServerCert
      ? await CertificateAuthority.open({ dataDir: join(this.dataDir, 'foreign') }, pino({ level: 'silent' }))
      : this.ca;
    const server = await issuer.issueServer(['127.0.0.1'], 3600);
    this.server = createServer({ cert: server.pem, key: server.keyPem, ca: this.ca.trusted, requestCert: true, rejectUnauthorized: false }, (req, res) => void this.onRequest(req, res));
    this.wss = new WebSocketServer({ noServer: true });
    this.server.on('upgrade', (req: IncomingMessage, socket, head) => {
      const tls = req.socket as TLSSocket;
      const peer = tls.getPeerCertificate();
      this.requests.push({ method: 'GET', path: req.url ?? '', body: '', peerCommonName: peer.subject?.CN ? String(peer.subject.CN) : null, peerSerial: peer.serialNumber ? normalizeSerial(peer.serialNumber) : null });
      if (!tls.authorized || this.revoked.has(normalizeSerial(peer.serialNumber))) {
        socket.end('HTTP/1.1 401 Unauthorized\r\ncontent-length: 0\r\n\r\n');
        return;
      }
      this.wss!.handleUpgrade(req, socket, head, (ws) => {
        this.links.push({ commonName: String(peer.subject.CN), serial: normalizeSerial(peer.serialNumber) });
        ws.send(JSON.stringify({ type: 'welcome', protocolVersion: PROTOCOL_VERSION, mode: 'resume', upstreamSeq: 0 }));
        ws.on('message', (data) => {
          const frame = JSON.parse(data.toString()) as { type: string; t?: number };
          if (frame.type === 'ping') ws.send(JSON.stringify({ type: 'pong', t: frame.t }));
        });
      });
    });
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
    const address = this.server.address();
    if (address === null || typeof address === 'string') throw new Error('no port');
    this.url = `https://127.0.0.1:${address.port}`;
  }

  private async onRequest(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const body = Buffer.concat(chunks).toString('utf8');
    const tls = req.socket as TLSSocket;
    const peer = tls.getPeerCertificate();
    const peerSerial = peer.serialNumber ? normalizeSerial(peer.serialNumber) : null;
    this.requests.push({ method: req.method ?? '', path: req.url ?? '', body, peerCommonName: peer.subject?.CN ? String(peer.subject.CN) : null, peerSerial });
    const answer = (status: number, value: unknown) => {
      res.writeHead(status, { 'content-type': typeof value === 'string' ? 'application/x-pem-file' : 'application/json' });
      res.end(typeof value === 'string' ? value : JSON.stringify(value));
    };
    try {
      if (req.method === 'GET' && req.url === HUB_PATHS.ca) return answer(200, this.ca.bundlePem);
      if (req.method === 'POST' && req.url === HUB_PATHS.join) {
        const { node, token, csr } = JSON.parse(body) as { node: string; token: string; csr?: string };
        if (token !== this.token && token !== this.unpinnedToken) return answer(401, { error: 'join token is not valid', code: 'EF_UNAUTHORIZED' });
        if (!csr) return answer(400, { error: 'csr is required over HTTPS' });
        const issued = await this.ca.signNode(node, csr, this.lifetimeSeconds);
        return answer(200, { node, certificate: issued.pem, caBundle: this.ca.bundlePem });
      }
      if (req.method === 'POST' && req.url === HUB_PATHS.renew) {
        if (this.renewFailure) return answer(this.renewFailure.status, { error: this.renewFailure.error, code: this.renewFailure.code });
        const cert = peer.raw ? new X509Certificate(peer.raw) : null;
        const expired = String(tls.authorizationError) === 'CERT_HAS_EXPIRED';
        if (!cert || (!tls.authorized && !expired)) return answer(401, { error: `no valid client certificate: ${String(tls.authorizationError)}`, code: 'EF_UNAUTHORIZED' });
        if (this.revoked.has(normalizeSerial(cert.serialNumber))) return answer(401, { error: 'certificate revoked', code: 'EF_UNAUTHORIZED' });
        if (expired && Date.parse(cert.validTo) + (this.opts.graceSeconds ?? 0) * 1000 < Date.now()) {
          return answer(401, { error: 'the node certificate expired past the grace window', code: 'EF_NODE_CERT_EXPIRED' });
        }
        const node = String(peer.subject.CN);
        const { csr } = JSON.parse(body) as { csr: string };
        const issued = await this.ca.signNode(node, csr, this.lifetimeSeconds);
        return answer(200, { node, certificate: issued.pem, caBundle: this.ca.bundlePem });
      }
      answer(404, { error: 'not found' });
    } catch (err) {
      answer(400, { error: (err as Error).message });
    }
  }

  async stop(): Promise<void> {
    for (const client of this.wss?.clients ?? []) client.terminate();
    this.wss?.close();
    this.server?.closeAllConnections();
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
    rmSync(this.dataDir, { recursive: true, force: true });
  }
}
