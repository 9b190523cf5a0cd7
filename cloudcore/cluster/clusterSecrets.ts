import type { Etcd3 } from 'etcd3';
import { z } from 'zod';
import type { SecretSealer } from '../store/secretSealing.js';
import { clusterKey, createRevisionIs, getKey, getOp, putOp, retryOnce, txn } from './etcdCalls.js';

/**
 * Secrets every replica must share, made once for the whole cluster: operator tokens, the
 * replica-to-replica token, the CA if cloudcore made it. `<p>cluster/secrets/<name>`, sealed with
 * the SecretSealer like a Secret object's body, so an etcd snapshot leaks nothing without the key
 * file. Created by a create-if-absent txn: replicas that start together and race all end up
 * with the value of the one whose txn committed first.
 */

export const SECRETS_PREFIX = 'cluster/secrets/';

const secretNameSchema = z.string().regex(/^[a-z0-9][a-z0-9._-]{0,127}$/, 'a cluster secret name is 1–128 lowercase letters, digits, ".", "_" or "-"');

/**
 * The sealer's additional data binds a sealed value to a kind and name. Cluster secrets are
 * sealed as kind Secret under the name `cluster/<name>`: no Secret object can have a "/" in
 * its name, so a value copied between a cluster secret and an object does not open.
 */
function sealedName(name: string): string {
  return `cluster/${name}`;
}

export interface ClusterSecretsOptions {
  /** Deadline of each etcd call (default 5 s: secrets are read at start, when etcd may be busy). */
  callMs?: number;
}

export class ClusterSecrets {
  private readonly callMs: number;

  constructor(private readonly client: Etcd3, private readonly prefix: string, private readonly sealer: SecretSealer, opts: ClusterSecretsOptions = {}) {
    this.callMs = opts.callMs ?? 5_000;
  }

  /** The secret's value; made by `make` and stored if no replica has stored it yet. */
  async getOrCreate(name: string, make: () => string): Promise<string> {
    const parsed = secretNameSchema.safeParse(name);
    if (!parsed.success) throw new Error(`cluster secret ${JSON.stringify(name)}: ${parsed.error.issues[0]!.message}`);
    const key = clusterKey(this.prefix, SECRETS_PREFIX + name);
    const existing = await getKey(this.client, key, this.callMs);
    if (existing.kv) return this.open(name, existing.kv.value.toString('utf8'));
    const value = make();
    const sealed = this.sealer.seal('Secret', sealedName(name), value);
    // Sent again after a lost answer, a create that went through fails its compare and reads back our own value.
    const res = await retryOnce(() => txn(this.client, [createRevisionIs(key, 0)], [putOp(key, sealed)], [getOp(key)], this.callMs));
    if (res.succeeded) return value;
    // Another replica stored it between our read and our txn: theirs is the cluster's.
    const stored = res.responses[0]?.response_range.kvs[0];
    if (!stored) throw new Error(`cluster secret ${name} was neither created nor found (deleted while we raced); try again`);
    return this.open(name, stored.value.toString('utf8'));
  }

  private open(name: string, stored: string): string {
    const opened = this.sealer.open('Secret', sealedName(name), stored);
    if ('body' in opened) return opened.body;
    throw new Error(`cluster secret ${name} in etcd cannot be opened: ${opened.reason}. Every replica must use the same secret key file (--secret-key-file): copy the key file of the replicas already running to this one`);
  }
}
