import type { TelemetrySample } from '../protocol/index.js';
import { renderTable, type Row } from './format.js';

/**
 * Telemetry as a time series table: one row per sample, oldest first, one column per property
 * any sample carries (sorted), empty where a sample has no value for it.
 */
export function renderTelemetry(samples: readonly TelemetrySample[]): string {
  const properties = [...new Set(samples.flatMap((s) => Object.keys(s.values)))].sort();
  const rows: Row[] = samples.map((s) => [s.t, ...properties.map((p) => cell(s.values[p]))]);
  return renderTable(['TIME', ...properties.map((p) => p.toUpperCase())], rows);
}

function cell(value: TelemetrySample['values'][string] | undefined): string {
  if (value === undefined) return '';
  return typeof value === 'string' ? JSON.stringify(value) : String(value);
}
