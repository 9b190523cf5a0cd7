import type { PropertyValue } from '../../protocol/index.js';

/** The schema's lower bound for collect/report cycles; no timer ticks faster than this. */
export const MIN_CYCLE_MS = 50;

export function greatestCommonDivisor(a: number, b: number): number {
  let x = Math.abs(Math.round(a));
  let y = Math.abs(Math.round(b));
  while (y !== 0) [x, y] = [y, x % y];
  return x;
}

/**
 * Period of a device's single report timer. Each property has its own reportCycleMs, but the
 * device publishes one batched `twin/reported`; ticking at the cycles' common divisor lets
 * every property be reported on its own cycle (1000 and 1500 → a tick every 500 ms).
 */
export function reportTickMs(reportCycles: readonly number[]): number {
  if (reportCycles.length === 0) return 1000;
  const divisor = reportCycles.reduce((acc, c) => greatestCommonDivisor(acc, c));
  return Math.max(MIN_CYCLE_MS, divisor);
}

/** What the report timer knows about one property. */
export interface ReportState {
  reportCycleMs: number;
  /** Last value collected from the device; undefined until the first successful read. */
  value?: PropertyValue;
  /** Last value published as reported (undefined: never, or forgotten after an MQTT reconnect). */
  reportedValue?: PropertyValue;
  /** When it was published (ms since epoch). */
  reportedAt?: number;
}

/**
 * Properties to put in this tick's `twin/reported`: those with a collected value that differs
 * from what was last reported, whose own report cycle has elapsed. `toleranceMs` absorbs timer
 * lateness (a 1000 ms cycle checked by a tick that fires at 999 ms still counts).
 */
export function selectDueReports(states: ReadonlyMap<string, ReportState>, nowMs: number, toleranceMs: number): Record<string, PropertyValue> {
  const due: Record<string, PropertyValue> = {};
  for (const [name, s] of states) {
    if (s.value === undefined) continue;
    if (s.reportedValue !== undefined && s.reportedValue === s.value) continue;
    if (s.reportedAt !== undefined && nowMs - s.reportedAt + toleranceMs < s.reportCycleMs) continue;
    due[name] = s.value;
  }
  return due;
}
