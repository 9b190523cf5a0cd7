import type { FastifySchemaCompiler, FastifyTypeProvider } from 'fastify';
import { z } from 'zod';
import { NameSchema, parseSelectorString, SelectorSyntaxError } from '../../protocol/index.js';
import { ApiError } from './errors.js';

/**
 * Zod as fastify's validator: routes declare `schema: { body, querystring, params }` with zod
 * schemas, fastify runs them before the handler, and the handler sees the parsed (defaulted,
 * transformed) data, typed through `ZodTypeProvider`. The first issue becomes a 400 naming
 * the field.
 */

/** Lets `app.withTypeProvider<ZodTypeProvider>()` type `request.body` etc. from zod schemas. */
export interface ZodTypeProvider extends FastifyTypeProvider {
  readonly validator: this['schema'] extends z.ZodType ? z.output<this['schema']> : unknown;
  readonly serializer: this['schema'] extends z.ZodType ? z.input<this['schema']> : unknown;
}

/** "is required" reads better than zod's "expected string, received undefined". */
const requiredMessage: z.core.$ZodErrorMap = (issue) =>
  issue.code === 'invalid_type' && issue.input === undefined ? 'is required' : undefined;

/** Turns one zod issue into the API's `{error: "<path>: <message>", field: "<path>"}`. */
export function issueToApiError(issue: z.core.$ZodIssue, httpPart: string): ApiError {
  let path = issue.path.map(String);
  let message = issue.message;
  if (issue.code === 'unrecognized_keys') {
    // Name the unknown key itself, as a typo in it is the usual cause.
    path = [...path, issue.keys[0] ?? ''];
    message = 'unknown field';
  } else if (issue.code === 'invalid_key') {
    message = issue.issues[0]?.message ?? message;
  }
  const field = path.join('.');
  if (field === '') {
    const where = httpPart === 'body' ? 'request body' : httpPart;
    if (issue.code === 'invalid_type' && issue.expected === 'object') return new ApiError(400, `${where} must be a JSON object`);
    return new ApiError(400, `${where}: ${message}`);
  }
  return new ApiError(400, `${field}: ${message}`, field);
}

export const zodValidatorCompiler: FastifySchemaCompiler<unknown> = ({ schema, method, url, httpPart }) => {
  if (!(schema instanceof z.ZodType)) {
    throw new Error(`${method} ${url}: the ${httpPart ?? 'request'} schema must be a zod schema`);
  }
  return (data: unknown) => {
    const result = schema.safeParse(data, { error: requiredMessage });
    if (result.success) return { value: result.data };
    return { error: issueToApiError(result.error.issues[0]!, httpPart ?? 'request') };
  };
};

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
