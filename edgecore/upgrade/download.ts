import { closeSync, openSync, statSync, truncateSync, writeSync } from 'node:fs';
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { resumeFrom, retryDelayMs } from './decide.js';

/**
 * Downloads from cloudcore's `/dist` (docs/install.md, "Upgrade"): small files whole, the
 * artefact RESUMABLY into a `.part` file with HTTP Range, so a cut link goes on from the byte it
 * stopped at instead of from zero (a slow field link may take many tries). HTTPS trusts the CA
 * bundle the node got at its join, as the link does.
 */

export interface FetchOptions {
  /** PEM bundle to trust for https (the node identity's); undefined: the system's CAs. */
  ca?: string | undefined;
  signal: AbortSignal;
}

const REQUEST_TIMEOUT_MS = 30_000;

function get(url: URL, headers: Record<string, string>, opts: FetchOptions): Promise<IncomingMessage> {
  return new Promise((resolve, reject) => {
    const request = url.protocol === 'https:' ? httpsRequest : httpRequest;
    const req = request(url, {
      method: 'GET', headers, signal: opts.signal, timeout: REQUEST_TIMEOUT_MS,
      ...(url.protocol === 'https:' && opts.ca !== undefined ? { ca: opts.ca } : {}),
    }, resolve);
    req.on('timeout', () => req.destroy(new Error(`no answer from ${url.origin} within ${REQUEST_TIMEOUT_MS / 1000} s`)));
    req.on('error', reject);
    req.end();
  });
}

/** A small file (SHA256SUMS, its signature) whole; refused past `maxBytes`. */
export async function fetchSmall(url: URL, maxBytes: number, opts: FetchOptions): Promise<Buffer> {
  const res = await get(url, {}, opts);
  if (res.statusCode !== 200) {
    res.resume();
    throw new Error(`GET ${url.pathname}: HTTP ${res.statusCode ?? '?'}`);
  }
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of res as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > maxBytes) { res.destroy(); throw new Error(`GET ${url.pathname}: more than ${maxBytes} bytes`); }
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}

export interface ResumableOptions extends FetchOptions {
  /** The artefact's size from the frame: more is refused (a bounded download). */
  size: number;
  /** Called as bytes arrive (held bytes in total); the caller throttles its reports. */
  onProgress: (bytes: number) => void;
  /** Tries in a row that bring no new byte before giving up. */
  maxFailures?: number;
  onRetry?: (err: Error, delayMs: number, have: number) => void;
}

const sizeOf = (path: string): number => { try { return statSync(path).size; } catch { return 0; } };

/** Fetches `url` into `part` until it holds `size` bytes. Returns the number of HTTP requests made. */
export async function downloadResumable(url: URL, part: string, opts: ResumableOptions): Promise<number> {
  const maxFailures = opts.maxFailures ?? 8;
  let failures = 0;
  let requests = 0;
  for (;;) {
    const have = sizeOf(part);
    const plan = resumeFrom(have, opts.size);
    if (plan.done) return requests;
    if (plan.restart) truncateSync(part, 0);
    try {
      requests++;
      const gained = await fetchOnce(url, part, plan.range === null ? 0 : have, opts);
      if (gained > 0) failures = 0;
    } catch (err) {
      if (opts.signal.aborted) throw err;
      failures = sizeOf(part) > have ? 1 : failures + 1;
      if (failures >= maxFailures) throw new Error(`download of ${url.pathname} failed ${failures} times in a row: ${(err as Error).message}`);
      const delay = retryDelayMs(failures);
      opts.onRetry?.(err as Error, delay, sizeOf(part));
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(resolve, delay);
        opts.signal.addEventListener('abort', () => { clearTimeout(timer); reject(opts.signal.reason as Error); }, { once: true });
      });
    }
  }
}

/** One request from byte `from`; appends to `part`. Returns the bytes it added. */
async function fetchOnce(url: URL, part: string, from: number, opts: ResumableOptions): Promise<number> {
  const res = await get(url, from > 0 ? { range: `bytes=${from}-` } : {}, opts);
  let start: number;
  if (res.statusCode === 206) {
    const m = /^bytes (\d+)-(\d+)\/(\d+)$/.exec(res.headers['content-range'] ?? '');
    if (!m || Number(m[1]) !== from || Number(m[3]) !== opts.size) {
      res.resume();
      throw new Error(`GET ${url.pathname}: Content-Range "${res.headers['content-range'] ?? ''}" does not continue byte ${from} of ${opts.size}`);
    }
    start = from;
  } else if (res.statusCode === 200) {
    // The server ignored the range: the whole file comes again, from zero.
    start = 0;
  } else {
    res.resume();
    if (res.statusCode === 416) truncateSync(part, 0);
    throw new Error(`GET ${url.pathname}: HTTP ${res.statusCode ?? '?'}`);
  }
  const length = Number(res.headers['content-length'] ?? NaN);
  if (Number.isFinite(length) && start + length > opts.size) {
    res.resume();
    throw new Error(`GET ${url.pathname}: ${start + length} bytes, but the cloud announced ${opts.size}`);
  }
  const fd = openSync(part, start === 0 ? 'w' : 'a', 0o600);
  let held = start;
  // Each chunk written as it arrives, synchronously (a local disk outpaces any field link): when
  // the link breaks, Node drops what a paused response or an async iterator still buffered, and
  // those bytes would be fetched again. Here every byte received is on disk.
  const failure = await new Promise<Error | null>((resolve) => {
    let settled = false;
    const settle = (err: Error | null): void => { if (!settled) { settled = true; resolve(err); } };
    res.on('data', (chunk: Buffer) => {
      if (settled) return;
      held += chunk.length;
      if (held > opts.size) {
        res.destroy();
        settle(new Error(`GET ${url.pathname}: more than the ${opts.size} bytes announced`));
        return;
      }
      try {
        writeSync(fd, chunk);
      } catch (err) {
        res.destroy();
        settle(err as Error);
        return;
      }
      opts.onProgress(held);
    });
    res.on('end', () => settle(res.complete ? null : new Error(`GET ${url.pathname}: the connection closed after ${held} of ${opts.size} bytes`)));
    res.on('error', (err) => settle(err));
    res.on('close', () => settle(res.complete ? null : new Error(`GET ${url.pathname}: the connection closed after ${held} of ${opts.size} bytes`)));
  });
  closeSync(fd);
  if (failure) throw failure;
  return held - start;
}
