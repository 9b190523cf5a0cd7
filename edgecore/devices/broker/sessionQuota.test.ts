import { describe, expect, it } from 'vitest';
import { decideSessionQuota } from './sessionQuota.js';

describe('decideSessionQuota', () => {
  const offline = () => false;
  it('lets a resumed or a new session in within the limit', () => {
    expect(decideSessionQuota('d', 'd', ['d', 'd-a'], 2, offline)).toEqual({ ok: true, discard: [] });
    expect(decideSessionQuota('d', 'd-a', ['d'], 2, offline)).toEqual({ ok: true, discard: [] });
  });

  it('discards the oldest sessions that are not connected to make room for a new one', () => {
    expect(decideSessionQuota('d', 'd-new', ['d-1', 'd-2', 'd-3'], 2, (id) => id === 'd-1')).toEqual({ ok: true, discard: ['d-2', 'd-3'] });
  });

  it('refuses a new session when the others are all connected', () => {
    expect(decideSessionQuota('d', 'd-new', ['d-1', 'd-2'], 2, () => true)).toEqual({ ok: false, reason: 'device "d" already has 2 persistent sessions connected (at most 2)' });
  });
});
