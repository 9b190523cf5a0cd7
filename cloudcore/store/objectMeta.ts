import type { AnyObject } from '../../protocol/index.js';

/**
 * Pure metadata bookkeeping shared by store backends: what create/update stamp on an object.
 * Kept free of I/O so the rules (uid, generation, resourceVersion) are unit-testable alone.
 */

/** A deep copy through JSON: the stored form is JSON, so this is exactly what a reader gets back. */
export function cloneObject<T extends AnyObject>(obj: T): T {
  return JSON.parse(JSON.stringify(obj)) as T;
}

/**
 * JSON with object keys sorted, so two specs that differ only in key order compare equal
 * (callers rebuild specs from YAML or spreads and must not bump generation for that).
 */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(sortKeys(value)) ?? 'null';
}

function sortKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sortKeys);
  if (value !== null && typeof value === 'object') {
    const sorted: Record<string, unknown> = {};
    for (const key of Object.keys(value).sort()) {
      sorted[key] = sortKeys((value as Record<string, unknown>)[key]);
    }
    return sorted;
  }
  return value;
}

function specOf(obj: AnyObject): unknown {
  return 'spec' in obj ? obj.spec : undefined;
}

export function specChanged(before: AnyObject, after: AnyObject): boolean {
  return canonicalJson(specOf(before)) !== canonicalJson(specOf(after));
}

/** Returns a copy of `obj` as a freshly created object at `revision`. */
export function stampCreated<T extends AnyObject>(obj: T, revision: number, uid: string, now: Date): T {
  const created = cloneObject(obj);
  created.metadata.uid = uid;
  created.metadata.creationTimestamp = now.toISOString();
  created.metadata.generation = 1;
  created.metadata.resourceVersion = revision;
  return created;
}

/**
 * Returns a copy of `next` as the replacement of `stored` at `revision`: identity fields come from
 * the stored object whatever the caller sent, generation moves only when the spec changed.
 */
export function stampUpdated<T extends AnyObject>(next: T, stored: AnyObject, revision: number): T {
  const updated = cloneObject(next);
  const storedGeneration = stored.metadata.generation ?? 1;
  updated.metadata.uid = stored.metadata.uid;
  updated.metadata.creationTimestamp = stored.metadata.creationTimestamp;
  updated.metadata.generation = specChanged(stored, next) ? storedGeneration + 1 : storedGeneration;
  updated.metadata.resourceVersion = revision;
  return updated;
}

export function describeObject(kind: string, name: string): string {
  return `${kind} "${name}"`;
}

/** "DeviceModel" → "device model": how messages for people name a kind. */
export function kindNoun(kind: string): string {
  return kind.replace(/([a-z0-9])([A-Z])/g, '$1 $2').toLowerCase();
}

/**
 * The one not-found message (store backends and API routes alike), so a client sees
 * `app "demo" not found` whichever path found it missing.
 */
export function notFoundMessage(kind: string, name: string): string {
  return `${kindNoun(kind)} "${name}" not found`;
}

export function staleVersionMessage(kind: string, name: string, given: number, stored: number): string {
  return `${describeObject(kind, name)}: resourceVersion ${given} does not match the stored resourceVersion ${stored}; re-read and retry`;
}

/** A stored object the store cannot read back (a torn write, a disk error, a hand edit). */
export interface UnreadableObject { kind: string; name: string; reason: string }

/**
 * Reads a stored body back, or says why it cannot: not JSON, not an object, or an object that
 * is not the row's own kind and name. Deeper checks are left to the readers' schemas; these
 * are the ones every reader relies on (kind and name pick the code path and the key).
 */
export function readStoredObject(kind: string, name: string, body: string): { object: AnyObject } | { reason: string } {
  let parsed: unknown;
  try {
    parsed = JSON.parse(body);
  } catch (err) {
    return { reason: `not JSON (${(err as Error).message})` };
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) return { reason: 'not a JSON object' };
  const object = parsed as Partial<AnyObject>;
  if (object.kind !== kind) return { reason: `its body says kind ${JSON.stringify(object.kind)}` };
  if (object.metadata?.name !== name) return { reason: `its body says name ${JSON.stringify(object.metadata?.name)}` };
  return { object: object as AnyObject };
}

/**
 * What a DELETED event carries for an object that could not be read: its kind and name, and
 * an empty body of the kind's shape, so watchers that look into spec or data find nothing
 * rather than fail.
 */
export function tombstoneOf(kind: string, name: string, revision: number): AnyObject {
  const body = kind === 'Config' || kind === 'Secret' ? { data: {} } : { spec: {} };
  return { kind, metadata: { name, resourceVersion: revision }, ...body } as unknown as AnyObject;
}

/** "cannot read App "web" from the store: not JSON (…)", naming at most ten of them. */
export function unreadableMessage(objects: readonly UnreadableObject[]): string {
  if (objects.length === 1) return `cannot read ${describeObject(objects[0]!.kind, objects[0]!.name)} from the store: ${objects[0]!.reason}`;
  const named = objects.slice(0, 10).map((o) => `${describeObject(o.kind, o.name)} (${o.reason})`);
  const more = objects.length > 10 ? `, and ${objects.length - 10} more` : '';
  return `cannot read ${objects.length} objects from the store: ${named.join(', ')}${more}`;
}
