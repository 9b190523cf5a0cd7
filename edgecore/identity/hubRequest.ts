import { request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { describeCloudError } from '../link/cloudError.js';

/**
 * One JSON or text request to cloudcore's hub, over node:http or node:https, with the TLS trust
 * and client certificate given per request (fetch cannot take a CA or a client certificate).
 * Each request has its own connection (no agent): a pooled TLS session must never carry one
 * identity's handshake into another's request.
 */

export interface HubTls {
  /** PEM CA bundle trusted for the server's certificate; absent: the system's CAs (and NODE_EXTRA_CA_CERTS). */
  ca?: string;
  /** The node's client certificate and key (mutual TLS). */
  cert?: string;
  key?: string;
  /** false only for GET /hub/v1/ca before the pin check: nothing secret travels on that request. */
  rejectUnauthorized?: boolean;
}

export interface HubRequest {
  method: 'GET' | 'POST';
  body?: unknown;
  headers?: Record<string, string>;
  tls?: HubTls;
  timeoutMs?: number;
  /** Largest answer read; a bigger one is refused (a CA bundle or a certificate is a few KiB). */
  maxBytes?: number;
}

export interface HubAnswer { status: number; text: string; json: unknown }

/** The hub could not be reached, or TLS failed: retry later. Carries the TLS/socket error code. */
export class HubUnreachableError extends Error {
  constructor(message: string, readonly code: string | undefined) { super(message); }
}

const DEFAULT_MAX_BYTES = 1024 * 1024;

export function hubRequest(url: URL, req: HubRequest): Promise<HubAnswer> {
  const body = req.body === undefined ? undefined : JSON.stringify(req.body);
  const headers: Record<string, string> = { ...req.headers };
  if (body !== undefined) headers['content-type'] = 'application/json';
  const maxBytes = req.maxBytes ?? DEFAULT_MAX_BYTES;
  const tls = url.protocol === 'https:' ? {
    ...(req.tls?.ca !== undefined ? { ca: req.tls.ca } : {}),
    ...(req.tls?.cert !== undefined ? { cert: req.tls.cert } : {}),
    ...(req.tls?.key !== undefined ? { key: req.tls.key } : {}),
    rejectUnauthorized: req.tls?.rejectUnauthorized ?? true,
  } : {};
  const send = url.protocol === 'https:' ? httpsRequest : httpRequest;
  return new Promise((resolve, reject) => {
    const fail = (err: unknown) => {
      const code = typeof err === 'object' && err !== null && 'code' in err && typeof err.code === 'string' ? err.code : undefined;
      reject(new HubUnreachableError(`cannot reach cloudcore at ${url.origin}: ${describeCloudError(err)}`, code));
    };
    const request = send(url, { method: req.method, headers, agent: false, timeout: req.timeoutMs ?? 15_000, ...tls }, (res: IncomingMessage) => {
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (chunk: Buffer) => {
        size += chunk.length;
        if (size > maxBytes) { request.destroy(new Error(`answer larger than ${maxBytes} bytes`)); return; }
        chunks.push(chunk);
      });
      res.on('error', fail);
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let json: unknown = undefined;
        try { json = JSON.parse(text); } catch { json = undefined; }
        resolve({ status: res.statusCode ?? 0, text, json });
      });
    });
    request.on('timeout', () => request.destroy(new Error(`no answer within ${(req.timeoutMs ?? 15_000) / 1000} s`)));
    request.on('error', fail);
    request.end(body);
  });
}

/** The `error` (and `code`) of a cloud error body, for messages. */
export function answerError(answer: HubAnswer): { message: string; code: string | undefined } {
  const body = answer.json;
  const field = (name: string) => (typeof body === 'object' && body !== null && name in body ? (body as Record<string, unknown>)[name] : undefined);
  const message = field('error') ?? field('message');
  const code = field('code');
  return { message: typeof message === 'string' ? message : `HTTP ${answer.status}`, code: typeof code === 'string' ? code : undefined };
}
