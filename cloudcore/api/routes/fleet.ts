import type { ServerResponse } from 'node:http';
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { NameSchema, NodePhaseSchema } from '../../../protocol/index.js';
import type { Store, Watch } from '../../store/store.js';
import { concernsChange, FLEET_SORT_KEYS, FleetIndex, queryFleet, type FleetLinks, type FleetPage } from '../views/fleetView.js';
import { getOrNotFound, type ResourceRoutesOptions } from '../plumbing/routeContext.js';
import { LabelSelectorParam, NameParams, type ZodTypeProvider } from '../plumbing/zodSchemas.js';
import { STATS_WINDOW_MS } from '../../telemetry/nodeStatsHistory.js';

/**
 * For the dashboard: `GET /fleet` (one row per node, filtered/sorted/paged on the server),
 * `GET /fleet/changes` (a coalesced NDJSON stream saying "what this page shows changed") and
 * `GET /nodes/{name}/stats` (the node's last hour of CPU/memory/disk and its link quality).
 * The fleet index is built on first use from one list per kind and then kept current by a
 * store watch, so a request never rereads 10,000 objects.
 */

export interface FleetRoutesOptions extends ResourceRoutesOptions {
  /** The hub's live view (link quality, resource samples); without it those fields are empty. */
  links?: FleetLinks | undefined;
}

const WholeNumber = z.string().regex(/^\d+$/, 'must be a whole number').transform(Number);
export const MAX_FLEET_LIMIT = 500;

export const FleetQuerySchema = z.strictObject({
  labelSelector: LabelSelectorParam.optional(),
  status: NodePhaseSchema.optional(),
  search: z.string().max(253).transform((s) => s.trim().toLowerCase()).optional(),
  sort: z.enum(FLEET_SORT_KEYS).default('name'),
  order: z.enum(['asc', 'desc']).default('asc'),
  limit: WholeNumber.pipe(z.number().int().min(1).max(MAX_FLEET_LIMIT)).default(50),
  offset: WholeNumber.default(0),
});

const ChangesQuery = z.strictObject({
  node: NameSchema.optional(),
  app: NameSchema.optional(),
  device: NameSchema.optional(),
  /** Report changes after this revision (what the page loaded); default: from now. */
  resourceVersion: WholeNumber.optional(),
  /** Least time between two lines: a 10,000-node fleet changes many times a second. */
  intervalMs: WholeNumber.pipe(z.number().int().min(100).max(60_000)).default(1000),
}).refine((q) => [q.node, q.app, q.device].filter((v) => v !== undefined).length <= 1, { message: 'give at most one of node, app, device', path: ['node'] });

const StatsQuery = z.strictObject({
  since: z.iso.datetime({ offset: true, error: 'must be an ISO time like 2025-01-01T00:00:00Z' }).optional(),
});

/** Lists Node, Workload and Device once, then follows every change after the oldest listing. */
/** `onStale`: the index stopped following the store (its watch ended on its own); build a new one. */
async function buildIndex(store: Store, onStale: () => void): Promise<{ index: FleetIndex; watch: Watch }> {
  const index = new FleetIndex();
  const nodes = await store.list('Node');
  const workloads = await store.list('Workload');
  const devices = await store.list('Device');
  for (const listing of [nodes, workloads, devices]) {
    for (const obj of listing.items) index.apply('ADDED', obj, listing.revision);
  }
  // Replaying from the oldest listing may re-apply a change a later listing already holds:
  // harmless, as every event sets an object's whole state and the replay ends at the newest.
  const from = Math.min(nodes.revision, workloads.revision, devices.revision);
  const watch = await store.watch({ fromRevision: from }, (event) => index.apply(event.type, event.object, event.revision), () => onStale());
  return { index, watch };
}

export async function fleetRoutes(app: FastifyInstance, opts: FleetRoutesOptions): Promise<void> {
  const { store, links } = opts;
  const api = app.withTypeProvider<ZodTypeProvider>();
  let built: Promise<{ index: FleetIndex; watch: Watch }> | undefined;
  const index = async () => {
    built ??= buildIndex(store, () => { built = undefined; }).catch((err: unknown) => { built = undefined; throw err; });
    return (await built).index;
  };
  app.addHook('onClose', async () => { if (built) (await built.catch(() => undefined))?.watch.close(); });
  const openStreams = new Set<ServerResponse>();
  // Streams never end on their own; end them so the server can close.
  app.addHook('preClose', async () => { for (const raw of openStreams) raw.end(); });

  api.get('/fleet', { schema: { querystring: FleetQuerySchema } }, async (request): Promise<FleetPage> => {
    const { labelSelector, status, search, ...paging } = request.query;
    return queryFleet(await index(), {
      ...paging,
      ...(labelSelector ? { labelSelector } : {}),
      ...(status ? { status } : {}),
      ...(search ? { search } : {}),
    }, links, Date.now());
  });

  /**
   * One line `{"type":"CHANGED","resourceVersion":N}` whenever something the page shows changed
   * (at most one per intervalMs, carrying the newest revision): the page then reloads what it
   * shows. One stream per page instead of one per kind keeps a browser well under its six
   * connections per host, and a busy fleet costs one small line a second, not every object.
   */
  api.get('/fleet/changes', { schema: { querystring: ChangesQuery } }, async (request, reply) => {
    const { resourceVersion, intervalMs, ...filter } = request.query;
    const from = resourceVersion ?? await store.revision();
    let pending: number | undefined;
    let lastSent = 0;
    let timer: NodeJS.Timeout | undefined;
    let write = (_line: string) => {};
    const flush = () => {
      timer = undefined;
      if (pending === undefined) return;
      write(`${JSON.stringify({ type: 'CHANGED', resourceVersion: pending })}\n`);
      pending = undefined;
      lastSent = Date.now();
    };
    const releaseSlot = opts.watches.slots.take(request.raw.socket.remoteAddress, reply.raw);
    // Throws GoneError (410) for a compacted revision, before anything is sent.
    const watch = await store.watch({ fromRevision: from }, (event) => {
      if (!concernsChange(filter, event.object)) return;
      pending = event.revision;
      timer ??= setTimeout(flush, Math.max(0, lastSent + intervalMs - Date.now()));
    }, () => reply.raw.end()).catch((err: unknown) => { releaseSlot(); throw err; });
    const raw = reply.raw;
    reply.hijack();
    const stop = () => {
      watch.close();
      clearTimeout(timer);
      openStreams.delete(raw);
    };
    raw.once('close', stop);
    if (raw.destroyed) return stop();
    openStreams.add(raw);
    raw.writeHead(200, { 'content-type': 'application/x-ndjson', 'cache-control': 'no-cache', 'x-content-type-options': 'nosniff' });
    raw.flushHeaders();
    write = (line) => { raw.write(line); };
  });

  api.get('/nodes/:name/stats', { schema: { params: NameParams, querystring: StatsQuery } }, async (request) => {
    const name = request.params.name;
    await getOrNotFound(store, 'Node', name);
    const now = Date.now();
    const since = request.query.since !== undefined ? Date.parse(request.query.since) : now - STATS_WINDOW_MS;
    const series = links?.stats.series(name, since, now) ?? { points: [], memoryTotalBytes: null, diskTotalBytes: null };
    const quality = links?.quality.view(name, now) ?? null;
    return {
      memoryTotalBytes: series.memoryTotalBytes,
      diskTotalBytes: series.diskTotalBytes,
      items: series.points.map((p) => ({ ...p, t: new Date(p.t).toISOString() })),
      link: quality ? { ...quality, connected: links?.liveLastSeen(name) !== undefined } : null,
    };
  });
}
