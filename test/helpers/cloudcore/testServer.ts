import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Fastify, { type FastifyInstance } from 'fastify';
import { openSqliteStore, type SqliteStoreOptions } from '../../../cloudcore/store/sqliteStore.js';
import type { Store } from '../../../cloudcore/store/store.js';
import type { TelemetryStore } from '../../../cloudcore/telemetry/telemetryStore.js';
import { apiPlugin, registerErrorHandling } from '../../../cloudcore/api/index.js';
import { AuditFile } from '../../../cloudcore/audit/auditFile.js';
import type { FleetLinks } from '../../../cloudcore/api/views/fleetView.js';

/**
 * Test harness: the real API on a real SQLite file in a temp dir, listening on 127.0.0.1:0,
 * driven with fetch. Not a test itself; the `*.test.ts` files next to it use it.
 */

export const ADMIN_TOKEN = 'admin-token-for-tests';
export const READONLY_TOKEN = 'readonly-token-for-tests';

export interface ApiResponse {
  status: number;
  headers: Headers;
  body: unknown;
}

export interface CallOptions {
  /** Sent as JSON unless `rawBody` is given. */
  body?: unknown;
  rawBody?: string;
  /** Bearer token; defaults to the admin token, null sends none. */
  token?: string | null;
  headers?: Record<string, string>;
}

export interface TestApi {
  /** http://127.0.0.1:<port> */
  origin: string;
  /** origin + /api/v1 */
  baseUrl: string;
  store: Store;
  /** The audit log, in the temp dir (`audit.log`). */
  audit: AuditFile;
  call(method: string, path: string, opts?: CallOptions): Promise<ApiResponse>;
  /** Opens a watch (path under /api/v1, or an absolute URL); read it with `NdjsonReader`. */
  stream(path: string, signal: AbortSignal): Promise<Response>;
  close(): Promise<void>;
}

export interface TestApiOptions {
  store?: Partial<SqliteStoreOptions>;
  /** Passed to the API as its telemetry store; the test owns (and closes) it. */
  telemetry?: TelemetryStore;
  /** The hub's live view (a double: tests without a hub say which nodes are connected). */
  links?: FleetLinks;
  /** Agent versions the API accepts upgrades to (what cloudcore's /dist would serve). */
  agentVersions?: () => readonly string[];
  /** Adds routes of the test's own to the root instance before it listens. */
  configure?: (app: FastifyInstance, store: Store) => void;
}

export async function startTestApi(options: TestApiOptions = {}): Promise<TestApi> {
  const dir = mkdtempSync(join(tmpdir(), 'edgefleet-api-'));
  const store = await openSqliteStore({ path: join(dir, 'store.db'), ...options.store });
  const app = Fastify({ logger: false });
  registerErrorHandling(app);
  const audit = new AuditFile({ dir, maxBytes: 1 << 20, files: 1 });
  await app.register(apiPlugin, {
    store, audit, tokens: { admin: ADMIN_TOKEN, readonly: READONLY_TOKEN }, ...(options.telemetry ? { telemetry: options.telemetry } : {}),
    ...(options.links ? { links: options.links } : {}),
    ...(options.agentVersions ? { agentVersions: options.agentVersions } : {}),
  });
  options.configure?.(app, store);
  await app.listen({ host: '127.0.0.1', port: 0 });
  const address = app.server.address();
  if (address === null || typeof address === 'string') throw new Error('expected a TCP address');
  const origin = `http://127.0.0.1:${address.port}`;
  const baseUrl = `${origin}/api/v1`;

  const call = async (method: string, path: string, opts: CallOptions = {}): Promise<ApiResponse> => {
    const headers: Record<string, string> = { ...opts.headers };
    const token = opts.token === undefined ? ADMIN_TOKEN : opts.token;
    if (token !== null) headers.authorization = `Bearer ${token}`;
    let body: string | undefined = opts.rawBody;
    if (body === undefined && opts.body !== undefined) body = JSON.stringify(opts.body);
    if (body !== undefined && !Object.keys(headers).some((h) => h.toLowerCase() === 'content-type')) {
      headers['content-type'] = 'application/json';
    }
    const res = await fetch(`${baseUrl}${path}`, { method, headers, body });
    const text = await res.text();
    let parsed: unknown = text;
    try { parsed = text ? JSON.parse(text) : undefined; } catch { /* not JSON: keep the text */ }
    return { status: res.status, headers: res.headers, body: parsed };
  };

  return {
    origin,
    baseUrl,
    store,
    audit,
    call,
    stream: (path, signal) => fetch(path.startsWith('http') ? path : `${baseUrl}${path}`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` }, signal }),
    async close() {
      await app.close();
      await store.close();
      audit.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Reads NDJSON lines from a streaming response as they arrive. */
export class NdjsonReader {
  private readonly reader: ReadableStreamDefaultReader<Uint8Array>;
  private readonly decoder = new TextDecoder();
  private buffered = '';

  constructor(res: Response) {
    if (!res.body) throw new Error('response has no body');
    this.reader = res.body.getReader();
  }

  /** The next line, parsed; undefined once the stream has ended. */
  async next(timeoutMs = 20_000): Promise<unknown> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const newline = this.buffered.indexOf('\n');
      if (newline >= 0) {
        const line = this.buffered.slice(0, newline);
        this.buffered = this.buffered.slice(newline + 1);
        return JSON.parse(line);
      }
      const remaining = deadline - Date.now();
      if (remaining <= 0) throw new Error(`no NDJSON line within ${timeoutMs} ms`);
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`no NDJSON line within ${timeoutMs} ms`)), remaining);
      });
      try {
        const chunk = await Promise.race([this.reader.read(), timeout]);
        if (chunk.done) return undefined;
        this.buffered += this.decoder.decode(chunk.value, { stream: true });
      } finally {
        clearTimeout(timer);
      }
    }
  }

  async take(count: number): Promise<unknown[]> {
    const lines: unknown[] = [];
    for (let i = 0; i < count; i++) lines.push(await this.next());
    return lines;
  }
}

/** Waits until `condition` holds, polling; for effects that land asynchronously. */
export async function eventually(condition: () => boolean | Promise<boolean>, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 25));
  }
}
