import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Node } from '../../protocol/index.js';
import { makeNode } from '../../test/store/fixtures.js';
import { readModifyWrite } from './readModifyWrite.js';
import { openSqliteStore, type SqliteStore } from './sqliteStore.js';
import { ConflictError, NotFoundError } from './store.js';

const labelled = (node: Node, key: string): Node => ({ ...node, metadata: { ...node.metadata, labels: { ...node.metadata.labels, [key]: 'yes' } } });

describe('readModifyWrite', () => {
  let dir: string;
  let store: SqliteStore;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'edgefleet-rmw-'));
    store = await openSqliteStore({ path: join(dir, 'store.db') });
    await store.create(makeNode('n1'));
  });
  afterEach(async () => {
    await store.close();
    await rm(dir, { recursive: true, force: true });
  });

  /** A change that, on each of its first `times` runs, lets another writer win the race first. */
  function racedChange(times: number, key: string): { change: (node: Node) => Promise<Node>; runs: () => number } {
    let runs = 0;
    return {
      runs: () => runs,
      change: async (node) => {
        runs++;
        if (runs <= times) {
          const fresh = (await store.get('Node', 'n1'))!;
          await store.update(labelled(fresh, `other${runs}`));
        }
        return labelled(node, key);
      },
    };
  }

  it('re-applies a change that lost a race to a fresh read, keeping the other write', async () => {
    const { change, runs } = racedChange(1, 'mine');
    const written = await readModifyWrite(store, 'Node', 'n1', change);
    expect(runs()).toBe(2);
    expect(written?.metadata.labels).toEqual({ zone: 'eu-1', other1: 'yes', mine: 'yes' });
  });

  it('with an expected resourceVersion: a stale one is a 409 before the change runs, a lost race is not retried', async () => {
    const node = (await store.get('Node', 'n1'))!;
    await store.update(labelled(node, 'moved'));
    let ran = false;
    const stale = readModifyWrite(store, 'Node', 'n1', (n) => { ran = true; return n; }, { expectedVersion: node.metadata.resourceVersion });
    await expect(stale).rejects.toThrow(`node "n1" has resourceVersion ${node.metadata.resourceVersion! + 1}, not ${node.metadata.resourceVersion}: re-read it and retry`);
    expect(ran).toBe(false);

    const current = (await store.get('Node', 'n1'))!;
    const { change, runs } = racedChange(1, 'mine');
    await expect(readModifyWrite(store, 'Node', 'n1', change, { expectedVersion: current.metadata.resourceVersion })).rejects.toBeInstanceOf(ConflictError);
    expect(runs()).toBe(1);
  });

  it('gives up with a 409 after `attempts` lost races, or with the error `exhausted` gives', async () => {
    const first = racedChange(3, 'mine');
    const error = await readModifyWrite(store, 'Node', 'n1', first.change, { attempts: 3 }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ConflictError);
    expect((error as ConflictError).statusCode).toBe(409);
    expect((error as Error).message).toBe('could not update node "n1": too many concurrent writes; retry');
    expect(first.runs()).toBe(3);

    const second = racedChange(2, 'mine');
    await expect(readModifyWrite(store, 'Node', 'n1', second.change, { attempts: 2, exhausted: () => new Error('busy') })).rejects.toThrow('busy');
  });

  it('a change that returns undefined writes nothing and answers the current object', async () => {
    const before = await store.revision();
    const answer = await readModifyWrite(store, 'Node', 'n1', () => undefined);
    expect(answer?.metadata.name).toBe('n1');
    expect(await store.revision()).toBe(before);
  });

  it('an absent object answers undefined, or throws what `absent` gives (also when deleted between read and write)', async () => {
    expect(await readModifyWrite(store, 'Node', 'ghost', (n) => n)).toBeUndefined();
    await expect(readModifyWrite(store, 'Node', 'ghost', (n) => n, { absent: () => new NotFoundError('gone') })).rejects.toThrow('gone');
    const deletedMeanwhile = async (n: Node): Promise<Node> => { await store.delete('Node', 'n1'); return n; };
    await expect(readModifyWrite(store, 'Node', 'n1', deletedMeanwhile, { absent: () => new NotFoundError('gone') })).rejects.toThrow('gone');
  });
});
