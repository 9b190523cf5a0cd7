/**
 * MQTT topic-filter matching for the broker persistence: a plain function for one filter against
 * one topic (retained messages) and a trie of offline subscriptions (routing QoS > 0 publishes to
 * sessions that are offline).
 *
 * Semantics follow MQTT 3.1.1 §4.7 as aedes routes live messages: `/` separates levels, `+`
 * matches exactly one level (an empty level too, [MQTT-4.7.1-3], like aedes' own emitter with
 * `matchEmptyLevels`), and a trailing `#` matches the parent level and any number of levels below
 * it. A `#` anywhere but last is not a valid filter (aedes refuses such a SUBSCRIBE), so here it
 * matches nothing. Like aedes-persistence's reference implementation, `$`-topics get no special
 * treatment: aedes itself keeps `#`/`+` subscriptions away from `$SYS`.
 */

export const LEVEL_SEPARATOR = '/';
export const SINGLE_LEVEL_WILDCARD = '+';
export const MULTI_LEVEL_WILDCARD = '#';

/** The per-subscription options aedes routes with (MQTT 5 retain handling, retain-as-published, no-local). */
export interface SubscriptionOptions {
  qos: number;
  rh?: number;
  rap?: boolean;
  nl?: boolean;
}

/** One offline subscription matching a topic, in the shape aedes expects from subscriptionsByTopic. */
export interface MatchedSubscription extends SubscriptionOptions {
  clientId: string;
  topic: string;
}

/** Whether `topic` (a concrete PUBLISH topic) matches the topic filter `filter`. */
export function topicMatchesFilter(filter: string, topic: string): boolean {
  const filterLevels = filter.split(LEVEL_SEPARATOR);
  const topicLevels = topic.split(LEVEL_SEPARATOR);
  for (let i = 0; i < filterLevels.length; i++) {
    const level = filterLevels[i];
    if (level === MULTI_LEVEL_WILDCARD) return i === filterLevels.length - 1;
    if (i >= topicLevels.length) return false;
    if (level !== SINGLE_LEVEL_WILDCARD && level !== topicLevels[i]) return false;
  }
  return filterLevels.length === topicLevels.length;
}

/**
 * The literal text every topic matched by `filter` starts with: the levels before the first
 * wildcard, without the separator after them (so `a/#` still covers the topic `a`). An empty
 * string means the filter can match any topic. Used to narrow an index range scan; the exact
 * test is still topicMatchesFilter.
 */
export function literalPrefixOf(filter: string): string {
  const levels = filter.split(LEVEL_SEPARATOR);
  const firstWildcard = levels.findIndex((l) => l === SINGLE_LEVEL_WILDCARD || l === MULTI_LEVEL_WILDCARD);
  if (firstWildcard === -1) return filter;
  return levels.slice(0, firstWildcard).join(LEVEL_SEPARATOR);
}

/**
 * Collapses a set of prefixes to the fewest that cover the same topics: a prefix that starts
 * with another one is redundant, and an empty prefix covers everything.
 */
export function coveringPrefixes(prefixes: readonly string[]): string[] {
  const sorted = [...new Set(prefixes)].sort();
  const kept: string[] = [];
  for (const prefix of sorted) {
    const last = kept[kept.length - 1];
    if (last !== undefined && prefix.startsWith(last)) continue;
    kept.push(prefix);
  }
  return kept;
}

interface TrieNode {
  readonly children: Map<string, TrieNode>;
  /** Subscribers whose filter ends at this node, keyed by client id, in subscription order. */
  readonly subscribers: Map<string, SubscriptionOptions>;
  /** The full filter this node ends, set while it has subscribers. */
  filter: string;
}

function newNode(): TrieNode {
  return { children: new Map(), subscribers: new Map(), filter: '' };
}

/**
 * In-memory index of offline subscriptions, keyed by (filter, clientId). It holds only what
 * aedes needs to route a publish (QoS > 0 subscriptions); the database stays the source of truth
 * and the index is rebuilt from it on start. Empty branches are pruned on removal so memory
 * tracks the live subscription count.
 */
export class SubscriptionMatcher {
  private readonly root: TrieNode = newNode();
  private count = 0;

  /** Number of (filter, clientId) entries. */
  get size(): number {
    return this.count;
  }

  /** Adds or replaces the subscription of `clientId` to `filter`. */
  add(filter: string, clientId: string, options: SubscriptionOptions): void {
    let node = this.root;
    for (const level of filter.split(LEVEL_SEPARATOR)) {
      let child = node.children.get(level);
      if (child === undefined) {
        child = newNode();
        node.children.set(level, child);
      }
      node = child;
    }
    if (!node.subscribers.has(clientId)) this.count++;
    node.filter = filter;
    node.subscribers.set(clientId, { qos: options.qos, rh: options.rh, rap: options.rap, nl: options.nl });
  }

  /** Removes the subscription of `clientId` to `filter`; returns whether there was one. */
  remove(filter: string, clientId: string): boolean {
    const path: TrieNode[] = [this.root];
    const levels = filter.split(LEVEL_SEPARATOR);
    for (const level of levels) {
      const child = path[path.length - 1].children.get(level);
      if (child === undefined) return false;
      path.push(child);
    }
    const leaf = path[path.length - 1];
    if (!leaf.subscribers.delete(clientId)) return false;
    this.count--;
    // Prune now-empty nodes bottom-up so unsubscribed filters do not leave garbage behind.
    for (let i = levels.length; i > 0; i--) {
      const node = path[i];
      if (node.subscribers.size > 0 || node.children.size > 0) break;
      path[i - 1].children.delete(levels[i - 1]);
    }
    return true;
  }

  /**
   * Every subscription whose filter matches the concrete `topic`. At each level a `#` branch
   * is reported before the exact and `+` branches, the order aedes-persistence's reference
   * implementation produces.
   */
  match(topic: string): MatchedSubscription[] {
    const out: MatchedSubscription[] = [];
    collect(this.root, topic.split(LEVEL_SEPARATOR), 0, out);
    return out;
  }

  clear(): void {
    this.root.children.clear();
    this.root.subscribers.clear();
    this.count = 0;
  }
}

function collect(node: TrieNode, levels: readonly string[], index: number, out: MatchedSubscription[]): void {
  const rest = node.children.get(MULTI_LEVEL_WILDCARD);
  if (rest !== undefined) report(rest, out);
  if (index === levels.length) {
    report(node, out);
    return;
  }
  const level = levels[index];
  // A literal '+' in a topic is not a valid PUBLISH topic; never let it reach the '+' branch twice.
  const exact = level === SINGLE_LEVEL_WILDCARD ? undefined : node.children.get(level);
  if (exact !== undefined) collect(exact, levels, index + 1, out);
  const single = node.children.get(SINGLE_LEVEL_WILDCARD);
  if (single !== undefined) collect(single, levels, index + 1, out);
}

function report(node: TrieNode, out: MatchedSubscription[]): void {
  for (const [clientId, options] of node.subscribers) {
    out.push({ clientId, topic: node.filter, ...options });
  }
}
