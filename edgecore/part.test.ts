import { describe, expect, it } from 'vitest';
import { PartSet, type EdgePart } from './part.js';

/** A part that records its calls in a shared journal. */
function part(name: string, journal: string[], opts: { failStart?: boolean; failStop?: boolean } = {}): EdgePart {
  return {
    name,
    async start() {
      journal.push(`start ${name}`);
      if (opts.failStart) throw new Error(`${name} cannot start`);
    },
    async stop() {
      journal.push(`stop ${name}`);
      if (opts.failStop) throw new Error(`${name} cannot stop`);
    },
  };
}

describe('PartSet', () => {
  it('starts in order and stops in reverse, each once', async () => {
    const journal: string[] = [];
    const parts = new PartSet({ error: () => {} });
    for (const name of ['meta', 'workloads', 'status']) await parts.start(part(name, journal));
    expect(parts.names()).toEqual(['meta', 'workloads', 'status']);
    await parts.stopAll();
    await parts.stopAll();
    expect(journal).toEqual(['start meta', 'start workloads', 'start status', 'stop status', 'stop workloads', 'stop meta']);
  });

  it('a failed start stops what started before it and throws the error on', async () => {
    const journal: string[] = [];
    const parts = new PartSet({ error: () => {} });
    await parts.start(part('meta', journal));
    await parts.start(part('workloads', journal));
    await expect(parts.start(part('devices', journal, { failStart: true }))).rejects.toThrow('devices cannot start');
    expect(journal).toEqual(['start meta', 'start workloads', 'start devices', 'stop workloads', 'stop meta']);
    expect(parts.names()).toEqual([]);
  });

  it('a failing stop is logged and the parts before it still stop', async () => {
    const journal: string[] = [];
    const logged: object[] = [];
    const parts = new PartSet({ error: (obj) => logged.push(obj) });
    await parts.start(part('meta', journal));
    await parts.start(part('devices', journal, { failStop: true }));
    await parts.stopAll();
    expect(journal).toEqual(['start meta', 'start devices', 'stop devices', 'stop meta']);
    expect(logged).toEqual([{ part: 'devices', err: 'devices cannot stop' }]);
  });
});
