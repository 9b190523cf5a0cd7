import { randomBytes } from 'node:crypto';
import { existsSync, linkSync, mkdirSync, readFileSync, renameSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
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
    if (this.claimHeld(this.claimPath(uid))?.owner === this.claims.owner) unlinkSync(this.claimPath(uid));
  }

  /**
   * Takes `uid` for this edgecore unless another live one holds it. Edgecores starting together
   * race for the same uids (a workload name hashes to the same place everywhere), so a claim
   * appears whole or not at all: written aside, then hard-linked into place (link fails if the
   * name exists). A file created and then written could be read empty by a rival, taken for a
   * stale claim, and both would run workloads as one uid (each stop killing the other's).
   */
  private claim(uid: number): boolean {
    const path = this.claimPath(uid);
    for (let attempt = 0; attempt < 2; attempt++) {
      if (this.linkClaim(path)) return true;
      const held = this.claimHeld(path);
      if (held === undefined) continue; // freed meanwhile: try again
      if (held.owner === this.claims.owner) return true;
      // Held by an edgecore whose data dir is gone: stale, free it and try once more.
      if (existsSync(held.owner) || !this.removeStale(path, held.ino)) return false;
    }
    return false;
  }

  /** Puts a whole claim file at `path`; false if one is there. */
  private linkClaim(path: string): boolean {
    const aside = `${path}.${process.pid}.${randomBytes(4).toString('hex')}`;
    writeFileSync(aside, this.claims.owner, { mode: 0o600 });
    try {
      linkSync(aside, path);
      return true;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      return false;
    } finally {
      unlinkSync(aside);
    }
  }

  /** The claim at `path` and its inode (which identifies this very claim), or undefined if none. */
  private claimHeld(path: string): { owner: string; ino: number } | undefined {
    try {
      return { ino: statSync(path).ino, owner: readFileSync(path, 'utf8') };
    } catch {
      return undefined;
    }
  }

  /**
   * Removes the stale claim with inode `ino`, and only it: moved aside first (atomic), so a rival
   * that judged it stale too, or a fresh claim put there meanwhile, is never deleted by mistake.
   */
  private removeStale(path: string, ino: number): boolean {
    const aside = `${path}.stale.${process.pid}.${randomBytes(4).toString('hex')}`;
    try {
      renameSync(path, aside);
    } catch {
      return true; // someone else moved it: look again
    }
    if (statSync(aside).ino === ino) {
      unlinkSync(aside);
      return true;
    }
    // A fresh claim, not the stale one: put it back for its owner.
    try { linkSync(aside, path); } catch { /* claimed again meanwhile: that owner keeps it */ }
    unlinkSync(aside);
    return false;
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
