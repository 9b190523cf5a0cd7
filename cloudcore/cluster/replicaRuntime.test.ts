import { describe, expect, it } from 'vitest';
import { parseReplicaId } from './replicaRegistry.js';
import { defaultReplicaId } from './replicaRuntime.js';

describe('defaultReplicaId', () => {
  it('makes a valid replica id of any host name', () => {
    for (const host of ['cloud-a.example.com', '-weird', '.dot', '', 'ünïcode host', 'x'.repeat(100)]) {
      const id = defaultReplicaId(host);
      expect(parseReplicaId(id), `${host} → ${id}`).toBe(id);
    }
    expect(defaultReplicaId('cloud-a')).toMatch(/^cloud-a-[0-9a-f]{6}$/);
  });
});
