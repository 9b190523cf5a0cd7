import type { WatchEventType } from '../store/store.js';

/**
 * Lets a controller ignore the watch events that cannot change its plan: it remembers a key
 * derived from each object (its labels, the parts of a Rollout that move workloads, …) and
 * reports an event as a change only when that key moved or the object went away. Heartbeats
 * and status writes rewrite Nodes and Rollouts all the time without touching those keys.
 */
export class ChangeFilter<T extends { metadata: { name: string } }> {
  private readonly keys = new Map<string, string>();

  constructor(private readonly keyOf: (object: T) => string) {}

  /** Remembers the keys of the objects there are now (the mirror's first list). */
  seed(objects: Iterable<T>): void {
    for (const object of objects) this.keys.set(object.metadata.name, this.keyOf(object));
  }

  /** Whether the event changes the object's key (a delete always does); remembers the new key. */
  changed(type: WatchEventType, object: T): boolean {
    const name = object.metadata.name;
    if (type === 'DELETED') {
      this.keys.delete(name);
      return true;
    }
    const key = this.keyOf(object);
    if (this.keys.get(name) === key) return false;
    this.keys.set(name, key);
    return true;
  }
}
