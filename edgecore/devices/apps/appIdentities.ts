import type { AppGrantStatus, MqttGrant } from '../../../protocol/index.js';

/**
 * The app credentials the broker knows (username → scrypt hash, workload, grant) and each
 * identity's message counters, for the hub (deviceHub.ts) and `/status`. In memory: edgecore
 * registers them again from the node's files (appAccess.ts) as workloads start.
 */
export interface AppCredential { hash: string; workload: string; grant: MqttGrant }

interface Counters { published: number; delivered: number; refused: number }

export class AppIdentities {
  private readonly credentials = new Map<string, AppCredential>();
  private readonly counters = new Map<string, Counters>();

  get(username: string): AppCredential | undefined {
    return this.credentials.get(username);
  }

  /** Sets a credential; true when one was there with another hash or grant (its connections must go). */
  set(username: string, credential: AppCredential): boolean {
    const before = this.credentials.get(username);
    this.credentials.set(username, credential);
    if (!this.counters.has(username)) this.counters.set(username, { published: 0, delivered: 0, refused: 0 });
    return before !== undefined && (before.hash !== credential.hash || grantKey(before.grant) !== grantKey(credential.grant));
  }

  /** Removes a credential; true when there was one. */
  delete(username: string): boolean {
    this.counters.delete(username);
    return this.credentials.delete(username);
  }

  count(username: string, what: keyof Counters): void {
    const counters = this.counters.get(username);
    if (counters !== undefined) counters[what]++;
  }

  /** Pure snapshot for `/status`, `edgectl local status` and the cloud, by workload name. */
  snapshot(): AppGrantStatus[] {
    return [...this.credentials].map(([username, { workload, grant }]) => ({
      workload, username, publish: [...grant.publish], subscribe: [...grant.subscribe],
      ...(this.counters.get(username) ?? { published: 0, delivered: 0, refused: 0 }),
    })).sort((a, b) => (a.workload < b.workload ? -1 : a.workload > b.workload ? 1 : 0));
  }
}

/** A grant's identity regardless of entry order: what decides whether a credential rotates. */
export function grantKey(grant: MqttGrant): string {
  return JSON.stringify({ publish: [...grant.publish].sort(), subscribe: [...grant.subscribe].sort() });
}
