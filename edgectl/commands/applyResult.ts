/**
 * What one `edgectl apply` step did to one resource. Its own module because both apply.ts (apps,
 * and the file loop) and devices.ts (DeviceModel and Device steps) return it, and apply.ts
 * imports devices.ts: kept in either, the two would import each other.
 */
export type ApplyResult = 'created' | 'configured' | 'unchanged';
