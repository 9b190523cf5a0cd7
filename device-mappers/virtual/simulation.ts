import { z } from 'zod';

/**
 * Simulated devices for demos and tests, chosen by `protocol.config.kind`:
 * - `thermometer`: float `temperature`, drifting a little on every read (ReadOnly);
 * - `switch`: boolean `on` (ReadWrite);
 * - `counter`: int `count`, +step every periodMs; writing it resets it to that value.
 * `unreachable: true` makes connecting fail, to show a device in error.
 */
const common = { unreachable: z.boolean().default(false) };
export const VirtualConfigSchema = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('thermometer'), start: z.number().default(20), drift: z.number().nonnegative().default(0.5), ...common }),
  z.object({ kind: z.literal('switch'), initial: z.boolean().default(false), ...common }),
  z.object({ kind: z.literal('counter'), start: z.number().int().default(0), step: z.number().int().default(1), periodMs: z.number().int().min(10).default(1000), ...common }),
], { error: 'config.kind must be "thermometer", "switch" or "counter"' });
export type VirtualConfig = z.infer<typeof VirtualConfigSchema>;

/** The one property each kind simulates. */
export const SIMULATED_FIELD: Record<VirtualConfig['kind'], string> = { thermometer: 'temperature', switch: 'on', counter: 'count' };

/** Visitor of a virtual property: `field` names the simulated value when the model calls it differently. */
export const VirtualVisitorSchema = z.object({ field: z.string().min(1).optional() });

/** Random walk of at most ±drift per step, kept inside [min, max] when the model sets them; two decimals. */
export function nextTemperature(current: number, drift: number, random: () => number, min?: number, max?: number): number {
  let next = current + (random() * 2 - 1) * drift;
  if (min !== undefined) next = Math.max(min, next);
  if (max !== undefined) next = Math.min(max, next);
  return Math.round(next * 100) / 100;
}

/** A counter that started at `base` at `sinceMs` and counts `step` every `periodMs`. */
export function counterValue(base: number, step: number, periodMs: number, sinceMs: number, nowMs: number): number {
  return base + step * Math.floor(Math.max(0, nowMs - sinceMs) / periodMs);
}
