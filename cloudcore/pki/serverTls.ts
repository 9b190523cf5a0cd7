import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import type { Server as HttpsServer, ServerOptions } from 'node:https';
import type { Logger } from 'pino';
import { caBundlePin, pemBlocks } from '../../protocol/index.js';
import { CertificateAuthority } from './certificateAuthority.js';
import { renewAt } from './certificatePolicy.js';

/**
 * cloudcore's HTTPS: the server certificate (its own CA's, rotated here at two thirds of its life
 * without a restart, or the operator's), the CA bundle edges pin and trust, and the request for
 * client certificates that mutual TLS needs. A client certificate is asked for but not required
 * by the handshake: operators' tools and browsers connect without one, and the hub decides per
 * route (and logs why it refuses) instead of a bare handshake failure.
 */

export interface ServerTlsSettings {
  dataDir: string;
  host: string;
  advertiseAddress: string[];
  tlsCert?: string | undefined;
  tlsKey?: string | undefined;
  caCert?: string | undefined;
  caKey?: string | undefined;
  caExtraTrust?: string | undefined;
  serverCertLifetimeSeconds: number;
}

/** setTimeout's ceiling (~24.8 days); a longer wait is taken in steps. */
const MAX_TIMER_MS = 2 ** 31 - 1;

export class ServerTls {
  /** The CA bundle `GET /hub/v1/ca` serves and join tokens pin. */
  readonly bundlePem: string;
  readonly pin: string;
  private cert: string;
  private key: string;
  private notAfter: Date;
  private server: HttpsServer | undefined;
  private timer: NodeJS.Timeout | undefined;

  private constructor(readonly ca: CertificateAuthority, private readonly settings: ServerTlsSettings, private readonly log: Logger,
    served: { cert: string; key: string; notAfter: Date; operator: boolean }) {
    this.cert = served.cert;
    this.key = served.key;
    this.notAfter = served.notAfter;
    // With the operator's own server certificate, edges must be able to verify it from the pinned
    // bundle alone: its chain file's certificates go in beside the CA (the root must be among them).
    const operatorChain = served.operator ? pemBlocks(served.cert).filter((pem) => !ca.trusted.includes(pem)) : [];
    this.bundlePem = [ca.bundlePem, ...operatorChain].join('');
    this.pin = caBundlePin(this.bundlePem);
  }

  static async open(settings: ServerTlsSettings, log: Logger): Promise<ServerTls> {
    const ca = await CertificateAuthority.open(settings, log);
    if (settings.tlsCert !== undefined && settings.tlsKey !== undefined) {
      const cert = readTlsFile(settings.tlsCert, 'tlsCert');
      const key = readTlsFile(settings.tlsKey, 'tlsKey');
      const first = pemBlocks(cert)[0];
      if (!first) throw new Error(`tlsCert file ${settings.tlsCert} holds no PEM certificate`);
      return new ServerTls(ca, settings, log, { cert, key, notAfter: new Date(new X509Certificate(first).validTo), operator: true });
    }
    const issued = await ca.issueServer(serverNames(settings), settings.serverCertLifetimeSeconds);
    return new ServerTls(ca, settings, log, { cert: issued.pem, key: issued.keyPem, notAfter: new Date(issued.notAfter), operator: false });
  }

  get operatorCertificate(): boolean { return this.settings.tlsCert !== undefined; }

  /** Options for https.createServer. */
  serverOptions(): ServerOptions {
    return { cert: this.cert, key: this.key, ca: this.ca.trusted, requestCert: true, rejectUnauthorized: false };
  }

  /** Starts rotating the server certificate on `server` (only the one cloudcore issues itself). */
  attach(server: HttpsServer): void {
    this.server = server;
    if (!this.operatorCertificate) this.scheduleRotation();
  }

  close(): void {
    clearTimeout(this.timer);
    this.server = undefined;
  }

  /** Issues a new server certificate and swaps it in: new handshakes use it, live connections keep theirs. */
  async rotate(): Promise<void> {
    const issued = await this.ca.issueServer(serverNames(this.settings), this.settings.serverCertLifetimeSeconds);
    this.cert = issued.pem;
    this.key = issued.keyPem;
    this.notAfter = new Date(issued.notAfter);
    this.server?.setSecureContext(this.serverOptions());
    this.log.info({ serial: issued.serial, notAfter: issued.notAfter }, 'rotated the server certificate');
  }

  private scheduleRotation(): void {
    clearTimeout(this.timer);
    const lifetimeMs = this.settings.serverCertLifetimeSeconds * 1000;
    const at = renewAt({ notBefore: new Date(this.notAfter.getTime() - lifetimeMs), notAfter: this.notAfter }).getTime();
    const wait = Math.max(0, at - Date.now());
    this.timer = setTimeout(() => {
      if (Date.now() < at) return this.scheduleRotation();
      this.rotate().then(() => this.scheduleRotation(), (err: Error) => {
        this.log.error({ err: err.message }, 'could not rotate the server certificate; retrying in a minute');
        this.timer = setTimeout(() => this.scheduleRotation(), 60_000);
        this.timer.unref();
      });
    }, Math.min(wait, MAX_TIMER_MS));
    this.timer.unref();
  }
}

/** The server certificate's names: what operators advertise, the listen address, and loopback. */
export function serverNames(settings: Pick<ServerTlsSettings, 'host' | 'advertiseAddress'>): string[] {
  const names = [...settings.advertiseAddress];
  const wildcard = settings.host === '0.0.0.0' || settings.host === '::';
  if (!wildcard) names.push(settings.host);
  else names.push(hostname());
  names.push('localhost', '127.0.0.1', '::1');
  return [...new Set(names.map((n) => n.replace(/^\[|\]$/g, '')))];
}

function readTlsFile(path: string, setting: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    throw new Error(`cannot read ${setting} file ${path}: ${(err as Error).message}`);
  }
}
