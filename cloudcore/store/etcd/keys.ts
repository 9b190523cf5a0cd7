import { KINDS, type Kind } from '../../../protocol/index.js';

/**
 * The etcd key layout every EdgeFleet part shares (docs/architecture.md, "Store on etcd"). `p` is
 * the store prefix, default `/edgefleet/`:
 * - `<p>o/<Kind>/<name>`: one object (its JSON body, Secret bodies sealed);
 * - `<p>n/<node>/<Kind>/<name>`: the same body again for an object bound to a node, written in the
 *   same txn, so a node's list is one range and a node's watch is one prefix watch;
 * - `<p>meta/...`: store metadata (`meta/compacted`: the revision EdgeFleet compacted to);
 * - `<p>cluster/...`: leader key, replica registry, session owners, cluster secrets.
 */

export const DEFAULT_PREFIX = '/edgefleet/';

export class EtcdKeys {
  constructor(readonly prefix: string) {
    if (!prefix.endsWith('/')) throw new RangeError(`an etcd store prefix must end with "/", got ${JSON.stringify(prefix)}`);
  }

  object(kind: Kind, name: string): string {
    return `${this.prefix}o/${kind}/${name}`;
  }

  /** Every object (no kind) or every object of one kind. */
  objects(kind?: Kind): string {
    return kind === undefined ? `${this.prefix}o/` : `${this.prefix}o/${kind}/`;
  }

  nodeIndex(node: string, kind: Kind, name: string): string {
    return `${this.prefix}n/${node}/${kind}/${name}`;
  }

  /** Every object bound to a node, or those of one kind. */
  nodeObjects(node: string, kind?: Kind): string {
    return kind === undefined ? `${this.prefix}n/${node}/` : `${this.prefix}n/${node}/${kind}/`;
  }

  /** Every per-node index key (repairs only: `deleteUnreadable` cannot read the node from the body). */
  allNodeIndexes(): string {
    return `${this.prefix}n/`;
  }

  compacted(): string {
    return `${this.prefix}meta/compacted`;
  }

  /** A cluster key given relative to the prefix (a WriteGuard's key), e.g. `cluster/leader`. */
  relative(key: string): string {
    return `${this.prefix}${key}`;
  }

  /**
   * Kind and name of an object key or a node index key; undefined for anything else. The kind and
   * name are the last two segments: names and kinds never hold "/" (protocol's name rule).
   */
  parse(key: string): { kind: Kind; name: string } | undefined {
    if (!key.startsWith(this.prefix)) return undefined;
    const parts = key.slice(this.prefix.length).split('/');
    const isObject = parts[0] === 'o' && parts.length === 3;
    const isIndex = parts[0] === 'n' && parts.length === 4;
    if (!isObject && !isIndex) return undefined;
    const [kind, name] = parts.slice(-2) as [string, string];
    return isKind(kind) && name !== '' ? { kind, name } : undefined;
  }
}

function isKind(value: string): value is Kind {
  return (KINDS as readonly string[]).includes(value);
}

/** The end of a prefix range: the prefix with its last byte plus one (etcd's `WithPrefix`). */
export function prefixEnd(prefix: string): Buffer {
  const end = Buffer.from(prefix);
  for (let i = end.length - 1; i >= 0; i--) {
    if (end[i]! < 0xff) {
      end[i]! += 1;
      return end.subarray(0, i + 1);
    }
  }
  return Buffer.from([0]);
}
