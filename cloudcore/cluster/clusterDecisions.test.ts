import { describe, expect, it } from 'vitest';
import { prefixEnd } from './etcdCalls.js';
import { neverReachedEtcd } from './keptLease.js';
import { leaderGuard, leaderKeyEndsTerm, stallCheckEveryMs, stallEndsTerm } from './leaderDecisions.js';
import { parseReplicaEntry } from './replicaRegistry.js';
import { absentSessionGuard, claimReleased, ownerOfEntry, takeoverIn, type HeldClaim } from './sessionDecisions.js';
import { ViewState, type ViewEntry } from './viewState.js';

function entry(key: string, modRevision: number, value = '{}', createRevision = modRevision): ViewEntry {
  return { key, value, createRevision, modRevision, lease: '0' };
}

function session(key: string, replica: string, modRevision: number): ViewEntry {
  return entry(key, modRevision, JSON.stringify({ replica, since: '2026-12-06T02:00:00.000Z' }));
}

describe('ViewState: a watched copy that tolerates duplicates, time travel and gaps', () => {
  it('applies puts and deletes in order, and ignores a duplicate or an older replay', () => {
    const view = new ViewState();
    expect(view.applyPut(entry('a', 5))).toMatchObject({ type: 'put', key: 'a' });
    expect(view.applyPut(entry('a', 5))).toBeUndefined();
    expect(view.applyPut(entry('b', 7))).toMatchObject({ type: 'put', key: 'b' });
    // Time travel: an event older than what the view is complete up to.
    expect(view.applyPut(entry('c', 6))).toBeUndefined();
    expect(view.applyDelete('a', 4)).toBeUndefined();
    expect(view.applyDelete('a', 8)).toMatchObject({ type: 'delete', key: 'a' });
    expect(view.applyDelete('a', 8)).toBeUndefined();
    expect(view.revision).toBe(8);
    expect([...view.values()].map((e) => e.key)).toEqual(['b']);
  });

  it('applies every key of one txn (several events at the same revision)', () => {
    const view = new ViewState();
    expect(view.applyPut(entry('a', 9))).toBeDefined();
    expect(view.applyPut(entry('b', 9))).toBeDefined();
    expect(view.applyDelete('a', 10)).toBeDefined();
    expect(view.applyPut(entry('c', 10))).toBeDefined();
    expect(view.size).toBe(2);
  });

  it('a re-list replaces the view as a diff, repairing a lost delete and a lost put', () => {
    const view = new ViewState();
    view.applyPut(entry('gone', 3));
    view.applyPut(entry('same', 4));
    view.applyPut(entry('changed', 5));
    const changes = view.replace([entry('same', 4), entry('changed', 9), entry('new', 8)], 10);
    expect(changes.map((c) => `${c.type} ${c.key}`).sort()).toEqual(['delete gone', 'put changed', 'put new']);
    expect(view.revision).toBe(10);
    // Watch events the list already held are no-ops; later ones apply.
    expect(view.applyPut(entry('new', 8))).toBeUndefined();
    expect(view.applyPut(entry('later', 11))).toBeDefined();
    // A list older than the view changes nothing.
    expect(view.replace([], 10)).toEqual([]);
    expect(view.size).toBe(4);
  });
});

describe('leader decisions', () => {
  const term = { replicaId: 'r1', createRevision: 40 };

  it('the guard names the leader key, the term\'s create revision and why a write may no longer happen', () => {
    expect(leaderGuard('r1', 40)).toEqual({ key: 'cluster/leader', createRevision: 40, lostMessage: 'this replica is no longer the leader (replica r1)' });
  });

  it('a term ends when the key is deleted, re-created or names another; a duplicate event is not an end', () => {
    expect(leaderKeyEndsTerm(term, { value: 'r1', createRevision: 40 })).toBeUndefined();
    expect(leaderKeyEndsTerm(term, undefined)).toMatch(/deleted/);
    expect(leaderKeyEndsTerm(term, { value: 'r2', createRevision: 44 })).toMatch(/created again \(now held by replica r2\)/);
    expect(leaderKeyEndsTerm(term, { value: 'r2', createRevision: 40 })).toMatch(/names replica r2/);
  });

  it('a stall longer than TTL/3 ends the term; timer jitter does not', () => {
    expect(stallEndsTerm(250, 300, 5)).toBeUndefined();
    expect(stallEndsTerm(250, 250 + 1_666, 5)).toBeUndefined();
    expect(stallEndsTerm(250, 250 + 1_700, 5)).toMatch(/stalled for 1700 ms .* 5 s leader lease/);
    expect(stallCheckEveryMs(5)).toBeLessThan(5_000 / 3);
    expect(stallCheckEveryMs(1)).toBeLessThan(1_000 / 3);
  });
});

