import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { workloadName, type SyncFrame } from '../../protocol/index.js';
import { META_KEYS, MetaStore } from './metaStore.js';

/** An edgecore of another version opening the same edge.db (real SQLite file, reopened). */
describe('MetaStore.noteAgentVersion', () => {
  let dir: string;
  let meta: MetaStore;
  const path = () => join(dir, 'edge.db');
  const synced: SyncFrame = {
    type: 'sync', mode: 'snapshot', revision: 7, changes: [{
      op: 'put', object: {
        kind: 'Workload', metadata: { name: workloadName('keeper', 'edge-1'), resourceVersion: 7 },
        spec: { nodeName: 'edge-1', app: 'keeper', generation: 1, template: { runtime: 'process', command: '/bin/true', args: [], env: {}, restartPolicy: 'Always', probes: {}, configs: [], secrets: [] } },
      },
    }],
  };
  const reopen = () => { meta.close(); meta = MetaStore.open(path()); return meta; };

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'edgefleet-version-'));
    meta = MetaStore.open(path());
  });
  afterEach(() => {
    meta.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('a new database records the version and keeps its (empty) cursor', () => {
    expect(meta.noteAgentVersion('0.1.0')).toBeUndefined();
    expect(meta.getValue(META_KEYS.agentVersion)).toBe('0.1.0');
    expect(meta.lastRevision()).toBe(0);
  });

  it('the same version again changes nothing', () => {
    meta.noteAgentVersion('0.1.0');
    meta.applySync(synced);
    expect(reopen().noteAgentVersion('0.1.0')).toBeUndefined();
    expect(meta.lastRevision()).toBe(7);
  });

  it('another version forgets the sync cursor, keeping what it runs, and says which version was before', () => {
    meta.noteAgentVersion('0.1.0');
    meta.applySync(synced);
    expect(reopen().noteAgentVersion('0.2.0')).toBe('0.1.0');
    expect(meta.lastRevision()).toBe(0);
    expect(meta.desiredWorkloads().map((w) => w.spec.app)).toEqual(['keeper']);
    expect(meta.epoch()).toBeTruthy();
    // Once: the next start of the same version resumes normally.
    meta.applySync(synced);
    expect(reopen().noteAgentVersion('0.2.0')).toBeUndefined();
    expect(meta.lastRevision()).toBe(7);
  });

  it('a database synced before versions were recorded resyncs once', () => {
    meta.applySync(synced);
    expect(reopen().noteAgentVersion('0.1.0')).toBe('unknown');
    expect(meta.lastRevision()).toBe(0);
  });
});
