import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeApp, makeDevice, makeWorkload } from '../../../test/store/fixtures.js';
import { NdjsonReader, startTestApi, type TestApi } from '../../../test/helpers/cloudcore/testServer.js';

interface Line { type: string; object: { metadata: { name: string }; spec: { nodeName: string } } }

/**
 * Issue 19 through the REST watch: `?node=` streams follow the node's set of objects, so a
 * workload or device moved to another node is a DELETED on the old node's stream — also for a
 * client resuming from a revision before the move — and an ADDED on the new node's.
 */
describe('node-filtered watches and objects moved between nodes', () => {
  let api: TestApi;
  const aborts: AbortController[] = [];
  const read = async (path: string, count: number): Promise<string[]> => {
    const abort = new AbortController();
    aborts.push(abort);
    const reader = new NdjsonReader(await api.stream(path, abort.signal));
    const lines: string[] = [];
    for (let i = 0; i < count; i++) {
      const line = (await reader.next()) as Line;
      lines.push(`${line.type} ${line.object.metadata.name} on ${line.object.spec.nodeName}`);
    }
    return lines;
  };

  beforeAll(async () => { api = await startTestApi(); });
  afterAll(async () => {
    for (const abort of aborts) abort.abort();
    await api.close();
  });

  it('a client of the old node resuming from before the move gets the delete; the new node\'s gets an add', async () => {
    const { store } = api;
    const from = await store.revision();
    const wl = await store.create(makeWorkload(makeApp('web'), 'edge-1'));
    await store.update({ ...wl, spec: { ...wl.spec, nodeName: 'edge-2' } });
    const dev = await store.create(makeDevice('thermo-1', 'edge-1'));
    await store.update({ ...dev, spec: { ...dev.spec, nodeName: 'edge-2' } });

    expect(await read(`/workloads?node=edge-1&watch=true&resourceVersion=${from}`, 2))
      .toEqual(['ADDED web.edge-1 on edge-1', 'DELETED web.edge-1 on edge-1']);
    expect(await read(`/workloads?node=edge-2&watch=true&resourceVersion=${from}`, 1)).toEqual(['ADDED web.edge-1 on edge-2']);
    expect(await read(`/devices?node=edge-1&watch=true&resourceVersion=${from}`, 2))
      .toEqual(['ADDED thermo-1 on edge-1', 'DELETED thermo-1 on edge-1']);
  });
});
