import { LabelsSchema, type Labels } from '../../../protocol/index.js';
import { ApiError } from '../plumbing/errors.js';

/**
 * Merge-patch of labels (`PATCH /nodes/{name}`): a string sets a label, null removes it.
 * The result is validated as a whole, so a bad key or value is refused naming that label.
 */
export function mergeLabelPatch(current: Labels | undefined, patch: Record<string, string | null>): Labels {
  const merged: Labels = { ...current };
  for (const [key, value] of Object.entries(patch)) {
    if (value === null) delete merged[key];
    else merged[key] = value;
  }
  const parsed = LabelsSchema.safeParse(merged);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const key = String(issue.path[0] ?? '');
    const message = issue.code === 'invalid_key' ? (issue.issues[0]?.message ?? issue.message) : issue.message;
    const field = `metadata.labels.${key}`;
    throw new ApiError(400, `${field}: ${message}`, field);
  }
  return parsed.data;
}
