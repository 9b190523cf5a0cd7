import { z } from 'zod';

/**
 * Labels and selectors, Kubernetes-style. Pure: parsing and matching only.
 * A selector is `{matchLabels, matchExpressions}`; the string form accepted by
 * `?labelSelector=` is `a=b,c!=d,e in (x,y),f notin (z),g,!h`.
 */

const labelKey = /^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$/;
const labelValue = /^([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?$/;

export const LabelKeySchema = z.string().max(253).regex(labelKey, 'must be a label key like "zone" or "example.com/zone"');
export const LabelValueSchema = z.string().max(63).regex(labelValue, 'must be 63 characters or less of [A-Za-z0-9-_.], starting and ending alphanumeric');
export const LabelsSchema = z.record(LabelKeySchema, LabelValueSchema);
export type Labels = z.infer<typeof LabelsSchema>;

export const SelectorRequirementSchema = z.strictObject({
  key: LabelKeySchema,
  operator: z.enum(['In', 'NotIn', 'Exists', 'DoesNotExist']),
  values: z.array(LabelValueSchema).optional(),
}).superRefine((req, ctx) => {
  const needsValues = req.operator === 'In' || req.operator === 'NotIn';
  if (needsValues && (!req.values || req.values.length === 0)) {
    ctx.addIssue({ code: 'custom', path: ['values'], message: `operator ${req.operator} needs at least one value` });
  }
  if (!needsValues && req.values && req.values.length > 0) {
    ctx.addIssue({ code: 'custom', path: ['values'], message: `operator ${req.operator} takes no values` });
  }
});
export type SelectorRequirement = z.infer<typeof SelectorRequirementSchema>;

export const LabelSelectorSchema = z.strictObject({
  matchLabels: LabelsSchema.optional(),
  matchExpressions: z.array(SelectorRequirementSchema).optional(),
});
export type LabelSelector = z.infer<typeof LabelSelectorSchema>;

/** True when `labels` satisfy every term of `selector`. An empty selector matches everything. */
export function matchesSelector(selector: LabelSelector, labels: Labels | undefined): boolean {
  const have = labels ?? {};
  for (const [k, v] of Object.entries(selector.matchLabels ?? {})) {
    if (have[k] !== v) return false;
  }
  for (const req of selector.matchExpressions ?? []) {
    const present = Object.prototype.hasOwnProperty.call(have, req.key);
    const value = have[req.key];
    switch (req.operator) {
      case 'In': if (!present || !req.values!.includes(value!)) return false; break;
      case 'NotIn': if (present && req.values!.includes(value!)) return false; break;
      case 'Exists': if (!present) return false; break;
      case 'DoesNotExist': if (present) return false; break;
    }
  }
  return true;
}

export class SelectorSyntaxError extends Error {}

/** Parses the string form (`env=prod,zone in (a,b),!legacy`) into a LabelSelector. */
export function parseSelectorString(text: string): LabelSelector {
  const matchLabels: Record<string, string> = {};
  const matchExpressions: SelectorRequirement[] = [];
  for (const term of splitTerms(text)) {
    let m: RegExpMatchArray | null;
    if ((m = term.match(/^(\S+)\s+(in|notin)\s+\(([^)]*)\)$/))) {
      const values = m[3]!.split(',').map((s) => s.trim()).filter((s) => s.length > 0);
      matchExpressions.push({ key: m[1]!, operator: m[2] === 'in' ? 'In' : 'NotIn', values });
    } else if ((m = term.match(/^([^=!\s]+)\s*!=\s*(\S*)$/))) {
      matchExpressions.push({ key: m[1]!, operator: 'NotIn', values: [m[2]!] });
    } else if ((m = term.match(/^([^=!\s]+)\s*==?\s*(\S*)$/))) {
      matchLabels[m[1]!] = m[2]!;
    } else if ((m = term.match(/^!\s*(\S+)$/))) {
      matchExpressions.push({ key: m[1]!, operator: 'DoesNotExist' });
    } else if ((m = term.match(/^(\S+)$/))) {
      matchExpressions.push({ key: m[1]!, operator: 'Exists' });
    } else {
      throw new SelectorSyntaxError(`cannot parse label selector term "${term}"`);
    }
  }
  const parsed = LabelSelectorSchema.safeParse({
    ...(Object.keys(matchLabels).length ? { matchLabels } : {}),
    ...(matchExpressions.length ? { matchExpressions } : {}),
  });
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new SelectorSyntaxError(`invalid label selector: ${issue.path.join('.')}: ${issue.message}`);
  }
  return parsed.data;
}

/** Splits on commas that are not inside a parenthesised value list. */
function splitTerms(text: string): string[] {
  const terms: string[] = [];
  let depth = 0;
  let current = '';
  for (const ch of text) {
    if (ch === '(') depth++;
    if (ch === ')') depth--;
    if (ch === ',' && depth === 0) { terms.push(current); current = ''; continue; }
    current += ch;
  }
  terms.push(current);
  return terms.map((t) => t.trim()).filter((t) => t.length > 0);
}
