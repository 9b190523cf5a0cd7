import { describe, expect, it } from 'vitest';
import { ProbeSchema } from '../../../protocol/index.js';
import {
  countProbeResult, newProbeCounter, nextCheckDelayMs, probeTiming,
  type ProbeCounter, type ProbeThresholds, type ProbeTransition,
} from './probeState.js';

/** Feeds results in order; returns the transitions (null for none) and the final counter. */
function feed(counter: ProbeCounter, results: boolean[], thresholds: ProbeThresholds): { transitions: Array<ProbeTransition | null>; counter: ProbeCounter } {
  const transitions: Array<ProbeTransition | null> = [];
  for (const success of results) {
    const next = countProbeResult(counter, success, thresholds);
    transitions.push(next.transition);
    counter = next.counter;
  }
  return { transitions, counter };
}

describe('countProbeResult', () => {
  it('turns a healthy probe unhealthy only after failureThreshold consecutive failures', () => {
    const { transitions, counter } = feed(newProbeCounter('healthy'), [false, false, true, false, false, false, false], { failureThreshold: 3, successThreshold: 1 });
    expect(transitions).toEqual([null, null, null, null, null, 'became-unhealthy', null]);
    expect(counter).toEqual({ health: 'unhealthy', consecutiveSuccesses: 0, consecutiveFailures: 4 });
  });

  it('turns an unhealthy probe healthy only after successThreshold consecutive successes', () => {
    const { transitions, counter } = feed(newProbeCounter('unhealthy'), [true, false, true, true, true], { failureThreshold: 1, successThreshold: 2 });
    expect(transitions).toEqual([null, null, null, 'became-healthy', null]);
    expect(counter).toEqual({ health: 'healthy', consecutiveSuccesses: 3, consecutiveFailures: 0 });
  });

  it('with thresholds of 1 flips on every change (readiness following a toggling port)', () => {
    const { transitions } = feed(newProbeCounter('unhealthy'), [false, true, true, false, true], { failureThreshold: 1, successThreshold: 1 });
    expect(transitions).toEqual([null, 'became-healthy', null, 'became-unhealthy', 'became-healthy']);
  });

  it('never reports a transition to the verdict it already has', () => {
    const healthy = feed(newProbeCounter('healthy'), [true, true, true], { failureThreshold: 1, successThreshold: 1 });
    expect(healthy.transitions).toEqual([null, null, null]);
    const unhealthy = feed(newProbeCounter('unhealthy'), [false, false], { failureThreshold: 1, successThreshold: 1 });
    expect(unhealthy.transitions).toEqual([null, null]);
  });

  it('does not mutate the counter it is given', () => {
    const counter = newProbeCounter('healthy');
    countProbeResult(counter, false, { failureThreshold: 1, successThreshold: 1 });
    expect(counter).toEqual({ health: 'healthy', consecutiveSuccesses: 0, consecutiveFailures: 0 });
  });
});

describe('probe timing', () => {
  it('converts the schema seconds (with their defaults) to milliseconds', () => {
    const probe = ProbeSchema.parse({ tcpSocket: { port: 80 } });
    expect(probeTiming(probe)).toEqual({ initialDelayMs: 0, periodMs: 10_000, timeoutMs: 1_000 });
    expect(probeTiming({ initialDelaySeconds: 5, periodSeconds: 2, timeoutSeconds: 3 })).toEqual({ initialDelayMs: 5_000, periodMs: 2_000, timeoutMs: 3_000 });
  });

  it('waits the rest of the period after a check, never less than zero', () => {
    expect(nextCheckDelayMs(1_000, 10_000, 10_200)).toBe(800);
    expect(nextCheckDelayMs(1_000, 10_000, 10_000)).toBe(1_000);
    expect(nextCheckDelayMs(1_000, 10_000, 12_500)).toBe(0);
    // A clock that stepped back does not make the wait longer than a period.
    expect(nextCheckDelayMs(1_000, 10_000, 9_000)).toBe(1_000);
  });
});
