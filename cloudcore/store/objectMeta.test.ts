import { describe, expect, it } from 'vitest';
import { makeApp, makeNode } from '../../test/store/fixtures.js';
import {
  canonicalJson, readStoredObject, specChanged, stampCreated, stampUpdated, staleVersionMessage, tombstoneOf, unreadableMessage,
} from './objectMeta.js';

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

describe('readStoredObject', () => {
  it('gives back a body that is its row\'s kind and name', () => {
    const app = makeApp('web');
    expect(readStoredObject('App', 'web', JSON.stringify(app))).toEqual({ object: app });
  });

  it('says why a body cannot be read', () => {
    const body = JSON.stringify(makeApp('web'));
    expect(readStoredObject('App', 'web', body.slice(0, 40))).toEqual({ reason: expect.stringMatching(/^not JSON \(/) as unknown });
    expect(readStoredObject('App', 'web', 'null')).toEqual({ reason: 'not a JSON object' });
    expect(readStoredObject('App', 'web', '[1]')).toEqual({ reason: 'not a JSON object' });
    expect(readStoredObject('Node', 'web', body)).toEqual({ reason: 'its body says kind "App"' });
    expect(readStoredObject('App', 'api', body)).toEqual({ reason: 'its body says name "web"' });
    expect(readStoredObject('App', 'web', '{"kind":"App"}')).toEqual({ reason: 'its body says name undefined' });
  });
});

describe('tombstoneOf and unreadableMessage', () => {
  it('a tombstone has the kind\'s shape with nothing in it', () => {
    expect(tombstoneOf('App', 'web', 7)).toEqual({ kind: 'App', metadata: { name: 'web', resourceVersion: 7 }, spec: {} });
    expect(tombstoneOf('Secret', 'db', 8)).toEqual({ kind: 'Secret', metadata: { name: 'db', resourceVersion: 8 }, data: {} });
  });

  it('names one object with its reason, or up to ten and a count', () => {
    expect(unreadableMessage([{ kind: 'App', name: 'web', reason: 'not a JSON object' }]))
      .toBe('cannot read App "web" from the store: not a JSON object');
    const many = Array.from({ length: 12 }, (_, i) => ({ kind: 'Event', name: `e${i}`, reason: 'not a JSON object' }));
    const message = unreadableMessage(many);
    expect(message).toMatch(/^cannot read 12 objects from the store: Event "e0" \(not a JSON object\), Event "e1"/);
    expect(message).toContain('Event "e9"');
    expect(message).not.toContain('Event "e10"');
    expect(message).toMatch(/, and 2 more$/);
  });
});
