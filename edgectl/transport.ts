import { request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { Readable } from 'node:stream';
import { isUntrustedCertificate } from '../protocol/tlsTrust.js';

/**
 * edgectl's one way onto the wire. node:http(s) rather than the global fetch because fetch
 * (undici) takes a custom CA only through an undici Agent, and undici is no dependency: with
 * `ca` set, the cloud's certificate is checked against that bundle ONLY (as kubeconfig's
 * certificate-authority does), for every request, the streaming ones included. Without `ca`,
 * the system store and NODE_EXTRA_CA_CERTS apply, as before.
 *
 * The answer is a WHATWG Response whose body streams as the bytes arrive, so the callers
 * (JSON answers, NDJSON watches, followed logs) read it exactly as they read fetch's.
 */

export interface WireRequest {
  method: string;
  headers: Record<string, string>;
  body?: string;
  signal?: AbortSignal | undefined;
  /** PEM bundle to verify an https server against, instead of the system store. */
  ca?: string | undefined;
}

/** Statuses whose Response may not carry a body (the constructor throws otherwise). */
const NULL_BODY_STATUS = new Set([101, 204, 205, 304]);

export function sendOverWire(url: string, req: WireRequest): Promise<Response> {
  const target = new URL(url);
  const secure = target.protocol === 'https:';
  return new Promise<Response>((resolve, reject) => {
    const options = {
      method: req.method,
      headers: { ...req.headers, ...(req.body !== undefined ? { 'content-length': String(Buffer.byteLength(req.body)) } : {}) },
      ...(req.signal ? { signal: req.signal } : {}),
      ...(secure && req.ca !== undefined ? { ca: req.ca } : {}),
    };
    const onAnswer = (answer: IncomingMessage): void => resolve(toResponse(answer, req.method));
    const outgoing = secure ? httpsRequest(target, options, onAnswer) : httpRequest(target, options, onAnswer);
    outgoing.on('error', (err) => reject(abortReason(err, req.signal)));
    outgoing.end(req.body);
  });
}

function toResponse(answer: IncomingMessage, method: string): Response {
  const headers = new Headers();
  for (const [name, value] of Object.entries(answer.headers)) {
    if (value === undefined) continue;
    for (const one of Array.isArray(value) ? value : [value]) headers.append(name, one);
  }
  const status = answer.statusCode ?? 502;
  if (NULL_BODY_STATUS.has(status) || method === 'HEAD') {
    answer.resume();
    return new Response(null, { status, statusText: answer.statusMessage ?? '', headers });
  }
  // An error after the headers (a reset, an abort) reaches the reader of the body as a rejected read.
  const body = Readable.toWeb(answer) as ReadableStream<Uint8Array>;
  return new Response(body, { status, statusText: answer.statusMessage ?? '', headers });
}

/**
 * node:http rejects an aborted request with a generic AbortError; the signal's reason says
 * whether it was a timeout (AbortSignal.timeout gives a TimeoutError), which the caller reports.
 */
function abortReason(err: Error, signal: AbortSignal | undefined): unknown {
  if (err.name === 'AbortError' && signal?.aborted && signal.reason instanceof Error) return signal.reason;
  return err;
}

/** The useful part of a failed request, with the way out for the TLS failures an operator meets first. */
export function networkReason(err: unknown, caConfigured: boolean): string {
  if (err instanceof Error && (err.name === 'TimeoutError' || err.name === 'AbortError')) return 'request timed out';
  // node:http hands over the socket's error itself; a wrapped one (as fetch's) carries it in `cause`.
  const cause = err instanceof Error && err.cause instanceof Error ? err.cause : err;
  if (!(cause instanceof Error)) return String(err);
  const aggregate = cause instanceof AggregateError ? cause.errors.find((e): e is Error => e instanceof Error) : undefined;
  const reason = (aggregate ?? cause).message || cause.name;
  if (isUntrustedCertificate(cause)) {
    return caConfigured
      ? `${reason} (the server's certificate does not chain to the CA in your edgectl config: if the cloud's CA changed, run edgectl config set-cluster again with the new pin)`
      : `${reason} (a private CA? trust the cloud's CA with: edgectl config set-cluster --server URL --ca-pin PIN, the pin cloudcore prints at start; or trust it with NODE_EXTRA_CA_CERTS=/path/to/ca.pem)`;
  }
  if (errorCode(cause) === 'ERR_TLS_CERT_ALTNAME_INVALID') {
    return `${reason} (use a --server address that the cloud's certificate names: cloudcore's --advertise-address)`;
  }
  return reason;
}

function errorCode(err: Error): string | undefined {
  const code = (err as { code?: unknown }).code;
  return typeof code === 'string' ? code : undefined;
}

export type Query = Record<string, string | number | undefined>;

/** `Warning: <text>` on stderr, as kubectl prints the API server's warnings. */
export function printWarning(text: string): void {
  process.stderr.write(`Warning: ${text}\n`);
}

/** The text of an RFC 7234 warning (`299 - "text"`); anything else is shown as it came. */
export function warningText(header: string): string {
  const quoted = /^\d{3} \S+ "((?:[^"\\]|\\.)*)"/.exec(header);
  return quoted ? quoted[1]!.replace(/\\(.)/g, '$1') : header;
}

export function queryString(query: Query | undefined): string {
  const params = new URLSearchParams();
  for (const [k, v] of Object.entries(query ?? {})) {
    if (v !== undefined && v !== '') params.set(k, String(v));
  }
  const s = params.toString();
  return s ? `?${s}` : '';
}
