import { describe, expect, it } from 'vitest';
import { LoginGate, WarnLimiter } from './loginGate.js';

describe('LoginGate', () => {
  it('caps pending checks per address and in all; a finished check frees its slot', () => {
    const gate = new LoginGate({ maxPending: 3, maxPendingPerAddress: 2, maxFailures: 100, windowMs: 60_000 });
    expect(gate.admit('10.0.0.1').ok).toBe(true);
    expect(gate.admit('10.0.0.1').ok).toBe(true);
    expect(gate.admit('10.0.0.1')).toEqual({ ok: false, reason: '2 logins from 10.0.0.1 are already being checked' });
    expect(gate.admit('10.0.0.2').ok).toBe(true);
    expect(gate.admit('10.0.0.3')).toEqual({ ok: false, reason: '3 logins are already being checked' });
    gate.finish('10.0.0.1', true);
    expect(gate.admit('10.0.0.3').ok).toBe(true);
    expect(gate.pendingNow).toBe(3);
  });

  it('refuses an address after maxFailures failures within the window, without a check; others go on', () => {
    let now = 0;
    const gate = new LoginGate({ maxPending: 10, maxPendingPerAddress: 10, maxFailures: 3, windowMs: 1000, now: () => now });
    for (let i = 0; i < 3; i++) {
      expect(gate.admit('a').ok).toBe(true);
      gate.finish('a', false);
    }
    expect(gate.admit('a')).toEqual({ ok: false, reason: 'too many failed logins from a; retry in 1 s' });
    expect(gate.admit('b').ok).toBe(true);
    now = 1001;
    expect(gate.admit('a').ok).toBe(true);
  });
});

describe('WarnLimiter', () => {
  it('logs the first event per key and interval and counts the rest', () => {
    let now = 0;
    const limiter = new WarnLimiter(1000, 2, () => now);
    expect(limiter.shouldLog('a')).toBe(0);
    expect(limiter.shouldLog('a')).toBeNull();
    expect(limiter.shouldLog('a')).toBeNull();
    expect(limiter.shouldLog('b')).toBe(0);
    now = 1000;
    expect(limiter.shouldLog('a')).toBe(2);
    expect(limiter.shouldLog('c')).toBe(0); // evicts b, the least recently logged
    expect(limiter.shouldLog('b')).toBe(0);
  });
});
