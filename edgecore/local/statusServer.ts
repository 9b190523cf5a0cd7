import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { readFileSync } from 'node:fs';
import { DEFAULT_STATUS_AUTH_THROTTLE, FailureThrottle } from './failureThrottle.js';
import { isLoopbackHost } from '../../protocol/index.js';
import { hostHeaderIsLoopback, parseStatusPasswordFile, statusPasswordMatches } from './localAuth.js';
import { loadPageAssets, type PageAsset } from './pageAssets.js';

/**
 * The field engineer's view of the node, served from local state only so it answers with the
 * cloud unreachable:
 *
 *   GET /                 status page (HTML; polls /status)      ┐ Basic auth when a local
 *   GET /assets/*         its script and style sheet             │ password is set (required
 *   GET /status           the page's data as JSON                │ for a non-loopback bind)
 *   GET /metrics          Prometheus text (docs/metrics.md)      ┘
 *   GET /healthz          liveness, always open
 *   + extra routes (the mapper device list) that bring their own credential, behind the same
 *     Host check and failure throttle as the rest (a 401 they answer to a request that
 *     carried credentials counts as a failure of its address).
 *
 * Secrets never appear: the snapshot provider decides what is shown and leaves env values out.
 */
export type StatusSnapshot = () => unknown;

/** Extra read-only routes (e.g. the mapper device list): answer, or undefined for "not mine". */
export type LocalRoute = (path: string, url: URL, req: IncomingMessage) => { status: number; body: unknown } | undefined;

export interface StatusServerOptions {
  /** The /status answer (may be async: it reads the workloads' logs). */
  snapshot: StatusSnapshot;
  /** The /metrics answer in Prometheus text format; absent: 404. */
  metrics?: () => Promise<string>;
  /** Local password for HTTP Basic auth; absent: no auth (loopback binds only, see listen()). */
  password?: string;
  /** Shown in the browser's login prompt. */
  realm?: string;
  /** Wrong passwords allowed per client address and window (default: 10 a minute); then 429. */
  authThrottle?: FailureThrottle;
}

const PROMETHEUS_TEXT = 'text/plain; version=0.0.4; charset=utf-8';

/** The page loads only its own script and style, talks only to this origin, and is never framed. */
const PAGE_HEADERS = {
  'content-security-policy': "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
};

export class StatusServer {
  private server: Server | undefined;
  private readonly routes: LocalRoute[] = [];
  private readonly opts: StatusServerOptions;
  private assets: Map<string, PageAsset> | undefined;
  private assetError: string | undefined;
  private loopbackOnly = true;
  private readonly throttle: FailureThrottle;

  constructor(opts: StatusServerOptions | StatusSnapshot) {
    this.opts = typeof opts === 'function' ? { snapshot: opts } : opts;
    this.throttle = this.opts.authThrottle ?? new FailureThrottle(DEFAULT_STATUS_AUTH_THROTTLE);
  }

  addRoute(route: LocalRoute): void { this.routes.push(route); }

