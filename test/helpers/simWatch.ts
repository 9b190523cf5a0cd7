import { z } from 'zod';

/**
 * A `?watch=true` NDJSON stream of the operator API that survives cloudcore restarts: when the
 * stream ends it reconnects with `resourceVersion=<last seen>` so no change is missed (the
 * store replays from its event log). Every line is parsed with zod before it is handed on.
 */

const WatchLineSchema = z.looseObject({
  type: z.enum(['ADDED', 'MODIFIED', 'DELETED']),
  object: z.looseObject({ metadata: z.looseObject({ name: z.string(), resourceVersion: z.number().int().optional() }) }),
});
export type WatchLine = z.infer<typeof WatchLineSchema>;

export interface NdjsonWatchOptions {
  /** e.g. `http://127.0.0.1:1234/api/v1/workloads?app=web` (watch=true and resourceVersion are added). */
  url: string;
  token: string;
  onEvent: (line: WatchLine) => void;
  /** Start after this revision instead of with an ADDED per existing object. */
  fromRevision?: number;
}

export class NdjsonWatch {
  lastRevision: number | undefined;
  reconnects = 0;
  /** Lines that did not parse, or HTTP errors; a test should assert this stays empty. */
  readonly errors: string[] = [];
  private controller: AbortController | undefined;
  private closed = false;
  private loop: Promise<void> = Promise.resolve();

  constructor(private readonly opts: NdjsonWatchOptions) {
    this.lastRevision = opts.fromRevision;
  }

  /** Resolves once the first response head is in (the server holds the stream open). */
  start(): Promise<void> {
    return new Promise((resolve, reject) => {
      let first = true;
      this.loop = (async () => {
        for (let attempt = 0; !this.closed; attempt++) {
          try {
            await this.once(() => { if (first) { first = false; resolve(); } });
          } catch (err) {
            if (this.closed) break;
            if (first && attempt >= 20) { reject(err as Error); return; }
          }
          if (this.closed) break;
          this.reconnects++;
          await new Promise((r) => setTimeout(r, Math.min(1000, 100 * (attempt + 1))));
        }
      })();
    });
  }

  private async once(onOpen: () => void): Promise<void> {
    const url = new URL(this.opts.url);
    url.searchParams.set('watch', 'true');
    if (this.lastRevision !== undefined) url.searchParams.set('resourceVersion', String(this.lastRevision));
    this.controller = new AbortController();
    const res = await fetch(url, { headers: { authorization: `Bearer ${this.opts.token}` }, signal: this.controller.signal });
    if (!res.ok || !res.body) {
      const text = await res.text().catch(() => '');
      this.errors.push(`GET ${url.pathname}${url.search}: HTTP ${res.status} ${text.slice(0, 200)}`);
      throw new Error(`watch refused: HTTP ${res.status}`);
    }
    onOpen();
    const decoder = new TextDecoder();
    let buffered = '';
    for await (const chunk of res.body) {
      buffered += decoder.decode(chunk as Uint8Array, { stream: true });
      let newline: number;
      while ((newline = buffered.indexOf('\n')) >= 0) {
        const text = buffered.slice(0, newline);
        buffered = buffered.slice(newline + 1);
        if (text.trim()) this.line(text);
      }
    }
  }

  private line(text: string): void {
    let parsed;
    try {
      parsed = WatchLineSchema.safeParse(JSON.parse(text));
    } catch {
      this.errors.push(`not JSON: ${text.slice(0, 200)}`);
      return;
    }
    if (!parsed.success) {
      // Not every line is an object change (e.g. a bookmark or heartbeat line); note it, skip it.
      if (!/"type"\s*:\s*"(BOOKMARK|HEARTBEAT|ERROR)"/.test(text)) this.errors.push(`unexpected line: ${text.slice(0, 200)}`);
      return;
    }
    const rv = parsed.data.object.metadata.resourceVersion;
    if (rv !== undefined) this.lastRevision = Math.max(this.lastRevision ?? 0, rv);
    this.opts.onEvent(parsed.data);
  }

  async close(): Promise<void> {
    this.closed = true;
    this.controller?.abort();
    await this.loop.catch(() => undefined);
  }
}
