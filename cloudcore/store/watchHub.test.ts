import { describe, expect, it } from 'vitest';
import type { Kind } from '../../protocol/index.js';
import type { WatchEvent } from './store.js';
import { eventTypeAndBody, matchesFilter, WatchHub, type LoggedChange } from './watchHub.js';

function change(revision: number, kind: Kind, node: string | null, type: LoggedChange['type'] = 'ADDED'): LoggedChange {
  return { revision, type, kind, node, body: JSON.stringify({ kind, metadata: { name: `o${revision}`, resourceVersion: revision } }) };
}

function recorder() {
  const revisions: number[] = [];
  return { revisions, onEvent: (e: WatchEvent) => { revisions.push(e.revision); } };
}

describe('matchesFilter', () => {
  it('requires kind, node and a revision after fromRevision', () => {
    expect(matchesFilter({ fromRevision: 0 }, change(1, 'App', null))).toBe(true);
    expect(matchesFilter({ fromRevision: 1 }, change(1, 'App', null))).toBe(false);
    expect(matchesFilter({ kind: 'Workload', fromRevision: 0 }, change(1, 'App', null))).toBe(false);
    expect(matchesFilter({ node: 'a', fromRevision: 0 }, change(1, 'Workload', 'a'))).toBe(true);
    expect(matchesFilter({ node: 'a', fromRevision: 0 }, change(1, 'App', null))).toBe(false);
    expect(matchesFilter({ node: 'a', kind: 'Event', fromRevision: 0 }, change(1, 'Workload', 'a'))).toBe(false);
  });
});

/** Workload "w" moved from node `from` to node `to` at `revision`. */
function move(revision: number, from: string | null, to: string): LoggedChange {
  const body = (node: string | null) => JSON.stringify({ kind: 'Workload', metadata: { name: 'w', resourceVersion: revision }, spec: { nodeName: node } });
  return { revision, type: 'MODIFIED', kind: 'Workload', node: to, body: body(to), rebound: { fromNode: from, body: body(from) } };
}

describe('a move between nodes', () => {
  it('matches watchers of both nodes: a DELETED of the last state for the old one, an ADDED for the new one', () => {
    const moved = move(5, 'a', 'b');
    expect(matchesFilter({ node: 'a', fromRevision: 0 }, moved)).toBe(true);
    expect(matchesFilter({ node: 'b', fromRevision: 0 }, moved)).toBe(true);
    expect(matchesFilter({ node: 'c', fromRevision: 0 }, moved)).toBe(false);
    expect(matchesFilter({ node: 'a', kind: 'Device', fromRevision: 0 }, moved)).toBe(false);
    expect(eventTypeAndBody({ node: 'a', fromRevision: 0 }, moved)).toEqual({ type: 'DELETED', body: moved.rebound!.body });
    expect(eventTypeAndBody({ node: 'b', fromRevision: 0 }, moved)).toEqual({ type: 'ADDED', body: moved.body });
    expect(eventTypeAndBody({ kind: 'Workload', fromRevision: 0 }, moved)).toEqual({ type: 'MODIFIED', body: moved.body });
    // An object that was bound to no node before is only added to its new one.
    expect(matchesFilter({ node: 'a', fromRevision: 0 }, move(6, null, 'b'))).toBe(false);
  });

  it('is routed live to the watchers of the node left', () => {
    const hub = new WatchHub();
    const seen: string[] = [];
    for (const node of ['a', 'b', 'c']) {
      hub.add({ node, fromRevision: 0 }, [], (e) => seen.push(`${node}: ${e.type} on ${e.object.kind === 'Workload' ? e.object.spec.nodeName : '-'}`));
    }
    hub.publish(move(1, 'a', 'b'));
    expect(seen.sort()).toEqual(['a: DELETED on a', 'b: ADDED on b']);
  });
});

