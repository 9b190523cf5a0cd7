import type { FastifySchemaCompiler, FastifySerializerCompiler, FastifyTypeProvider } from 'fastify';
import { z } from 'zod';
import { ApiError } from './apiError.js';

/**
 * Zod as fastify's validator: routes declare `schema: { body, querystring, params }` with zod
 * schemas, fastify runs them before the handler, and the handler sees the parsed (defaulted,
 * transformed) data, typed through `ZodTypeProvider`. The operator API and the hub's join
 * route both declare their request schemas this way. The first issue becomes a 400 naming
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

/**
 * Zod as fastify's serializer: a route's `schema.response` (the answer schemas of
 * protocol/api.ts) is checked before the answer leaves, so cloudcore cannot drift from the
 * contract edgectl parses with. A mismatch is cloudcore's bug: a 500 here, logged with the path
 * at fault, rather than a client that reads half an answer. The answer is sent as the handler
 * built it (zod's parsed copy would drop nothing it checked, but costs a second copy).
 */
export const zodSerializerCompiler: FastifySerializerCompiler<unknown> = ({ schema, method, url, httpStatus }) => {
  if (!(schema instanceof z.ZodType)) {
    throw new Error(`${method} ${url}: the ${httpStatus} response schema must be a zod schema`);
  }
  return (data: unknown) => {
    const result = schema.safeParse(data);
    if (!result.success) {
      const issue = result.error.issues[0]!;
      throw new Error(`${method} ${url}: the ${httpStatus} answer does not match its schema at ${issue.path.map(String).join('.') || '(root)'}: ${issue.message}`);
    }
    return JSON.stringify(data);
  };
};
