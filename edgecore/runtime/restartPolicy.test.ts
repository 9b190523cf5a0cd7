import { describe, expect, it } from 'vitest';
import {
  DEFAULT_BACKOFF, isFailure, nextConsecutiveFailures, restartDelayMs, shouldRestart, stateAfterRun,
} from './restartPolicy.js';

describe('shouldRestart', () => {
  it('Always restarts after any exit', () => {
    expect(shouldRestart('Always', 0, null)).toBe(true);
    expect(shouldRestart('Always', 3, null)).toBe(true);
    expect(shouldRestart('Always', null, 'SIGKILL')).toBe(true);
  });

  it('OnFailure restarts after a non-zero exit, a signal or a failed spawn only', () => {
    expect(shouldRestart('OnFailure', 0, null)).toBe(false);
    expect(shouldRestart('OnFailure', 1, null)).toBe(true);
    expect(shouldRestart('OnFailure', null, 'SIGSEGV')).toBe(true);
    expect(shouldRestart('OnFailure', null, null)).toBe(true);
  });

  it('Never never restarts', () => {
    expect(shouldRestart('Never', 0, null)).toBe(false);
    expect(shouldRestart('Never', 1, null)).toBe(false);
    expect(shouldRestart('Never', null, 'SIGTERM')).toBe(false);
  });

  it('a signal is a failure even when paired with code 0', () => {
    expect(isFailure(0, 'SIGTERM')).toBe(true);
    expect(isFailure(0, null)).toBe(false);
  });
});

describe('restartDelayMs', () => {
  it('doubles from the initial delay and caps at the maximum (defaults 1 s / 60 s)', () => {
    const delays = [1, 2, 3, 4, 5, 6, 7, 8].map((n) => restartDelayMs(n));
    expect(delays).toEqual([1_000, 2_000, 4_000, 8_000, 16_000, 32_000, 60_000, 60_000]);
  });

  it('honours custom settings', () => {
    expect([1, 2, 3, 4].map((n) => restartDelayMs(n, { initialMs: 50, maxMs: 150 }))).toEqual([50, 100, 150, 150]);
  });

  it('is 0 without failures and stays finite for huge counts', () => {
    expect(restartDelayMs(0)).toBe(0);
    expect(restartDelayMs(-3)).toBe(0);
    expect(restartDelayMs(10_000)).toBe(DEFAULT_BACKOFF.maxMs);
  });
});

describe('nextConsecutiveFailures', () => {
  it('counts quick exits and resets after a long enough run', () => {
    expect(nextConsecutiveFailures(0, 10, 60_000)).toBe(1);
    expect(nextConsecutiveFailures(3, 59_999, 60_000)).toBe(4);
    expect(nextConsecutiveFailures(7, 60_000, 60_000)).toBe(1);
  });
});

describe('stateAfterRun', () => {
  const exit = (exitCode: number | null, signal: string | null = null) => ({ exitCode, signal, spawnFailed: false });

  it('is Exited on the first quick exit, CrashLoop from the second while waiting to restart', () => {
    expect(stateAfterRun(exit(1), true, 1)).toBe('Exited');
    expect(stateAfterRun(exit(1), true, 2)).toBe('CrashLoop');
    expect(stateAfterRun(exit(0), true, 5)).toBe('CrashLoop');
  });

  it('is Exited after a final exit 0 and Failed after a final failure', () => {
    expect(stateAfterRun(exit(0), false, 1)).toBe('Exited');
    expect(stateAfterRun(exit(2), false, 1)).toBe('Failed');
    expect(stateAfterRun(exit(null, 'SIGKILL'), false, 1)).toBe('Failed');
  });

  it('is Failed after a failed spawn, retried or not', () => {
    const spawnFailure = { exitCode: null, signal: null, spawnFailed: true };
    expect(stateAfterRun(spawnFailure, true, 3)).toBe('Failed');
    expect(stateAfterRun(spawnFailure, false, 1)).toBe('Failed');
  });
});
