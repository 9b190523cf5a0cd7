import type { PropertyType } from '../../protocol/index.js';

/**
 * Linear scaling between what a device stores (raw) and what the twin shows (value):
 * `value = raw * scale + offset`. Field devices store e.g. tenths of a degree in a 16-bit
 * register; the twin wants degrees.
 */
export interface Scaling {
  scale: number;
  offset: number;
}

export const IDENTITY_SCALING: Scaling = { scale: 1, offset: 0 };

/**
 * Float arithmetic turns 255 * 0.1 into 25.500000000000004; twelve significant digits keep
 * every value a 32-bit register or float can carry and drop that noise from the twin.
 */
export function withoutFloatNoise(x: number): number {
  return Number.isFinite(x) ? Number.parseFloat(x.toPrecision(12)) : x;
}

/** Raw device number → twin value; `int` properties are rounded to the nearest integer. */
export function rawToValue(raw: number, scaling: Scaling, type: PropertyType): number {
  const value = raw * scaling.scale + scaling.offset;
  return type === 'int' ? Math.round(value) : withoutFloatNoise(value);
}

/**
 * Twin value → raw device number (the inverse of rawToValue). Integer registers get the
 * nearest integer, so a desired 25.5 with scale 0.1 lands as 255, not 254.99999999999997.
 */
export function valueToRaw(value: number, scaling: Scaling, rawIsInteger: boolean): number {
  if (scaling.scale === 0) throw new Error('scale must not be 0 (the value could not be written back)');
  const raw = (value - scaling.offset) / scaling.scale;
  return rawIsInteger ? Math.round(raw) : withoutFloatNoise(raw);
}
