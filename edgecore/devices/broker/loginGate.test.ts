import { describe, expect, it } from 'vitest';
import { LoginGate, PreLoginConnections, WarnLimiter } from './loginGate.js';

describe('LoginGate', () => {
  it('runs at most maxPendingPerAddress checks of an address at a time; the rest wait their turn, up to a bound', async () => {
    const gate = new LoginGate({ maxPendingPerAddress: 2, maxWaitingPerAddress: 1, maxFailures: 100, windowMs: 60_000 });
    expect(await gate.admit('10.0.0.1')).toEqual({ ok: true });
    expect(await gate.admit('10.0.0.1')).toEqual({ ok: true });
    let third: { ok: boolean } | null = null;
    void gate.admit('10.0.0.1').then((a) => { third = a; });
    expect(await gate.admit('10.0.0.1')).toEqual({ ok: false, reason: '3 logins from 10.0.0.1 are already being checked or waiting' });
    expect(await gate.admit('10.0.0.2')).toEqual({ ok: true }); // another address does not wait
    await Promise.resolve();
    expect(third).toBeNull();
    gate.finish('10.0.0.1', true);
    await new Promise((r) => setImmediate(r));
    expect(third).toEqual({ ok: true });
    expect(gate.pendingNow).toBe(3);
    for (const address of ['10.0.0.1', '10.0.0.1', '10.0.0.2']) gate.finish(address, true);
    expect(gate.pendingNow).toBe(0);
  });

  it('refuses an address after maxFailures failures within the window, without a check, also logins already waiting', async () => {
    let now = 0;
    const gate = new LoginGate({ maxPendingPerAddress: 1, maxWaitingPerAddress: 10, maxFailures: 3, windowMs: 1000, now: () => now });
    for (let i = 0; i < 2; i++) {
      expect((await gate.admit('a')).ok).toBe(true);
      gate.finish('a', false);
    }
    expect((await gate.admit('a')).ok).toBe(true);
    const waiting = gate.admit('a');
    gate.finish('a', false);
    expect(await waiting).toEqual({ ok: false, reason: 'too many failed logins from a; retry in 1 s' });
    expect(await gate.admit('a')).toEqual({ ok: false, reason: 'too many failed logins from a; retry in 1 s' });
    expect((await gate.admit('b')).ok).toBe(true);
    expect(gate.pendingNow).toBe(1);
    now = 1001;
    expect((await gate.admit('a')).ok).toBe(true);
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

describe('PreLoginConnections', () => {
  it('counts connections per address up to the limit; a finished one frees its place', () => {
    const conns = new PreLoginConnections(2);
    expect(conns.opened('a')).toBe(true);
    expect(conns.opened('a')).toBe(true);
    expect(conns.opened('a')).toBe(false);
    expect(conns.opened('b')).toBe(true);
    conns.done('a');
    expect(conns.opened('a')).toBe(true);
  });
});
