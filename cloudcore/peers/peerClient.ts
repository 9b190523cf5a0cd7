import { Agent as HttpAgent, request as httpRequest, type IncomingMessage, type ClientRequest } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import { z } from 'zod';
import { ErrorBodySchema, ExecAnswerSchema, TelemetryListSchema, type TelemetrySample } from '../../protocol/index.js';
import { EdgeRequestError, type ExecOutcome, type LogSink } from '../hub/operatorRequests.js';
import { MAX_PEER_LOG_RECORD_BYTES, PEER_LOG_IDLE_MS, PEER_PREFIX, PeerLogRecordSchema, REQUEST_ID_HEADER } from './peerWire.js';

/**
 * Calls another replica's `/peer/v1` routes. Over HTTPS the peer's certificate must chain to the
 * cluster CA (every replica's server certificate comes from it) and name the host dialled; plain
 * HTTP only when cloudcore itself runs --insecure-plain-http. Every call has a deadline; a log
 * stream has one until the peer answers, then lives until either side closes it.
 */

export type PeerTrust = { caPem: string } | { plainHttp: true };

export interface PeerClientOptions {
  replicaToken: string;
  trust: PeerTrust;
  /** Until a peer's answer (or a log stream's first byte of headers) must have come. */
  connectTimeoutMs?: number;
  /** A whole telemetry query or drop. */
  requestTimeoutMs?: number;
  /** Added to an exec's own timeout: the edge enforces that one, this covers a peer that never answers. */
  execGraceMs?: number;
  /** A peer's log stream silent this long (no lines, no heartbeat) is ended: its host is gone. */
  streamIdleMs?: number;
}

export interface PeerTarget { id: string; url: string }

const DEFAULT_CONNECT_TIMEOUT_MS = 5_000;
const DEFAULT_REQUEST_TIMEOUT_MS = 5_000;
const DEFAULT_EXEC_GRACE_MS = 15_000;
/** Telemetry answers are at most 10,000 small samples; an exec's output is bounded by the edge. */
const MAX_ANSWER_BYTES = 32 * 1024 * 1024;

/** A peer that could not be asked, or answered with an error; statusCode is what the operator's route answers. */
export class PeerError extends EdgeRequestError {}

export class PeerClient {
  private readonly agent: HttpAgent | HttpsAgent;
  private readonly connectTimeoutMs: number;
  private readonly requestTimeoutMs: number;
  private readonly execGraceMs: number;
  private readonly streamIdleMs: number;

  constructor(private readonly opts: PeerClientOptions) {
    if (opts.replicaToken.length === 0) throw new Error('PeerClient needs the replica token');
    this.agent = 'caPem' in opts.trust
      ? new HttpsAgent({ keepAlive: true, ca: opts.trust.caPem })
      : new HttpAgent({ keepAlive: true });
    this.connectTimeoutMs = opts.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS;
    this.requestTimeoutMs = opts.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS;
    this.execGraceMs = opts.execGraceMs ?? DEFAULT_EXEC_GRACE_MS;
    this.streamIdleMs = opts.streamIdleMs ?? PEER_LOG_IDLE_MS;
  }

  async exec(peer: PeerTarget, node: string, workload: string, command: string[], timeoutSeconds: number, requestId?: string): Promise<ExecOutcome> {
    const path = `/nodes/${encodeURIComponent(node)}/workloads/${encodeURIComponent(workload)}/exec`;
    const answer = await this.call(peer, 'POST', path, { command, timeoutSeconds }, timeoutSeconds * 1000 + this.execGraceMs, requestId);
    return parseAnswer(peer, ExecAnswerSchema, answer);
  }

  async telemetry(peer: PeerTarget, device: string, query: { since?: string; limit: number }): Promise<TelemetrySample[]> {
    const params = new URLSearchParams({ limit: String(query.limit), ...(query.since !== undefined ? { since: query.since } : {}) });
    const answer = await this.call(peer, 'GET', `/devices/${encodeURIComponent(device)}/telemetry?${params}`, undefined, this.requestTimeoutMs);
    return parseAnswer(peer, TelemetryListSchema, answer).items;
  }

  async dropTelemetry(peer: PeerTarget, device: string): Promise<void> {
    await this.call(peer, 'DELETE', `/devices/${encodeURIComponent(device)}/telemetry`, undefined, this.requestTimeoutMs);
  }

