/**
 * The Prometheus text format, as far as the benchmark reads it: sample lines `name{labels} value`
 * summed per metric name (the benchmark wants totals, not series).
 */

/** Sum of every sample per metric name; comment lines and unparsable values are skipped. */
export function parsePromText(text: string): Map<string, number> {
  const sums = new Map<string, number>();
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    // The value follows the last space outside the label set (labels may contain spaces).
    const close = line.lastIndexOf('}');
    const rest = close >= 0 ? line.slice(close + 1).trim() : line.slice(line.indexOf(' ') + 1).trim();
    const name = close >= 0 ? line.slice(0, line.indexOf('{')) : line.slice(0, line.indexOf(' '));
    const value = Number(rest.split(/\s+/)[0]);
    if (name === '' || !Number.isFinite(value)) continue;
    sums.set(name, (sums.get(name) ?? 0) + value);
  }
  return sums;
}

/** The metric's total, or null when the process does not export it. */
export function promSum(metrics: Map<string, number>, name: string): number | null {
  return metrics.get(name) ?? null;
}

export async function scrapeProm(url: string, headers: Record<string, string> = {}, timeoutMs = 10_000): Promise<Map<string, number>> {
  const res = await fetch(url, { headers, signal: AbortSignal.timeout(timeoutMs) });
  if (!res.ok) throw new Error(`GET ${url}: HTTP ${res.status}`);
  return parsePromText(await res.text());
}