describe('session decisions', () => {
  const held = new Map<string, HeldClaim>([['edge-1', { claimedAt: 10, current: 10 }]]);

  it('a newer claim by another replica of a node held here is a takeover; ours, an older one or a delete are not', () => {
    expect(takeoverIn({ type: 'put', key: 'edge-1', entry: session('edge-1', 'r2', 12), previous: undefined }, held, 'r1')).toEqual({ node: 'edge-1', newOwner: 'r2' });
    expect(takeoverIn({ type: 'put', key: 'edge-1', entry: session('edge-1', 'r1', 12), previous: undefined }, held, 'r1')).toBeUndefined();
    expect(takeoverIn({ type: 'put', key: 'edge-1', entry: session('edge-1', 'r2', 10), previous: undefined }, held, 'r1')).toBeUndefined();
    expect(takeoverIn({ type: 'put', key: 'edge-2', entry: session('edge-2', 'r2', 12), previous: undefined }, held, 'r1')).toBeUndefined();
    expect(takeoverIn({ type: 'delete', key: 'edge-1', previous: session('edge-1', 'r1', 10) }, held, 'r1')).toBeUndefined();
  });

  it('release finds a claim by the revision the hub holds, also after a re-claim moved it', () => {
    const claim = { claimedAt: 10, current: 15 };
    expect(claimReleased(claim, 10)).toBe(claim);
    expect(claimReleased(claim, 15)).toBe(claim);
    expect(claimReleased(claim, 12)).toBeUndefined();
    expect(claimReleased(undefined, 10)).toBeUndefined();
  });

  it('reads the owner of an entry, and no owner from one that does not parse', () => {
    expect(ownerOfEntry(session('edge-1', 'r2', 3))).toBe('r2');
    expect(ownerOfEntry(entry('edge-1', 3, 'not json'))).toBeUndefined();
    expect(ownerOfEntry(entry('edge-1', 3, '{"replica":"r2"}'))).toBeUndefined();
    expect(ownerOfEntry(undefined)).toBeUndefined();
  });

  it('the absent guard requires that no replica holds the node', () => {
    expect(absentSessionGuard('edge-7')).toEqual({ key: 'cluster/sessions/edge-7', createRevision: 0, lostMessage: 'node edge-7 is connected to another replica' });
  });
});

describe('replica entries and key ranges', () => {
  it('parses a replica entry and says what is wrong with a bad one', () => {
    const good = { id: 'r1', url: 'https://10.0.0.1:8443', version: '0.1.0', startedAt: '2026-12-06T02:00:00.000Z' };
    expect(parseReplicaEntry(entry('r1', 1, JSON.stringify(good)))).toEqual(good);
    expect(parseReplicaEntry(entry('r2', 1, JSON.stringify(good)))).toEqual({ invalid: 'replica entry r2 names replica r1' });
    expect(parseReplicaEntry(entry('r1', 1, '{'))).toEqual({ invalid: 'replica entry r1 is not JSON' });
    expect(parseReplicaEntry(entry('r1', 1, JSON.stringify({ ...good, url: 'nope' })))).toMatchObject({ invalid: expect.stringMatching(/^replica entry r1: url: /) });
  });

  it('a prefix range ends just past the prefix', () => {
    expect(prefixEnd(Buffer.from('/p/')).toString()).toBe('/p0');
    expect([...prefixEnd(Buffer.from([0x61, 0xff]))]).toEqual([0x62]);
  });
});

describe('keepalive failures', () => {
  it('a refused connection reached no etcd member; a deadline or an answer from etcd did', () => {
    expect(neverReachedEtcd(new Error('14 UNAVAILABLE: No connection established. Last error: Error: connect ECONNREFUSED 127.0.0.1:2379'))).toBe(true);
    expect(neverReachedEtcd(new Error('4 DEADLINE_EXCEEDED: Deadline exceeded after 0.667s'))).toBe(false);
    expect(neverReachedEtcd(new Error('14 UNAVAILABLE: etcdserver: request timed out'))).toBe(false);
    expect(neverReachedEtcd(new Error('5 NOT_FOUND: etcdserver: requested lease not found'))).toBe(false);
  });
});
