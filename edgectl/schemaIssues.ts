import { z } from 'zod';
import { closestName } from './closestName.js';

/**
 * Turns every zod issue of one document into a line naming the field and what is wrong. Unknown
 * keys come from the strict protocol schemas (unrecognized_keys); the keys the schema knows at
 * that place are read from the schema itself, so the suggestion can never name a field that does
 * not exist. A required key reported missing only because it was misspelled is not reported
 * twice: the "did you mean" line already says what to fix.
 */
export function describeIssues(schema: z.ZodType, value: unknown, error: z.ZodError): string[] {
  const lines: string[] = [];
  const explained = new Set<string>();
  for (const issue of error.issues) {
    if (issue.code !== 'unrecognized_keys') continue;
    const known = knownKeys(schema, issue.path, value);
    for (const key of issue.keys) {
      const guess = closestName(key, known.filter((k) => !hasKey(valueAt(value, issue.path), k)));
      if (guess !== undefined) explained.add(fieldName([...issue.path, guess]));
      lines.push(`${fieldName([...issue.path, key])}: unknown key${guess === undefined ? '' : `, did you mean ${guess}?`}`);
    }
  }
  for (const issue of error.issues) {
    if (issue.code === 'unrecognized_keys') continue;
    const field = fieldName(issue.path);
    if (explained.has(field) && valueAt(value, issue.path) === undefined) continue;
    const typo = misspelledAs(schema, value, issue.path);
    if (typo !== undefined) {
      // A union's discriminator (`runtme:` for `runtime:`) is not reported as an unknown key by
      // zod: the union fails first. Name the typo the same way.
      lines.push(`${fieldName([...issue.path.slice(0, -1), typo])}: unknown key, did you mean ${String(issue.path.at(-1))}?`);
      continue;
    }
    lines.push(`${field}: ${issue.message}`);
  }
  return lines;
}

/** For a key the document lacks: the key beside it, unknown to the schema, that is its typo. */
function misspelledAs(schema: z.ZodType, value: unknown, path: readonly PropertyKey[]): string | undefined {
  const missing = path.at(-1);
  if (typeof missing !== 'string' || valueAt(value, path) !== undefined) return undefined;
  const parent = valueAt(value, path.slice(0, -1));
  if (typeof parent !== 'object' || parent === null || Array.isArray(parent)) return undefined;
  const known = new Set(knownKeys(schema, path.slice(0, -1), value));
  const unknown = Object.keys(parent).filter((k) => !known.has(k));
  return closestName(missing, unknown);
}

export function fieldName(path: readonly PropertyKey[]): string {
  return path.map(String).join('.') || '(document)';
}

function hasKey(value: unknown, key: string): boolean {
  return typeof value === 'object' && value !== null && Object.prototype.hasOwnProperty.call(value, key);
}

function valueAt(value: unknown, path: readonly PropertyKey[]): unknown {
  let at = value;
  for (const key of path) {
    if (typeof at !== 'object' || at === null) return undefined;
    at = (at as Record<PropertyKey, unknown>)[key];
  }
  return at;
}

/**
 * The keys an object schema accepts at `path`, following wrappers, arrays, records and unions; a
 * discriminated union picks the branch the document's discriminator names (a process template
 * must not be offered a container's fields).
 */
export function knownKeys(schema: z.core.$ZodType, path: readonly PropertyKey[], value: unknown): string[] {
  const def = schema._zod.def;
  switch (def.type) {
    case 'optional': case 'nullable': case 'default': case 'prefault': case 'readonly': case 'nonoptional': case 'catch':
      return knownKeys((def as z.core.$ZodOptionalDef).innerType, path, value);
    case 'pipe':
      return knownKeys((def as z.core.$ZodPipeDef).in, path, value);
    case 'lazy':
      return knownKeys((def as z.core.$ZodLazyDef).getter(), path, value);
    case 'array': {
      if (path.length === 0) return [];
      return knownKeys((def as z.core.$ZodArrayDef).element, path.slice(1), valueAt(value, path.slice(0, 1)));
    }
    case 'record': {
      if (path.length === 0) return [];
      return knownKeys((def as z.core.$ZodRecordDef).valueType, path.slice(1), valueAt(value, path.slice(0, 1)));
    }
    case 'object': {
      const shape = (def as z.core.$ZodObjectDef).shape;
      if (path.length === 0) return Object.keys(shape);
      const next = shape[String(path[0])];
      return next === undefined ? [] : knownKeys(next, path.slice(1), valueAt(value, path.slice(0, 1)));
    }
    case 'union': {
      const union = def as z.core.$ZodDiscriminatedUnionDef;
      let options: readonly z.core.$ZodType[] = union.options;
      if (union.discriminator !== undefined && hasKey(value, union.discriminator)) {
        const chosen = valueAt(value, [union.discriminator]);
        const matching = options.filter((o) => knownLiteral(o, union.discriminator, chosen));
        if (matching.length > 0) options = matching;
      }
      return [...new Set(options.flatMap((o) => knownKeys(o, path, value)))];
    }
    default:
      return [];
  }
}

function knownLiteral(option: z.core.$ZodType, key: string, chosen: unknown): boolean {
  const def = option._zod.def;
  if (def.type !== 'object') return false;
  const field = (def as z.core.$ZodObjectDef).shape[key];
  return field !== undefined && field._zod.def.type === 'literal'
    && (field._zod.def as z.core.$ZodLiteralDef<z.core.util.Literal>).values.includes(chosen as z.core.util.Literal);
}
