import { PropertyValueSchema, checkPropertyValue, type DeviceModelSpec, type ModelProperty, type PropertyValue } from '../../protocol/index.js';

export interface PlannedWrite {
  name: string;
  value: PropertyValue;
  property: ModelProperty;
}

export interface SkippedWrite {
  name: string;
  reason: string;
}

/**
 * Which requested desired values the mapper will write to the device: only properties that
 * exist in the model, are ReadWrite, have a visitor (the mapper knows where they live) and
 * whose value passes the model's type and range check. Everything else is skipped with a
 * reason for the log; one bad property never blocks the others.
 */
export function planWrites(requested: Record<string, unknown>, model: DeviceModelSpec, visitorNames: ReadonlySet<string>): { writes: PlannedWrite[]; skipped: SkippedWrite[] } {
  const writes: PlannedWrite[] = [];
  const skipped: SkippedWrite[] = [];
  for (const [name, raw] of Object.entries(requested)) {
    const property = model.properties.find((p) => p.name === name);
    if (!property) {
      skipped.push({ name, reason: `unknown property "${name}" (model has: ${model.properties.map((p) => p.name).join(', ')})` });
      continue;
    }
    const parsed = PropertyValueSchema.safeParse(raw);
    if (!parsed.success) {
      skipped.push({ name, reason: `property "${name}": ${raw === null ? 'null (a deletion) cannot be written to a device' : 'value is not a number, string or boolean'}` });
      continue;
    }
    const problem = checkPropertyValue(property, parsed.data, true);
    if (problem) {
      skipped.push({ name, reason: problem });
      continue;
    }
    if (!visitorNames.has(name)) {
      skipped.push({ name, reason: `property "${name}" has no visitor on this device, so the mapper does not know where to write it` });
      continue;
    }
    writes.push({ name, value: parsed.data, property });
  }
  return { writes, skipped };
}

/** Desired values that differ from what the device last showed (the mapper's own delta). */
export function differingDesired(desired: Record<string, PropertyValue>, current: ReadonlyMap<string, PropertyValue | undefined>): Record<string, PropertyValue> {
  const out: Record<string, PropertyValue> = {};
  for (const [name, value] of Object.entries(desired)) if (current.get(name) !== value) out[name] = value;
  return out;
}