  /**
   * Opens a log stream at the peer. Resolves with the cancel function once the peer answered 200
   * (lines then go to `sink`, ending with `sink.end`); rejects with a PeerError otherwise.
   */
  logs(peer: PeerTarget, node: string, workload: string, query: { tail: number; follow: boolean }, sink: LogSink, requestId?: string): Promise<() => void> {
    const path = `/nodes/${encodeURIComponent(node)}/workloads/${encodeURIComponent(workload)}/logs?tail=${query.tail}&follow=${query.follow}`;
    return new Promise((resolve, reject) => {
      let ended = false;
      let idle: NodeJS.Timeout | undefined;
      const end = (error?: string) => { clearTimeout(idle); if (!ended) { ended = true; sink.end(error); } };
      const req = this.open(peer, 'GET', path, requestId);
      const timer = setTimeout(() => req.destroy(new PeerError(`replica "${peer.id}" did not answer within ${this.connectTimeoutMs} ms`, 504)), this.connectTimeoutMs);
      req.once('error', (err) => { clearTimeout(timer); reject(unreachable(peer, err)); });
      req.once('response', (res) => {
        clearTimeout(timer);
        if (res.statusCode !== 200) {
          readAll(res).then((text) => reject(peerRefusal(peer, res.statusCode ?? 0, text)), (err: Error) => reject(unreachable(peer, err)));
          return;
        }
        // From here the stream's end is told to the sink, not thrown.
        req.removeAllListeners('error');
        req.on('error', () => end(`the link to replica "${peer.id}" broke`));
        let buffered = '';
        const quiet = () => {
          clearTimeout(idle);
          idle = setTimeout(() => { end(`replica "${peer.id}" went silent for ${this.streamIdleMs} ms (no heartbeat): its host may be gone`); req.destroy(); }, this.streamIdleMs);
        };
        quiet();
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => {
          if (ended) return;
          quiet();
          buffered += chunk;
          if (buffered.length > MAX_PEER_LOG_RECORD_BYTES) { end(`replica "${peer.id}" sent a log record over ${MAX_PEER_LOG_RECORD_BYTES} bytes`); req.destroy(); return; }
          let newline: number;
          while (!ended && (newline = buffered.indexOf('\n')) >= 0) {
            const record = parseRecord(buffered.slice(0, newline));
            buffered = buffered.slice(newline + 1);
            if (!record) { end(`replica "${peer.id}" sent a log record that does not parse`); req.destroy(); return; }
            if ('lines' in record) sink.lines(record.lines);
            else { end(record.error); req.destroy(); }
          }
        });
        res.on('close', () => end(`replica "${peer.id}" closed the log stream`));
        resolve(() => { ended = true; clearTimeout(idle); req.destroy(); });
      });
      req.end();
    });
  }

  close(): void {
    this.agent.destroy();
  }

  private open(peer: PeerTarget, method: string, pathAndQuery: string, requestId?: string, body?: string): ClientRequest {
    const url = new URL(`${PEER_PREFIX}${pathAndQuery}`, peer.url);
    const https = 'caPem' in this.opts.trust;
    if (url.protocol !== (https ? 'https:' : 'http:')) {
      throw new PeerError(`replica "${peer.id}" is registered at ${peer.url}, but replicas talk ${https ? 'HTTPS (cluster CA)' : 'plain HTTP (--insecure-plain-http)'}`, 502);
    }
    const headers: Record<string, string> = { authorization: `Bearer ${this.opts.replicaToken}` };
    if (requestId !== undefined) headers[REQUEST_ID_HEADER] = requestId;
    if (body !== undefined) { headers['content-type'] = 'application/json'; headers['content-length'] = String(Buffer.byteLength(body)); }
    const options = { method, headers, agent: this.agent };
    return https ? httpsRequest(url, options) : httpRequest(url, options);
  }

  private call(peer: PeerTarget, method: string, path: string, body: unknown, deadlineMs: number, requestId?: string): Promise<{ status: number; text: string }> {
    return new Promise((resolve, reject) => {
      const payload = body === undefined ? undefined : JSON.stringify(body);
      const req = this.open(peer, method, path, requestId, payload);
      const timer = setTimeout(() => req.destroy(new PeerError(`replica "${peer.id}" did not answer within ${deadlineMs} ms`, 504)), deadlineMs);
      req.once('error', (err) => { clearTimeout(timer); reject(unreachable(peer, err)); });
      req.once('response', (res) => {
        readAll(res).then((text) => {
          clearTimeout(timer);
          const status = res.statusCode ?? 0;
          if (status >= 200 && status < 300) resolve({ status, text });
          else reject(peerRefusal(peer, status, text));
        }, (err: Error) => { clearTimeout(timer); reject(unreachable(peer, err)); });
      });
      req.end(payload);
    });
  }
}

function parseRecord(text: string) {
  try {
    const parsed = PeerLogRecordSchema.safeParse(JSON.parse(text));
    return parsed.success ? parsed.data : undefined;
  } catch {
    return undefined;
  }
}

function parseAnswer<T>(peer: PeerTarget, schema: z.ZodType<T>, answer: { text: string }): T {
  let json: unknown;
  try { json = JSON.parse(answer.text); } catch { json = undefined; }
  const parsed = schema.safeParse(json);
  if (!parsed.success) throw new PeerError(`replica "${peer.id}" answered something that is not a peer answer: ${parsed.error.issues[0]?.message ?? 'unreadable'}`, 502);
  return parsed.data;
}

function readAll(res: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    res.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_ANSWER_BYTES) { res.destroy(new Error(`answer larger than ${MAX_ANSWER_BYTES} bytes`)); return; }
      chunks.push(chunk);
    });
    res.once('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    res.once('error', reject);
    res.once('aborted', () => reject(new Error('the answer was cut off')));
  });
}

/** The peer answered with an error: its own word for the node (404, 503, 504) passes through; ours become 502. */
function peerRefusal(peer: PeerTarget, status: number, text: string): PeerError {
  let said: string | undefined;
  try { said = ErrorBodySchema.safeParse(JSON.parse(text)).data?.error; } catch { said = undefined; }
  if (status === 401) return new PeerError(`replica "${peer.id}" refused this replica's token (is the cluster replica token the same on both?)`, 502);
  const passes = status === 503 || status === 504 || (status >= 400 && status < 500);
  return new PeerError(said ?? `replica "${peer.id}" answered ${status}`, passes ? status : 502);
}

function unreachable(peer: PeerTarget, err: Error): PeerError {
  if (err instanceof PeerError) return err;
  const code = (err as { code?: string }).code;
  return new PeerError(`replica "${peer.id}" at ${peer.url} is unreachable: ${code ? `${code} ` : ''}${err.message}`, 502);
}
