import { describe, expect, it } from 'vitest';
import { auditTarget, auditVerb, buildAuditRecord, type AuditInput } from './auditRecord.js';

const base: AuditInput = {
  time: new Date('2026-01-02T03:04:05.000Z'), requestId: 'req-1', method: 'POST', route: '/api/v1/apps',
  params: {}, body: { metadata: { name: 'web' }, spec: { secretish: 'value' } }, status: 201, sourceAddress: '127.0.0.1',
  principal: { tokenId: '0123456789ab', tokenName: 'alice', role: 'admin' }, hadAuthorization: true,
};

describe('audit records', () => {
  it('records a create with who, what, where and the result, and nothing of the body but the name', () => {
    const record = buildAuditRecord(base);
    expect(record).toEqual({
      time: '2026-01-02T03:04:05.000Z', requestId: 'req-1', tokenId: '0123456789ab', tokenName: 'alice', role: 'admin',
      method: 'POST', verb: 'create', route: '/api/v1/apps', target: { kind: 'App', name: 'web' }, status: 201, sourceAddress: '127.0.0.1',
    });
    expect(JSON.stringify(record)).not.toContain('value');
  });

  it('does not record successful reads, nor requests no route matched', () => {
    expect(buildAuditRecord({ ...base, method: 'GET', route: '/api/v1/apps/:name', params: { name: 'web' }, status: 200 })).toBeUndefined();
    expect(buildAuditRecord({ ...base, route: undefined, status: 404 })).toBeUndefined();
  });

  it('records exec and logs, which read but reach into a workload, with the node they ran on', () => {
    const params = { name: 'edge-1', workload: 'talker' };
    const exec = buildAuditRecord({ ...base, route: '/api/v1/nodes/:name/workloads/:workload/exec', params, status: 200 });
    expect(exec).toMatchObject({ verb: 'exec', target: { kind: 'Workload', name: 'talker', node: 'edge-1' } });
    const logs = buildAuditRecord({ ...base, method: 'GET', route: '/api/v1/nodes/:name/workloads/:workload/logs', params, status: 200 });
    expect(logs).toMatchObject({ verb: 'logs', target: { kind: 'Workload', name: 'talker', node: 'edge-1' } });
  });

  it('records refused attempts, reads included: anonymous without a header, unknown with a bad token, named on a 403', () => {
    const read = { ...base, method: 'GET', route: '/api/v1/secrets', body: undefined, principal: undefined };
    expect(buildAuditRecord({ ...read, status: 401, hadAuthorization: false })).toMatchObject({ tokenId: null, tokenName: 'anonymous', role: null, verb: 'list', status: 401 });
    expect(buildAuditRecord({ ...read, status: 401 })).toMatchObject({ tokenName: 'unknown', target: { kind: 'Secret', name: null } });
    const reader = { tokenId: 'bootstrap-readonly', tokenName: 'bootstrap-readonly', role: 'readonly' as const };
    expect(buildAuditRecord({ ...base, method: 'DELETE', route: '/api/v1/nodes/:name', params: { name: 'edge-1' }, principal: reader, status: 403 }))
      .toMatchObject({ tokenName: 'bootstrap-readonly', role: 'readonly', verb: 'delete', target: { kind: 'Node', name: 'edge-1' }, status: 403 });
  });

  it('names actions on sub-routes by their last word, and the object they belong to', () => {
    expect(auditVerb('POST', '/api/v1/apps/:name/rollout/pause', { name: 'web' })).toBe('pause');
    expect(auditTarget('/api/v1/apps/:name/rollout/pause', { name: 'web' }, {})).toEqual({ kind: 'App', name: 'web' });
    expect(auditVerb('POST', '/api/v1/devices/:name/credentials', { name: 'd1' })).toBe('credentials');
    expect(auditVerb('PATCH', '/api/v1/devices/:name/twin', { name: 'd1' })).toBe('patch');
    expect(auditVerb('PUT', '/api/v1/secrets/:name', { name: 's' })).toBe('update');
    expect(auditVerb('DELETE', '/api/v1/operatortokens/:name', { name: 'alice' })).toBe('delete');
  });

  it('takes the kind from a :kind parameter, and a join token\'s node from the body', () => {
    expect(auditTarget('/api/v1/unreadable/:kind/:name', { kind: 'App', name: 'web' }, undefined)).toEqual({ kind: 'App', name: 'web' });
    expect(auditTarget('/api/v1/tokens', {}, { node: 'edge-9', ttlSeconds: 60 })).toEqual({ kind: 'JoinToken', name: null, node: 'edge-9' });
    expect(auditTarget('/api/v1/operatortokens', {}, { name: 'bob', role: 'readonly' })).toEqual({ kind: 'OperatorToken', name: 'bob' });
  });

  it('ignores a body that is not an object, and a name that is not a string', () => {
    expect(auditTarget('/api/v1/apps', {}, '{nope')).toEqual({ kind: 'App', name: null });
    expect(auditTarget('/api/v1/apps', {}, { metadata: { name: 7 } })).toEqual({ kind: 'App', name: null });
    expect(auditTarget('/api/v1/apps', {}, null)).toEqual({ kind: 'App', name: null });
  });
});
