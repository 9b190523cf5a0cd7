import { z } from 'zod';

/**
 * Several cloudcore replicas serve one fleet (same store, same CA): an edge is given all their
 * URLs and moves among them. This file is the list's setting and the order the edge walks it in.
 */

const HTTP_URL = /^https?:$/;

/**
 * `cloudUrl`: one URL, a comma-separated list (flag, env) or a YAML sequence. Each entry is
 * checked on its own and named by its text when it is bad. All entries share one scheme: the
 * scheme decides the node's identity (https: a certificate from the fleet's CA; http: a bearer
 * credential), and one node has one identity for every replica.
 */
export const CloudUrlsSetting = z.union([z.string(), z.array(z.string())]).transform((value, ctx): string[] => {
  const entries = (typeof value === 'string' ? value.split(',') : value).map((u) => u.trim()).filter((u) => u !== '');
  if (entries.length === 0) {
    ctx.addIssue({ code: 'custom', message: 'must be an http(s) URL of cloudcore, e.g. http://127.0.0.1:8080 (or several, comma-separated)' });
    return z.NEVER;
  }
  const seen = new Map<string, string>();
  for (const entry of entries) {
    const url = URL.canParse(entry) ? new URL(entry) : null;
    if (url === null || !HTTP_URL.test(url.protocol) || url.hostname === '') {
      ctx.addIssue({ code: 'custom', message: `"${entry}" must be an http(s) URL of cloudcore, e.g. http://127.0.0.1:8080` });
      return z.NEVER;
    }
    // `http://a:80/` and `http://a` are one replica: compare what a request would reach.
    const same = seen.get(url.href);
    if (same !== undefined) {
      ctx.addIssue({ code: 'custom', message: `"${entry}" is given twice (also as "${same}"): each replica once` });
      return z.NEVER;
    }
    seen.set(url.href, entry);
  }
  const schemes = new Set(entries.map((e) => new URL(e).protocol));
  if (schemes.size > 1) {
    ctx.addIssue({ code: 'custom', message: `mixes http:// and https:// (${entries.join(', ')}): every replica of one fleet is reached the same way (they share one CA and one node identity)` });
    return z.NEVER;
  }
  return entries;
});

/** `cloudUrlOrder`: how the edge orders the replicas it walks. */
export const CLOUD_URL_ORDERS = ['shuffled', 'listed'] as const;
export type CloudUrlOrder = typeof CLOUD_URL_ORDERS[number];
export const CloudUrlOrderSetting = z.enum(CLOUD_URL_ORDERS, { error: `must be one of: ${CLOUD_URL_ORDERS.join(', ')}` });

/**
 * The order this edge tries the replicas in, walked round. `shuffled` (the default): the list
 * shuffled once per process. Random rather than first-listed so that a fleet given the same list
 * does not land on the first replica, and — the part that matters — so the edges of a replica
 * that dies spread over the others instead of all moving to the one listed after it (KubeEdge put
 * a load balancer in front for the same reason; K3s agents learn every server). `listed`: the
 * order given, the first preferred (a site's nearest replica, the others as fallback); an edge
 * that moved on does not move back by itself. One URL: that URL.
 */
export class CloudUrlRing {
  private readonly order: readonly string[];
  private index = 0;

  constructor(readonly configured: readonly string[], opts: { order?: CloudUrlOrder; random?: () => number } = {}) {
    if (configured.length === 0) throw new Error('CloudUrlRing needs at least one URL');
    const order = [...configured];
    const random = opts.random ?? Math.random;
    for (let i = opts.order === 'listed' ? 0 : order.length - 1; i > 0; i--) {
      const j = Math.floor(random() * (i + 1));
      [order[i], order[j]] = [order[j]!, order[i]!];
    }
    this.order = order;
  }

  get size(): number { return this.order.length; }

  /** The URL the link is on, or tries next. */
  current(): string { return this.order[this.index]!; }

  /** Moves to the next replica (after a failed connect or a dropped link) and returns it. */
  advance(): string {
    this.index = (this.index + 1) % this.order.length;
    return this.current();
  }

  /** Every URL, the current one first: for one-off requests (renewal, downloads) that should try the replica that answers now. */
  fromCurrent(): string[] {
    return [...this.order.slice(this.index), ...this.order.slice(0, this.index)];
  }
}

/**
 * Runs `attempt` against each URL in turn until one answers. `isFinal(err)` marks an answer
 * that another replica would give too (a refused token, a revoked identity: the replicas share
 * one store), which ends the walk at once. When every URL failed, the error says why for each.
 */
export async function tryCloudUrls<T>(
  urls: readonly string[], attempt: (url: string) => Promise<T>, isFinal: (err: unknown) => boolean,
  onSkip?: (url: string, err: Error) => void,
): Promise<T> {
  const failures: string[] = [];
  let last: unknown;
  for (const url of urls) {
    try {
      return await attempt(url);
    } catch (err) {
      if (isFinal(err)) throw err;
      last = err;
      failures.push(`${url}: ${(err as Error).message}`);
      if (failures.length < urls.length) onSkip?.(url, err as Error);
    }
  }
  if (urls.length === 1) throw last;
  const error = new Error(`no cloudcore replica answered: ${failures.join('; ')}`);
  error.cause = last;
  throw error;
}
