import { readFileSync } from 'node:fs';
import { request } from 'node:https';
import { join } from 'node:path';
import WebSocket from 'ws';
import { HUB_PATHS, NODE_HEADER } from '../../protocol/index.js';
import type { Cloud } from './fleet.js';

/**
 * HTTPS and WSS clients for tests against a TLS cloudcore: node:https with an explicit trust
 * anchor (global fetch cannot take one) and, for mutual TLS, a client certificate.
 */
export interface TlsMaterial { ca?: string; cert?: string; key?: string }

export interface HttpsAnswer<T = unknown> { status: number; body: T; text: string; headers: Record<string, string | string[] | undefined> }

export function httpsCall<T = unknown>(url: string, opts: TlsMaterial & { method?: string; body?: unknown; headers?: Record<string, string> } = {}): Promise<HttpsAnswer<T>> {
  const payload = opts.body === undefined ? undefined : typeof opts.body === 'string' ? opts.body : JSON.stringify(opts.body);
  return new Promise((resolve, reject) => {
    const req = request(url, {
      method: opts.method ?? 'GET',
      ...(opts.ca !== undefined ? { ca: opts.ca } : {}),
      ...(opts.cert !== undefined ? { cert: opts.cert, key: opts.key } : {}),
      headers: { ...(payload !== undefined ? { 'content-type': 'application/json' } : {}), ...opts.headers },
      agent: false,
    }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      // 'close' too: a server that answers early (413) and resets the connection ends the
      // response without 'end', and its error goes to the response, not the request.
      const finish = () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let body: unknown = text;
        try { body = text ? JSON.parse(text) : undefined; } catch { /* not JSON: the text */ }
        resolve({ status: res.statusCode ?? 0, body: body as T, text, headers: res.headers });
      };
      res.on('end', finish);
      res.on('close', finish);
      res.on('error', () => finish());
    });
    req.on('error', reject);
    req.end(payload);
  });
}

/** The cloud's CA bundle as its data dir holds it (what a pinned token's edge fetches and checks). */
export function cloudCaBundle(cloud: Pick<Cloud, 'dataDir'>): string {
  return readFileSync(join(cloud.dataDir, 'pki', 'ca.crt'), 'utf8');
}

/**
 * The operator API of a TLS cloud, trusting its CA; `ca` instead when cloudcore serves an
 * operator's certificate (--tls-cert) from another CA.
 */
export function tlsApi(cloud: Pick<Cloud, 'url' | 'token' | 'dataDir'>, trust: { ca?: string } = {}) {
  const ca = trust.ca ?? cloudCaBundle(cloud);
  const call = <T = unknown>(method: string, path: string, body?: unknown) =>
    httpsCall<T>(`${cloud.url}/api/v1${path}`, { method, body, ca, headers: { authorization: `Bearer ${cloud.token}` } });
  return {
    call,
    async token(node: string, ttlSeconds?: number): Promise<string> {
      const r = await call<{ token: string }>('POST', '/tokens', { node, ...(ttlSeconds ? { ttlSeconds } : {}) });
      if (r.status !== 201) throw new Error(`token create failed: ${r.text}`);
      return r.body.token;
    },
  };
}

/** Opens the edge link with a client certificate; resolves with the upgrade's outcome. */
export function openNodeLink(cloud: Pick<Cloud, 'url'>, tls: TlsMaterial, claimedNode?: string): Promise<{ ws?: WebSocket; status: number; body: string }> {
  const url = new URL(HUB_PATHS.connect, cloud.url.replace(/^http/, 'ws'));
  return new Promise((resolve) => {
    const ws = new WebSocket(url, { ...tls, headers: claimedNode ? { [NODE_HEADER]: claimedNode } : {}, handshakeTimeout: 5000 });
    ws.once('open', () => resolve({ ws, status: 101, body: '' }));
    ws.once('unexpected-response', (_req, res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => { ws.terminate(); resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }); });
    });
    ws.once('error', (err) => resolve({ status: 0, body: err.message }));
  });
}
