import { z } from 'zod';
import { LabelsSchema } from './labels.js';

/**
 * Object names and metadata, Kubernetes-style. In its own module (re-exported by
 * resources.ts) so schemas that App depends on (rollouts.ts) can use it without an import cycle.
 */

/** DNS-1123 subdomain: what Kubernetes accepts as an object name. */
export const NameSchema = z.string().min(1).max(253)
  .regex(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/,
    'must be lowercase alphanumerics, "-" or ".", starting and ending alphanumeric');

export const ObjectMetaSchema = z.strictObject({
  name: NameSchema,
  uid: z.string().optional(),
  /** Global store revision of the last write to this object; carry it back to get optimistic concurrency. */
  resourceVersion: z.number().int().nonnegative().optional(),
  generation: z.number().int().nonnegative().optional(),
  creationTimestamp: z.string().optional(),
  labels: LabelsSchema.optional(),
  annotations: z.record(z.string(), z.string()).optional(),
});
export type ObjectMeta = z.infer<typeof ObjectMetaSchema>;
