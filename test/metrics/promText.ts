import { createRequire } from 'node:module';

/**
 * The Prometheus text parser the metrics tests read `/metrics` with (parse-prometheus-text-format,
 * prom2json-compatible). It ships no types; this is the shape it returns.
 */
export interface MetricFamily {
  name: string;
  help: string;
  type: 'COUNTER' | 'GAUGE' | 'HISTOGRAM' | 'SUMMARY' | 'UNTYPED';
  metrics: { value?: string; labels?: Record<string, string>; buckets?: Record<string, string>; count?: string; sum?: string }[];
}

const parseText = createRequire(import.meta.url)('parse-prometheus-text-format') as (text: string) => MetricFamily[];

export class Scrape {
  readonly families: Map<string, MetricFamily>;

  constructor(readonly text: string) {
    this.families = new Map(parseText(text).map((f) => [f.name, f]));
  }

  family(name: string): MetricFamily {
    const f = this.families.get(name);
    if (!f) throw new Error(`metric ${name} missing; have: ${[...this.families.keys()].join(', ')}`);
    return f;
  }

  /** The value of the one sample whose labels include `labels` (0 if the family has none matching). */
  value(name: string, labels: Record<string, string> = {}): number {
    const sample = this.family(name).metrics.find((m) => Object.entries(labels).every(([k, v]) => m.labels?.[k] === v));
    return sample?.value === undefined ? 0 : Number(sample.value);
  }

  /**
   * The series of a labelled histogram. parse-prometheus-text-format folds every series of a
   * histogram into one bucket map and drops their labels, so the histogram's lines are parsed
   * again (by the same parser) without their TYPE line: `_bucket`, `_sum` and `_count` then come
   * back as plain samples with all their labels, and are grouped here.
   */
  histogram(name: string): { labels: Record<string, string>; count: number; sum: number; buckets: Record<string, number> }[] {
    if (this.family(name).type !== 'HISTOGRAM') throw new Error(`${name} is not a histogram`);
    const ownLines = this.text.split('\n').filter((l) => l.startsWith(`${name}_bucket`) || l.startsWith(`${name}_sum`) || l.startsWith(`${name}_count`));
    const series = new Map<string, { labels: Record<string, string>; count: number; sum: number; buckets: Record<string, number> }>();
    for (const family of parseText(ownLines.join('\n') + '\n')) {
      for (const m of family.metrics) {
        const { le, ...labels } = m.labels ?? {};
        const key = JSON.stringify(Object.entries(labels).sort());
        const entry = series.get(key) ?? { labels, count: 0, sum: 0, buckets: {} };
        series.set(key, entry);
        if (family.name === `${name}_bucket` && le !== undefined) entry.buckets[le] = Number(m.value);
        else if (family.name === `${name}_sum`) entry.sum = Number(m.value);
        else if (family.name === `${name}_count`) entry.count = Number(m.value);
      }
    }
    return [...series.values()];
  }

  /** Sum over samples whose labels include `labels`. */
  sum(name: string, labels: Record<string, string> = {}): number {
    return this.family(name).metrics
      .filter((m) => Object.entries(labels).every(([k, v]) => m.labels?.[k] === v))
      .reduce((acc, m) => acc + Number(m.value ?? 0), 0);
  }
}

/** Every family follows the conventions docs/metrics.md promises. */
export function conventionProblems(scrape: Scrape, prefix: string): string[] {
  const problems: string[] = [];
  for (const f of scrape.families.values()) {
    if (!f.name.startsWith(prefix)) continue;
    if (f.type === 'COUNTER' && !f.name.endsWith('_total')) problems.push(`${f.name}: counter without _total`);
    if (f.type !== 'COUNTER' && f.name.endsWith('_total')) problems.push(`${f.name}: _total on a ${f.type}`);
    if (!f.help) problems.push(`${f.name}: no HELP`);
    if (/_(ms|milliseconds|kb|mb|minutes)(_|$)/.test(f.name)) problems.push(`${f.name}: not a base unit`);
  }
  return problems;
}
