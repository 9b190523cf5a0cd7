import { describe, expect, it } from 'vitest';
import { CloudFrameSchema, EdgeFrameSchema, IgnoredFieldNotes, parseFrame } from './index.js';

/**
 * The version-skew rule of the frames (docs/sync.md): within one protocol version a frame only
 * gains optional fields, and a reader drops the ones it does not know instead of refusing the
 * frame. Anything else wrong still refuses it, naming the field.
 */
describe('parseFrame and fields from a newer peer', () => {
  const workload = {
    kind: 'Workload', metadata: { name: 'web.edge-1', resourceVersion: 3 },
    spec: {
      nodeName: 'edge-1', app: 'web', generation: 1,
      template: { runtime: 'process', command: '/bin/true', args: [], env: {}, restartPolicy: 'Always', probes: {}, configs: [], secrets: [] },
    },
  };

  it('reads a frame without the fields it does not know, at any depth, and names them once each', () => {
    const newer = {
      type: 'sync', mode: 'delta', revision: 3, compression: 'none',
      changes: [
        { op: 'put', object: { ...workload, spec: { ...workload.spec, template: { ...workload.spec.template, cpuQuota: '500m' } } } },
        { op: 'put', object: { ...workload, metadata: { ...workload.metadata, name: 'api.edge-1' }, spec: { ...workload.spec, app: 'api', template: { ...workload.spec.template, cpuQuota: '1' } } } },
      ],
    };
    const parsed = parseFrame(CloudFrameSchema, JSON.stringify(newer));
    expect(parsed.ok).toBe(true);
    if (!parsed.ok) return;
    expect([...parsed.ignored!].sort()).toEqual(['changes.*.object.spec.template.cpuQuota', 'compression']);
    expect(parsed.frame).toEqual({ type: 'sync', mode: 'delta', revision: 3, changes: [
      { op: 'put', object: workload },
      { op: 'put', object: { ...workload, metadata: { ...workload.metadata, name: 'api.edge-1' }, spec: { ...workload.spec, app: 'api' } } },
    ] });
  });

  it('a frame of the current version has nothing to ignore', () => {
    const parsed = parseFrame(CloudFrameSchema, JSON.stringify({ type: 'sync', mode: 'snapshot', revision: 3, changes: [{ op: 'put', object: workload }] }));
    expect(parsed).toEqual({ ok: true, frame: { type: 'sync', mode: 'snapshot', revision: 3, changes: [{ op: 'put', object: workload }] } });
  });

  it('a bad value is refused even beside unknown fields, naming the bad value rather than the unknown field', () => {
    const parsed = parseFrame(EdgeFrameSchema, JSON.stringify({ type: 'ping', t: 1, future: true, rttMs: -1 }));
    expect(parsed.ok).toBe(false);
    if (!parsed.ok) expect(parsed.error).toMatchObject({ code: 'bad_frame', field: 'rttMs' });
  });

  it('an unknown frame type or entry kind is still refused: those are not optional fields', () => {
    const type = parseFrame(EdgeFrameSchema, JSON.stringify({ type: 'teleport', to: 'mars' }));
    expect(!type.ok && type.error.field).toBe('type');
    const kind = parseFrame(EdgeFrameSchema, JSON.stringify({ type: 'upstream', entries: [{ seq: 1, kind: 'gpuStats', key: 'x', body: {} }] }));
    expect(!kind.ok && kind.error.field).toBe('entries.0.kind');
  });

  it('a frame with thousands of unknown keys is read in one pass, naming a bounded number of them', () => {
    const flood = Object.fromEntries(Array.from({ length: 5000 }, (_, i) => [`k${i}`, i]));
    const parsed = parseFrame(EdgeFrameSchema, JSON.stringify({ type: 'ping', t: 1, ...flood }));
    expect(parsed.ok).toBe(true);
    if (parsed.ok) {
      expect(parsed.frame).toEqual({ type: 'ping', t: 1 });
      expect(parsed.ignored).toHaveLength(32);
    }
  });

  it('IgnoredFieldNotes names each path once per link, and stops remembering after 256', () => {
    const notes = new IgnoredFieldNotes();
    expect(notes.fresh(undefined)).toEqual([]);
    expect(notes.fresh(['a', 'b'])).toEqual(['a', 'b']);
    expect(notes.fresh(['b', 'c'])).toEqual(['c']);
    expect(notes.fresh(Array.from({ length: 300 }, (_, i) => `k${i}`))).toHaveLength(300);
    expect(notes.fresh(['new-after-the-bound'])).toEqual([]);
  });

  it('a key that is not the peer\'s own property is dropped like any other', () => {
    const parsed = parseFrame(EdgeFrameSchema, '{"type":"ping","t":1,"__proto__":{"polluted":true}}');
    expect(parsed).toEqual({ ok: true, frame: { type: 'ping', t: 1 }, ignored: ['__proto__'] });
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });
});