describe('WatchHub', () => {
  it('routes each change to node, kind and unfiltered watchers that match', () => {
    const hub = new WatchHub();
    const [onA, onB, workloads, eventsOnA, all] = [recorder(), recorder(), recorder(), recorder(), recorder()];
    hub.add({ node: 'a', fromRevision: 0 }, [], onA.onEvent);
    hub.add({ node: 'b', fromRevision: 0 }, [], onB.onEvent);
    hub.add({ kind: 'Workload', fromRevision: 0 }, [], workloads.onEvent);
    hub.add({ kind: 'Event', node: 'a', fromRevision: 0 }, [], eventsOnA.onEvent);
    hub.add({ fromRevision: 0 }, [], all.onEvent);
    hub.publish(change(1, 'Workload', 'a'));
    hub.publish(change(2, 'Event', 'a'));
    hub.publish(change(3, 'App', null));
    hub.publish(change(4, 'Workload', 'b'));
    expect(onA.revisions).toEqual([1, 2]);
    expect(onB.revisions).toEqual([4]);
    expect(workloads.revisions).toEqual([1, 4]);
    expect(eventsOnA.revisions).toEqual([2]);
    expect(all.revisions).toEqual([1, 2, 3, 4]);
  });

  it('delivers replay first and never repeats a revision', () => {
    const hub = new WatchHub();
    const rec = recorder();
    hub.add({ fromRevision: 1 }, [change(1, 'App', null), change(2, 'App', null), change(3, 'App', null)], rec.onEvent);
    hub.publish(change(3, 'App', null)); // overlap with the replay is ignored
    hub.publish(change(4, 'App', null));
    expect(rec.revisions).toEqual([2, 3, 4]);
  });

  it('keeps revision order for every watcher when a listener publishes re-entrantly', () => {
    const hub = new WatchHub();
    const first: number[] = [];
    hub.add({ fromRevision: 0 }, [], (e) => {
      first.push(e.revision);
      if (e.revision === 1) hub.publish(change(2, 'Workload', 'a'));
    });
    const second = recorder();
    hub.add({ fromRevision: 0 }, [], second.onEvent);
    hub.publish(change(1, 'App', null));
    expect(first).toEqual([1, 2]);
    expect(second.revisions).toEqual([1, 2]);
  });

  it('hands listener errors to the error sink and keeps delivering', () => {
    const errors: unknown[] = [];
    const hub = new WatchHub((e) => errors.push(e));
    hub.add({ fromRevision: 0 }, [], () => { throw new Error('boom'); });
    const rec = recorder();
    hub.add({ fromRevision: 0 }, [], rec.onEvent);
    hub.publish(change(1, 'App', null));
    hub.publish(change(2, 'App', null));
    expect(rec.revisions).toEqual([1, 2]);
    expect(errors).toHaveLength(2);
  });

  it('close stops delivery, even of changes already queued, and frees the bucket', () => {
    const hub = new WatchHub();
    const rec = recorder();
    let watch: { close(): void } | undefined;
    // Same bucket, registered first: it runs before `rec` gets the change queued for it.
    hub.add({ node: 'a', fromRevision: 0 }, [], () => {
      watch!.close(); // closing from inside a delivery drops what is still queued for it
    });
    watch = hub.add({ node: 'a', fromRevision: 0 }, [], rec.onEvent);
    expect(hub.size).toBe(2);
    hub.publish(change(1, 'Workload', 'a'));
    expect(rec.revisions).toEqual([]);
    expect(hub.size).toBe(1);
    watch.close();
    expect(hub.size).toBe(1);
  });

  it('gives every watcher its own copy of the object', () => {
    const hub = new WatchHub();
    const objects: WatchEvent['object'][] = [];
    hub.add({ fromRevision: 0 }, [], (e) => objects.push(e.object));
    hub.add({ fromRevision: 0 }, [], (e) => objects.push(e.object));
    hub.publish(change(1, 'App', null));
    expect(objects[0]).toEqual(objects[1]);
    expect(objects[0]).not.toBe(objects[1]);
  });
});
