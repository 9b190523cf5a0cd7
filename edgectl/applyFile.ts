import {
  DeviceInputSchema, DeviceModelSpecSchema, ObjectMetaSchema, PropertyNameSchema,
  type AppInput, type PropertyValue,
} from '../protocol/index.js';
import { parseAppDocument, parseEachDocument, parseWithSchema, readDocuments, UsageError } from './parse.js';

/**
 * Pure parsing for `edgectl apply` with several kinds, and for `edgectl twin set`. Every
 * document is validated before anything is sent, so a bad third document does not leave the
 * first two applied.
 */

/** What cloudcore accepts at /devicemodels (the same shape as its API's input schema). */
import { DeviceModelInputSchema, RouteInputSchema, type DeviceInput, type DeviceModelInput, type RouteInput } from '../protocol/index.js';
export { DeviceModelInputSchema };
export type { DeviceInput, DeviceModelInput };

export type ApplyDocument =
  | { kind: 'App'; input: AppInput }
  | { kind: 'DeviceModel'; input: DeviceModelInput }
  /** `desiredGiven`: the file sets spec.desired (otherwise apply keeps what the twin API set). */
  | { kind: 'Device'; input: DeviceInput; desiredGiven: boolean }
  | { kind: 'Route'; input: RouteInput };

export const APPLY_KINDS = ['App', 'DeviceModel', 'Device', 'Route'] as const;

/** Models go first so devices in the same file can name them; otherwise file order is kept. */
const KIND_ORDER: Record<ApplyDocument['kind'], number> = { DeviceModel: 0, Device: 1, App: 1, Route: 1 };

export function parseApplyFile(text: string, source: string): ApplyDocument[] {
  const values = readDocuments(text, source);
  if (values.length === 0) throw new UsageError(`${source}: nothing to apply (no documents found)`);
  const docs = parseEachDocument(values, (value, i) => parseApplyDocument(value, `${source}: document ${i + 1}`));
  // The later one would silently overwrite the earlier one: almost certainly a copy-paste slip.
  const firstSeen = new Map<string, number>();
  for (const [i, doc] of docs.entries()) {
    const key = `${doc.kind}/${doc.input.metadata.name}`;
    const earlier = firstSeen.get(key);
    if (earlier !== undefined) {
      throw new UsageError(`${source}: document ${i + 1}: field metadata.name: ${doc.kind} "${doc.input.metadata.name}" is already defined in document ${earlier + 1}`);
    }
    firstSeen.set(key, i);
  }
  return docs.map((doc, i) => ({ doc, i }))
    .sort((a, b) => KIND_ORDER[a.doc.kind] - KIND_ORDER[b.doc.kind] || a.i - b.i)
    .map(({ doc }) => doc);
}

function parseApplyDocument(value: unknown, where: string): ApplyDocument {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new UsageError(`${where}: expected an object with a kind (${APPLY_KINDS.join(', ')}), got ${Array.isArray(value) ? 'a list' : typeof value}`);
  }
  const kind = (value as { kind?: unknown }).kind;
  switch (kind) {
    case undefined: case 'App':
      return { kind: 'App', input: parseAppDocument(value, where) };
    case 'DeviceModel':
      return { kind: 'DeviceModel', input: parseWithSchema(DeviceModelInputSchema, value, where) };
    case 'Device': {
      const spec = (value as { spec?: unknown }).spec;
      const desiredGiven = typeof spec === 'object' && spec !== null && 'desired' in spec;
      return { kind: 'Device', input: parseWithSchema(DeviceInputSchema, value, where), desiredGiven };
    }
    case 'Route':
      return { kind: 'Route', input: parseWithSchema(RouteInputSchema, value, where) };
    default:
      throw new UsageError(`${where}: field kind: unsupported kind ${JSON.stringify(kind)} (edgectl apply handles kinds ${APPLY_KINDS.join(', ')})`);
  }
}

/**
 * `edgectl twin set DEV a=1 b=true c=hello d=null` → a merge patch of desired. A value is read
 * as JSON when it parses to a number, true/false or a "quoted string"; `null` deletes the
 * property; anything else is taken as a plain string. A property given twice is refused.
 */
export function parseTwinArgs(args: string[]): Record<string, PropertyValue | null> {
  if (args.length === 0) throw new UsageError('no properties given: use property=value (property=null removes it from desired)');
  const patch: Record<string, PropertyValue | null> = {};
  for (const arg of args) {
    const eq = arg.indexOf('=');
    if (eq < 0) throw new UsageError(`invalid property "${arg}": use property=value`);
    const name = arg.slice(0, eq);
    const check = PropertyNameSchema.safeParse(name);
    if (!check.success) throw new UsageError(`invalid property name "${name}": ${check.error.issues[0]!.message}`);
    if (Object.prototype.hasOwnProperty.call(patch, name)) throw new UsageError(`property "${name}" given more than once`);
    patch[name] = parseTwinValue(arg.slice(eq + 1));
  }
  return patch;
}

export function parseTwinValue(text: string): PropertyValue | null {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return text;
  }
  if (parsed === null || typeof parsed === 'number' || typeof parsed === 'boolean' || typeof parsed === 'string') return parsed;
  return text; // a JSON object or list is not a property value: keep what was typed
}

/** JSON with sorted keys, so key order in a file does not read as a change. */
export function canonical(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) => {
    if (v === null || typeof v !== 'object' || Array.isArray(v)) return v;
    return Object.fromEntries(Object.entries(v).sort(([a], [b]) => a.localeCompare(b)));
  });
}
