import type { Etcd3 } from 'etcd3';
import { z } from 'zod';
import { clusterKey, deadline, errorMessage, retryOnce } from './etcdCalls.js';
import { PrefixView } from './prefixView.js';
import type { ReplicaLease } from './replicaLease.js';
import type { ViewEntry } from './viewState.js';

/**
 * Which replicas are alive: each puts `<p>cluster/replicas/<id>` = {id, url, version, startedAt}
 * under its replica lease, so a replica that dies drops out by itself after the TTL. Every replica
 * keeps the whole list in a watched view (a handful of entries), to route per-node work to the
 * replica that holds the node's session.
 */

export const REPLICAS_PREFIX = 'cluster/replicas/';

const replicaIdSchema = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/, 'a replica id is 1–63 letters, digits, ".", "_" or "-", starting with a letter or digit');

export const replicaInfoSchema = z.object({
  id: replicaIdSchema,
  /** Where other replicas reach this one (its replica-to-replica API). */
  url: z.string().url(),
  version: z.string().min(1),
  startedAt: z.string().datetime(),
}).strict();

export type ReplicaInfo = z.infer<typeof replicaInfoSchema>;

export function parseReplicaId(id: string): string {
  const parsed = replicaIdSchema.safeParse(id);
  if (!parsed.success) throw new Error(`replica id ${JSON.stringify(id)}: ${parsed.error.issues[0]!.message}`);
  return parsed.data;
}

/** An entry read back from etcd, or why it cannot be used (another version's format, a hand edit). */
export function parseReplicaEntry(entry: ViewEntry): ReplicaInfo | { invalid: string } {
  let json: unknown;
  try {
    json = JSON.parse(entry.value);
  } catch {
    return { invalid: `replica entry ${entry.key} is not JSON` };
  }
  const parsed = replicaInfoSchema.safeParse(json);
  if (!parsed.success) return { invalid: `replica entry ${entry.key}: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}` };
  if (parsed.data.id !== entry.key) return { invalid: `replica entry ${entry.key} names replica ${parsed.data.id}` };
  return parsed.data;
}

export interface ReplicaRegistryOptions {
  onWarning?(message: string): void;
  resyncMs?: number;
  /** Deadline of the registration put (default 5 s). */
  callMs?: number;
}

export class ReplicaRegistry {
  private closed = false;

  private constructor(private readonly client: Etcd3, private readonly prefix: string, private readonly lease: ReplicaLease,
    readonly self: ReplicaInfo, private readonly view: PrefixView, private readonly opts: ReplicaRegistryOptions) {
    // A re-granted lease holds nothing: put our entry again under it.
    lease.on('granted', () => void this.register().catch((err) => opts.onWarning?.(`could not register replica ${self.id} again: ${errorMessage(err)}`)));
  }

  /** Registers `self` under the replica lease and starts the watched view of every replica. */
  static async start(client: Etcd3, prefix: string, lease: ReplicaLease, self: ReplicaInfo, opts: ReplicaRegistryOptions = {}): Promise<ReplicaRegistry> {
    const info = replicaInfoSchema.parse(self);
    const view = await PrefixView.start(client, clusterKey(prefix, REPLICAS_PREFIX), { onWarning: opts.onWarning, resyncMs: opts.resyncMs });
    const registry = new ReplicaRegistry(client, prefix, lease, info, view, opts);
    try {
      await registry.register();
    } catch (err) {
      view.close();
      throw err;
    }
    return registry;
  }

  private async register(): Promise<void> {
    if (this.closed) return;
    const leaseId = await this.lease.leaseId();
    await retryOnce(() => this.client.kv.put({ key: clusterKey(this.prefix, REPLICAS_PREFIX + this.self.id), value: Buffer.from(JSON.stringify(this.self)), lease: leaseId }, deadline(this.opts.callMs ?? 5_000)));
  }

  /** Live replicas (from the view), by id; entries that do not parse are left out with a warning. */
  list(): ReplicaInfo[] {
    const replicas: ReplicaInfo[] = [];
    for (const entry of this.view.values()) {
      const parsed = parseReplicaEntry(entry);
      if ('invalid' in parsed) this.opts.onWarning?.(parsed.invalid);
      else replicas.push(parsed);
    }
    return replicas.sort((a, b) => a.id.localeCompare(b.id));
  }

  get(id: string): ReplicaInfo | undefined {
    const entry = this.view.get(id);
    if (!entry) return undefined;
    const parsed = parseReplicaEntry(entry);
    return 'invalid' in parsed ? undefined : parsed;
  }

  /** Stops the view and removes our entry now (a clean shutdown; the lease's end would remove it anyway). */
  async close(): Promise<void> {
    this.closed = true;
    this.view.close();
    await this.client.kv.deleteRange({ key: clusterKey(this.prefix, REPLICAS_PREFIX + this.self.id) }, deadline()).catch(() => undefined);
  }
}
