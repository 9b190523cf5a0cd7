import { describe, expect, it } from 'vitest';
import { makeApp, makeNode } from '../../test/store/fixtures.js';
import { canonicalJson, specChanged, stampCreated, stampUpdated, staleVersionMessage } from './objectMeta.js';

describe('canonicalJson', () => {
  it('ignores key order at every depth but not array order', () => {
    expect(canonicalJson({ b: 1, a: { d: [2, 1], c: null } })).toBe(canonicalJson({ a: { c: null, d: [2, 1] }, b: 1 }));
    expect(canonicalJson({ a: [1, 2] })).not.toBe(canonicalJson({ a: [2, 1] }));
    expect(canonicalJson(undefined)).toBe('null');
  });
});

describe('stampCreated', () => {
  it('sets identity, generation 1 and the revision on a copy', () => {
    const app = makeApp('web');
    const created = stampCreated(app, 7, 'uid-1', new Date('2025-03-01T10:00:00Z'));
    expect(created.metadata).toMatchObject({ name: 'web', uid: 'uid-1', creationTimestamp: '2025-03-01T10:00:00.000Z', generation: 1, resourceVersion: 7 });
    expect(app.metadata.uid).toBeUndefined();
  });
});

describe('stampUpdated', () => {
  const stored = stampCreated(makeApp('web'), 3, 'uid-1', new Date('2025-03-01T10:00:00Z'));

  it('keeps generation when only metadata or status change', () => {
    const next = { ...stored, metadata: { ...stored.metadata, labels: { x: 'y' } }, status: { nodes: [] } };
    expect(specChanged(stored, next)).toBe(false);
    expect(stampUpdated(next, stored, 4).metadata).toMatchObject({ generation: 1, resourceVersion: 4, uid: 'uid-1' });
  });

  it('bumps generation on a spec change and takes identity from the stored object', () => {
    const next = makeApp('web', { command: '/bin/other' });
    next.metadata.uid = 'forged';
    next.metadata.generation = 99;
    const updated = stampUpdated(next, stored, 5);
    expect(updated.metadata).toMatchObject({ generation: 2, resourceVersion: 5, uid: 'uid-1', creationTimestamp: '2025-03-01T10:00:00.000Z' });
    expect(next.metadata.uid).toBe('forged'); // input untouched
  });

  it('treats an object stored without generation as generation 1', () => {
    const legacy = makeNode('node-a');
    expect(stampUpdated(legacy, legacy, 2).metadata.generation).toBe(1);
  });
});

describe('staleVersionMessage', () => {
  it('names kind, name and both versions', () => {
    expect(staleVersionMessage('App', 'web', 3, 5)).toMatch(/App "web".*3.*5/);
  });
});
