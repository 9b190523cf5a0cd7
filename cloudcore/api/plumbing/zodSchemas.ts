import { z } from 'zod';
import { NameSchema, parseSelectorString, SelectorSyntaxError } from '../../../protocol/index.js';

// Zod as fastify's validator lives in ../http/zodRoutes.ts (the hub's join route uses it too).
export { zodSerializerCompiler, zodValidatorCompiler, type ZodTypeProvider } from '../../http/zodRoutes.js';

// ---- Shared request-part schemas ---------------------------------------------------------

export const NameParams = z.strictObject({ name: NameSchema });

/** `?watch=true`; also accepts 1/0 and false. */
const BooleanFlag = z.enum(['true', 'false', '1', '0']).transform((v) => v === 'true' || v === '1');

const NonNegativeIntParam = z.string().regex(/^\d+$/, 'must be a non-negative integer').transform(Number);

/** `?labelSelector=env=prod,zone in (a,b)` parsed into a LabelSelector. */
export const LabelSelectorParam = z.string().transform((text, ctx) => {
  try {
    return parseSelectorString(text);
  } catch (err) {
    if (!(err instanceof SelectorSyntaxError)) throw err;
    ctx.addIssue({ code: 'custom', message: err.message, input: text });
    return z.NEVER;
  }
});

const watchParams = {
  watch: BooleanFlag.optional(),
  resourceVersion: NonNegativeIntParam.optional(),
};

/** A revision only means something to a watch; on a plain list it would silently do nothing. */
function resourceVersionNeedsWatch(query: { watch?: boolean; resourceVersion?: number }, ctx: z.RefinementCtx): void {
  if (query.resourceVersion !== undefined && !query.watch) {
    ctx.addIssue({ code: 'custom', path: ['resourceVersion'], message: 'is only allowed with watch=true' });
  }
}

/** GET /nodes, GET /apps. */
export const SelectableListQuery = z.strictObject({ labelSelector: LabelSelectorParam.optional(), ...watchParams })
  .superRefine(resourceVersionNeedsWatch);

/** GET /workloads. */
export const WorkloadListQuery = z.strictObject({ node: NameSchema.optional(), app: NameSchema.optional(), ...watchParams })
  .superRefine(resourceVersionNeedsWatch);

export const DEFAULT_EVENT_LIMIT = 100;
export const MAX_EVENT_LIMIT = 1000;

/** GET /events. */
export const EventListQuery = z.strictObject({
  node: NameSchema.optional(),
  limit: NonNegativeIntParam.pipe(z.number().int().min(1).max(MAX_EVENT_LIMIT)).default(DEFAULT_EVENT_LIMIT),
});
