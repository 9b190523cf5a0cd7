import { existsSync, mkdirSync, readFileSync, renameSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';

/** Where per-workload uids come from. Above the 16-bit ids Debian hands to system and login users, below the subuid ranges (100000+). */
export const DYNAMIC_UIDS = { first: 70_000, last: 99_999 } as const;

/**
 * Host-wide claims on dynamic uids, one file per uid naming the edgecore data dir that holds it
 * (as systemd keeps its DynamicUser locks in /run): two edgecores on one host (a test machine,
 * a gateway running two nodes) must never give one uid to two workloads, or each could read
 * the other's files and a stop of one would end the other. In /run, so a reboot clears it;
 * each edgecore claims its uids again at start.
 */
export const DEFAULT_UID_CLAIMS_DIR = '/run/edgefleet/workload-uids';

/** The next free uid for `name`: its hash's place in the range, then the next free one. Pure. */
export function pickUid(name: string, taken: ReadonlySet<number>, range: { first: number; last: number } = DYNAMIC_UIDS): number {
  const size = range.last - range.first + 1;
  let hash = 2166136261;
  for (let i = 0; i < name.length; i++) hash = Math.imul(hash ^ name.charCodeAt(i), 16777619) >>> 0;
  for (let i = 0; i < size; i++) {
    const uid = range.first + ((hash + i) % size);
    if (!taken.has(uid)) return uid;
  }
  throw new Error(`no free uid left in ${range.first}–${range.last} for workload ${JSON.stringify(name)}`);
}

const UidMapSchema = z.record(z.string(), z.number().int());

export interface UidClaims {
  /** Directory of claim files, one per uid. */
  claimsDir: string;
  /** Who claims: this edgecore's data dir (an absolute path). A claim whose owner dir is gone is stale. */
  owner: string;
}

/**
 * Per-workload uids, kept in a file (0600) so a workload keeps its uid across restarts of it and
 * of edgecore (its data dir stays its own), and claimed host-wide (see DEFAULT_UID_CLAIMS_DIR).
 * A removed workload's uid is freed with its data.
 */
export class DynamicUids {
  private readonly byName: Map<string, number>;

  constructor(private readonly file: string, private readonly systemUids: ReadonlySet<number>, private readonly claims: UidClaims) {
    let stored: Record<string, number> = {};
    try {
      stored = UidMapSchema.parse(JSON.parse(readFileSync(file, 'utf8')));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw new Error(`workload uid file ${file} cannot be read (${(err as Error).message}); move it away to start afresh`);
    }
    mkdirSync(claims.claimsDir, { recursive: true, mode: 0o700 });
    // A uid another edgecore holds now is given up here; its workload gets a new one when it next starts.
    this.byName = new Map(Object.entries(stored).filter(([, uid]) => this.claim(uid)));
    if (this.byName.size !== Object.keys(stored).length) this.save();
  }

  uidFor(name: string): number {
    const known = this.byName.get(name);
    if (known !== undefined) return known;
    const taken = new Set([...this.systemUids, ...this.byName.values()]);
    for (;;) {
      const uid = pickUid(name, taken);
      if (this.claim(uid)) {
        this.byName.set(name, uid);
        this.save();
        return uid;
      }
      taken.add(uid);
    }
  }

  release(name: string): void {
    const uid = this.byName.get(name);
    if (uid === undefined) return;
    this.byName.delete(name);
    this.save();
    if (this.claimOwner(uid) === this.claims.owner) unlinkSync(this.claimPath(uid));
  }

  /** Takes `uid` for this edgecore unless another live one holds it. */
  private claim(uid: number): boolean {
    const path = this.claimPath(uid);
    for (let attempt = 0; attempt < 2; attempt++) {
      try {
        writeFileSync(path, this.claims.owner, { flag: 'wx', mode: 0o600 });
        return true;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      }
      const owner = this.claimOwner(uid);
      if (owner === this.claims.owner) return true;
      // Held by an edgecore whose data dir is gone: stale, free it and try once more.
      if (owner !== undefined && existsSync(owner)) return false;
      try { unlinkSync(path); } catch { /* another edgecore freed it first */ }
    }
    return false;
  }

  private claimOwner(uid: number): string | undefined {
    try {
      return readFileSync(this.claimPath(uid), 'utf8');
    } catch {
      return undefined;
    }
  }

  private claimPath(uid: number): string {
    return join(this.claims.claimsDir, String(uid));
  }

  private save(): void {
    const tmp = `${this.file}.tmp`;
    writeFileSync(tmp, JSON.stringify(Object.fromEntries(this.byName)), { mode: 0o600 });
    renameSync(tmp, this.file);
  }
}
