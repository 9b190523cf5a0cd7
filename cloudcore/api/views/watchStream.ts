import type { ServerResponse } from 'node:http';
import type { FastifyReply } from 'fastify';
import type { AnyObject, Kind } from '../../../protocol/index.js';
import { StreamSlots } from '../../limits/streamSlots.js';
import type { ObjectOf, Store, WatchEvent, WatchEventType } from '../../store/store.js';
import { present } from './present.js';
import { SelectionFilter } from './watchFilter.js';

/**
 * `?watch=true`: a long-lived HTTP response carrying NDJSON, one `{"type","object"}` per line
 * for every change, fed by `store.watch`. Errors that happen before the first byte (a compacted
 * revision → GoneError → 410) go through the normal error handler; after that the response is
 * ours (hijacked) and simply ends.
 */

export interface WatchRequest<K extends Kind> {
  kind: K;
  /** Only objects bound to this node (Workloads). */
  node?: string;
  /** Replay changes after this revision; undefined: first an ADDED per existing object. */
  fromRevision?: number;
  /** Which objects the client asked for (label selector, app, …). */
  includes: (obj: ObjectOf<K>) => boolean;
}

/** Bytes a client may fall behind before we drop it; it can resume from its last revision. */
const DEFAULT_MAX_BUFFERED_BYTES = 8 * 1024 * 1024;
/** Open streams per source address when the API is built without a setting (tests). */
export const DEFAULT_MAX_STREAMS_PER_ADDRESS = 32;

function isKind<K extends Kind>(obj: AnyObject, kind: K): obj is ObjectOf<K> {
  return obj.kind === kind;
}

function ndjsonLine(type: WatchEventType, object: AnyObject): string {
  return `${JSON.stringify({ type, object: present(object) })}\n`;
}

/**
 * The open watch streams of one API instance, so shutdown can end them. `slots` bounds every
 * long-lived response of the API (watches here, log follows and the fleet watch in their routes)
 * per source address.
 */
export class WatchStreams {
  private readonly open = new Set<ServerResponse>();

  constructor(
    private readonly store: Store,
    private readonly maxBufferedBytes = DEFAULT_MAX_BUFFERED_BYTES,
    readonly slots = new StreamSlots(DEFAULT_MAX_STREAMS_PER_ADDRESS),
  ) {}

  get openCount(): number {
    return this.open.size;
  }

  async serve<K extends Kind>(reply: FastifyReply, request: WatchRequest<K>): Promise<void> {
    // Before anything is listed: a refused stream (429) costs no store read.
    const releaseSlot = this.slots.take(reply.request.raw.socket.remoteAddress, reply.raw);
    try {
      await this.start(reply, request);
    } catch (err) {
      releaseSlot();
      throw err;
    }
  }

  private async start<K extends Kind>(reply: FastifyReply, request: WatchRequest<K>): Promise<void> {
    const filter = new SelectionFilter<ObjectOf<K>>(request.includes, request.fromRevision === undefined);
    const lines: string[] = [];
    let fromRevision = request.fromRevision;
    if (fromRevision === undefined) {
      const listing = await this.store.list(request.kind, { node: request.node });
      for (const obj of listing.items) {
        if (!request.includes(obj)) continue;
        filter.markHeld(obj.metadata.name);
        lines.push(ndjsonLine('ADDED', obj));
      }
      fromRevision = listing.revision;
    }

    // The store may deliver replayed events before `watch()` resolves; queue them until the
    // response head is out.
    let send = (line: string) => { lines.push(line); };
    const onEvent = (event: WatchEvent) => {
      if (!isKind(event.object, request.kind)) return;
      const type = filter.next(event.type, event.object.metadata.name, event.object);
      if (type) send(ndjsonLine(type, event.object));
    };
    // A watch that ends on its own (a distributed store compacted past it) ends the stream as a
    // shutdown does: the client watches again, from a fresh list if its revision is gone.
    let ended = false;
    const onError = () => { ended = true; reply.raw.end(); };
    const watch = await this.store.watch({ kind: request.kind, node: request.node, fromRevision }, onEvent, onError);

    const raw = reply.raw;
    reply.hijack();
    const stop = () => {
      watch.close();
      this.open.delete(raw);
    };
    raw.once('close', stop);
    if (ended || raw.destroyed || !raw.socket || raw.socket.destroyed) {
      stop(); // the client left while we were listing
      return;
    }
    this.open.add(raw);
    raw.writeHead(200, {
      'content-type': 'application/x-ndjson',
      'cache-control': 'no-cache',
      'x-content-type-options': 'nosniff',
    });
    raw.flushHeaders();
    send = (line) => {
      // write() queues in memory when the client reads slower than we write; past the limit
      // the client is dropped rather than letting one stream grow without bound.
      if (!raw.write(line) && raw.writableLength > this.maxBufferedBytes) raw.destroy();
    };
    for (const line of lines.splice(0)) send(line);
  }

  /** Ends every open stream (server shutdown): clients see a clean end and may reconnect. */
  closeAll(): void {
    for (const raw of this.open) raw.end();
  }
}
