import { describe, expect, it } from 'vitest';
import { auditRow, formatExpiry, formatTarget, operatorTokenRow } from './auditFormat.js';

const now = new Date('2026-03-10T00:00:00Z');

describe('audit and operator token views', () => {
  it('says whether a token still works rather than only when it ends', () => {
    expect(formatExpiry('2026-06-08T00:00:00Z', now)).toBe('in 90d');
    expect(formatExpiry('2026-03-08T00:00:00Z', now)).toBe('expired 2d ago');
    expect(formatExpiry('soon', now)).toBe('<unknown>');
  });

  it('shows a token row without the token, and <never> before first use', () => {
    expect(operatorTokenRow({ name: 'alice', id: '0123456789ab', role: 'readonly', createdAt: '2026-03-09T00:00:00Z', expiresAt: '2026-06-08T00:00:00Z', lastUsedAt: null }, now))
      .toEqual(['alice', '0123456789ab', 'readonly', '1d', 'in 90d', '<never>']);
  });

  it('names the target with its node, and shows refused anonymous requests', () => {
    expect(formatTarget({ kind: 'Workload', name: 'talker', node: 'edge-1' })).toBe('workload/talker on edge-1');
    expect(formatTarget({ kind: 'App', name: null })).toBe('app');
    expect(formatTarget(null)).toBe('-');
    expect(auditRow({
      time: '2026-03-09T00:00:00.000Z', requestId: 'r1', tokenId: null, tokenName: 'anonymous', role: null, method: 'DELETE', verb: 'delete',
      route: '/api/v1/nodes/:name', target: { kind: 'Node', name: 'edge-1' }, status: 401, sourceAddress: '127.0.0.1',
    })).toEqual(['2026-03-09T00:00:00.000Z', 'anonymous', '-', 'delete', 'node/edge-1', '401', '127.0.0.1', 'r1']);
  });
});
