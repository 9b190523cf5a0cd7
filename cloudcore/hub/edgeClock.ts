import type { EdgeEvent, ReportedTwin, WorkloadStatus } from '../../protocol/index.js';

/**
 * Edge clocks are not trusted to be right: a node whose clock runs ahead (no NTP after a power
 * cut, a dead RTC battery, or a node lying) would stamp its reports in the future, and since the
 * cloud keeps the newest report by time, one such report would hide every true one after it,
 * for good. Times from an edge are therefore capped at the cloud's own clock when they arrive;
 * a time that does not parse counts as "now" too. Times in the past are kept as they are: a
 * node replaying its outbox after an outage reports, rightly, when things happened.
 */
export function cappedAtNow(time: string, nowMs: number): string {
  const at = Date.parse(time);
  return Number.isNaN(at) || at > nowMs ? new Date(nowMs).toISOString() : time;
}

export function cappedStatus(status: WorkloadStatus, nowMs: number): WorkloadStatus {
  const observedAt = cappedAtNow(status.observedAt, nowMs);
  return observedAt === status.observedAt ? status : { ...status, observedAt };
}

/** The twin's per-property times capped; held values are capped as well, which heals one stamped in the future before this rule. */
export function cappedTwin(twin: ReportedTwin, nowMs: number): ReportedTwin {
  let changed = false;
  const metadata: ReportedTwin['metadata'] = {};
  for (const [prop, { updatedAt }] of Object.entries(twin.metadata)) {
    const capped = cappedAtNow(updatedAt, nowMs);
    if (capped !== updatedAt) changed = true;
    metadata[prop] = { updatedAt: capped };
  }
  return changed ? { ...twin, metadata } : twin;
}

export function cappedEvent(event: EdgeEvent, nowMs: number): EdgeEvent {
  const time = cappedAtNow(event.time, nowMs);
  return time === event.time ? event : { ...event, time };
}
