import type { AuditRecord } from '../../protocol/index.js';

/** What `GET /audit` (and `edgectl audit`) may filter on; every given field must match. */
export interface AuditFilter {
  /** Records at or after this time. */
  since?: Date | undefined;
  /** Records before this time. */
  until?: Date | undefined;
  verb?: string | undefined;
  /** The target's kind, case-insensitive (`node` finds Node). */
  kind?: string | undefined;
  /** The target's name, or the node it is on (`name=edge-1` finds exec on edge-1's workloads too). */
  name?: string | undefined;
  /** The token's name or id. */
  token?: string | undefined;
}

export function matchesAudit(record: AuditRecord, filter: AuditFilter): boolean {
  const time = Date.parse(record.time);
  if (filter.since && !(time >= filter.since.getTime())) return false;
  if (filter.until && !(time < filter.until.getTime())) return false;
  if (filter.verb !== undefined && record.verb !== filter.verb) return false;
  if (filter.kind !== undefined && record.target?.kind.toLowerCase() !== filter.kind.toLowerCase()) return false;
  if (filter.name !== undefined && record.target?.name !== filter.name && record.target?.node !== filter.name) return false;
  if (filter.token !== undefined && record.tokenName !== filter.token && record.tokenId !== filter.token) return false;
  return true;
}

/** Keeps the newest `limit` records offered (in the order offered) and whether any were left out. */
export class NewestRecords {
  private kept: AuditRecord[] = [];
  private dropped = false;

  constructor(private readonly limit: number) {}

  offer(record: AuditRecord): void {
    this.kept.push(record);
    // Trim in batches: one copy per `limit` records, not one shift per record.
    if (this.kept.length >= this.limit * 2) {
      this.kept = this.kept.slice(this.kept.length - this.limit);
      this.dropped = true;
    }
  }

  result(): { items: AuditRecord[]; truncated: boolean } {
    const over = this.kept.length > this.limit;
    return { items: over ? this.kept.slice(this.kept.length - this.limit) : this.kept, truncated: this.dropped || over };
  }
}
