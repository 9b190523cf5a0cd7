import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DeviceSchema, type Device } from '../../protocol/index.js';
import { META_KEYS, MetaStore } from './metaStore.js';

const device = (name: string, node = 'edge-1', desired: Record<string, number> = {}): Device => DeviceSchema.parse({
  kind: 'Device', metadata: { name, generation: 1 },
  spec: { model: 'thermo', nodeName: node, protocol: { name: 'virtual' }, desired },
});

describe('MetaStore devices', () => {
  let dir: string;
  let meta: MetaStore;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'ef-meta-dev-'));
    meta = MetaStore.open(join(dir, 'edge.db'));
    meta.setValue(META_KEYS.node, 'edge-1');
  });
  afterEach(() => { meta.close(); rmSync(dir, { recursive: true, force: true }); });

  it('keeps devices from snapshots and deltas, and says when they changed', () => {
    expect(meta.applySync({ type: 'sync', mode: 'snapshot', revision: 5, changes: [{ op: 'put', object: device('t1') }] }).devicesChanged).toBe(true);
    expect(meta.desiredDevices().map((d) => d.metadata.name)).toEqual(['t1']);
    expect(meta.applySync({ type: 'sync', mode: 'delta', revision: 6, changes: [{ op: 'put', object: device('t1') }] }).devicesChanged).toBe(false);
    expect(meta.applySync({ type: 'sync', mode: 'delta', revision: 7, changes: [{ op: 'put', object: device('t1', 'edge-1', { target: 21 }) }] }).devicesChanged).toBe(true);
    expect(meta.desiredDevices()[0]!.spec.desired).toEqual({ target: 21 });
    expect(meta.applySync({ type: 'sync', mode: 'delta', revision: 8, changes: [{ op: 'delete', kind: 'Device', name: 't1' }] }).devicesChanged).toBe(true);
    expect(meta.desiredDevices()).toEqual([]);
  });

  it("survives a reopen and refuses another node's device without changing anything", () => {
    meta.applySync({ type: 'sync', mode: 'snapshot', revision: 5, changes: [{ op: 'put', object: device('t1') }] });
    expect(() => meta.applySync({ type: 'sync', mode: 'delta', revision: 6, changes: [{ op: 'put', object: device('t2') }, { op: 'put', object: device('x', 'edge-2') }] })).toThrow(/edge-2/);
    meta.close();
    meta = MetaStore.open(join(dir, 'edge.db'));
    expect(meta.desiredDevices().map((d) => d.metadata.name)).toEqual(['t1']);
    expect(meta.lastRevision()).toBe(5);
  });

  it('coalesces twinReported per device and spools telemetry within the bounds', () => {
    const twin = (v: number) => ({ device: 't1', twin: { reported: { temp: v }, version: v, metadata: {} }, online: true, lastSeen: null, observedGeneration: 1 });
    meta.enqueue('twinReported', 't1', twin(1));
    meta.enqueue('twinReported', 't1', twin(2));
    meta.enqueue('telemetry', 't1', { device: 't1', samples: [{ t: '2026-01-01T00:00:00Z', values: { temp: 1 } }] });
    const pending = meta.pending(10);
    expect(pending.map((e) => e.kind)).toEqual(['twinReported', 'telemetry']);
    expect(pending[0]!.kind === 'twinReported' && pending[0]!.body.twin.version).toBe(2);
  });
});