  /** Refuses a non-loopback host without a password: the node's state must not be open to the LAN. */
  async listen(host: string, port: number): Promise<string> {
    this.loopbackOnly = isLoopbackHost(host);
    if (!this.loopbackOnly && !this.opts.password) {
      throw new Error(`the status page would listen on ${host}, which is not a loopback address, without a password: set --status-password-file (or bind --status-host 127.0.0.1)`);
    }
    try {
      this.assets = loadPageAssets();
    } catch (err) {
      // /status and /metrics still work; the page answers with the reason.
      this.assetError = (err as Error).message;
    }
    const server = createServer((req, res) => {
      this.handle(req, res).catch((err: unknown) => {
        if (!res.headersSent) sendJson(res, 500, { error: `status server error: ${err instanceof Error ? err.message : String(err)}` });
        else res.destroy();
      });
    });
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => resolve());
    });
    const addr = server.address() as AddressInfo;
    const shownHost = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address;
    return `http://${shownHost}:${addr.port}`;
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://local');
    const path = url.pathname;
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      return sendJson(res, 405, { error: `method ${req.method} not allowed; the status API is read-only` });
    }
    if (path === '/healthz') return sendJson(res, 200, { ok: true });
    if (!this.admitted(req, res)) return;
    for (const route of this.routes) {
      const answer = route(path, url, req);
      if (!answer) continue;
      const client = clientOf(req);
      if (answer.status === 401 && req.headers.authorization !== undefined) this.throttle.failed(client);
      else if (answer.status < 400) this.throttle.succeeded(client);
      return sendJson(res, answer.status, answer.body);
    }
    if (!this.authorized(req, res)) return;
    if (path === '/status') return sendJson(res, 200, await this.opts.snapshot());
    if (path === '/metrics' && this.opts.metrics) {
      const text = await this.opts.metrics();
      res.writeHead(200, { 'content-type': PROMETHEUS_TEXT, 'cache-control': 'no-store' });
      res.end(req.method === 'HEAD' ? undefined : text);
      return;
    }
    const asset = this.assets?.get(path);
    if (asset) {
      res.writeHead(200, { 'content-type': asset.contentType, 'cache-control': 'no-cache', 'content-length': asset.body.length, ...PAGE_HEADERS });
      res.end(req.method === 'HEAD' ? undefined : asset.body);
      return;
    }
    if (path === '/' && this.assetError) return sendJson(res, 500, { error: this.assetError });
    // Browsers ask for it on their own; no icon, and no 404 in the console either.
    if (path === '/favicon.ico') { res.writeHead(204, { 'cache-control': 'max-age=86400' }); res.end(); return; }
    return sendJson(res, 404, { error: `no such path ${path}; try / (page), /status (JSON) or /metrics` });
  }

  /**
   * What every request but /healthz passes first, the extra routes included: on a loopback bind
   * without a password, a loopback Host (421 otherwise); an address over the failure throttle
   * is refused (429) before any credential is looked at, so guesses during the wait test nothing.
   */
  private admitted(req: IncomingMessage, res: ServerResponse): boolean {
    if (this.opts.password === undefined && this.loopbackOnly && !hostHeaderIsLoopback(req.headers.host)) {
      sendJson(res, 421, { error: 'the status page answers only to loopback host names (127.0.0.1, localhost, [::1])' });
      return false;
    }
    const client = clientOf(req);
    const waitMs = this.throttle.blockedForMs(client);
    if (waitMs === 0) return true;
    const seconds = Math.ceil(waitMs / 1000);
    res.setHeader('retry-after', String(seconds));
    sendJson(res, 429, { error: `too many wrong local passwords from ${client}; try again in ${seconds} s` });
    return false;
  }

  /** Answers 401 and returns false when the request may not read the node's state (after admitted()). */
  private authorized(req: IncomingMessage, res: ServerResponse): boolean {
    if (this.opts.password !== undefined) {
      const client = clientOf(req);
      if (statusPasswordMatches(this.opts.password, req.headers.authorization)) {
        this.throttle.succeeded(client);
        return true;
      }
      // A request without credentials is a browser asking for the prompt, not a guess.
      if (req.headers.authorization !== undefined) this.throttle.failed(client);
      const realm = (this.opts.realm ?? 'edgecore').replace(/["\\]/g, '');
      res.setHeader('www-authenticate', `Basic realm="${realm}", charset="UTF-8"`);
      sendJson(res, 401, { error: 'this status page needs the local password (HTTP Basic auth; any user name)' });
      return false;
    }
    return true;
  }

  async close(): Promise<void> {
    const server = this.server;
    if (!server) return;
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}

/** Reads `--status-password-file`; throws naming the file when it is missing, empty or too short. */
export function readStatusPasswordFile(file: string): string {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new Error(`cannot read status password file ${file}: ${(err as Error).message}`);
  }
  return parseStatusPasswordFile(text, file);
}

function clientOf(req: IncomingMessage): string {
  return req.socket.remoteAddress ?? 'unknown';
}

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body, null, 2);
  res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store', 'x-content-type-options': 'nosniff' });
  res.end(text);
}
