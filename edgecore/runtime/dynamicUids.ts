import { closeSync, existsSync, mkdirSync, openSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import Database, { type Statement } from 'better-sqlite3';
import { z } from 'zod';

/** Where per-workload uids come from. Above the 16-bit ids Debian hands to system and login users, below the subuid ranges (100000+). */
export const DYNAMIC_UIDS = { first: 70_000, last: 99_999 } as const;

/**
 * Host-wide claims on dynamic uids, one row per uid naming the edgecore data dir that holds it
 * (as systemd keeps its DynamicUser locks in /run): two edgecores on one host (a test machine,
 * a gateway running two nodes) must never give one uid to two workloads, or each could read
 * the other's files and a stop of one would end the other. In /run, so a reboot clears it;
 * each edgecore claims its uids again at start.
 */
export const DEFAULT_UID_CLAIMS_DB = '/run/edgefleet/workload-uids.db';
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
  /** SQLite file holding every claim on this host. */
  claimsDb: string;
  /** Who claims: this edgecore's data dir (an absolute path). A claim whose owner dir is gone is stale. */
  owner: string;
}

/**
 * Per-workload uids, kept in a file (0600) so a workload keeps its uid across restarts of it and
 * of edgecore (its data dir stays its own), and claimed host-wide (see DEFAULT_UID_CLAIMS_DB).
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
    // A uid another edgecore holds now is given up here; its workload gets a new one when it next starts.
    this.byName = new Map(withClaimTable(claims.claimsDb, (table) => Object.entries(stored).filter(([, uid]) => table.claim(uid, claims.owner))));
    if (this.byName.size !== Object.keys(stored).length) this.save();
  }

  uidFor(name: string): number {
    const known = this.byName.get(name);
    if (known !== undefined) return known;
    const taken = new Set([...this.systemUids, ...this.byName.values()]);
    const uid = withClaimTable(this.claims.claimsDb, (table) => {
      for (;;) {
        const next = pickUid(name, taken);
        if (table.claim(next, this.claims.owner)) return next;
        taken.add(next);
      }
    });
    this.byName.set(name, uid);
    this.save();
    return uid;
  }

  release(name: string): void {
    const uid = this.byName.get(name);
    if (uid === undefined) return;
    this.byName.delete(name);
    this.save();
    withClaimTable(this.claims.claimsDb, (table) => table.release(uid, this.claims.owner));
  }

  private save(): void {
    const tmp = `${this.file}.tmp`;
    writeFileSync(tmp, JSON.stringify(Object.fromEntries(this.byName)), { mode: 0o600 });
    renameSync(tmp, this.file);
  }
}

/**
 * The claims table, each claim one IMMEDIATE transaction: SQLite's file lock makes the read of a
 * uid's owner and the write of ours one step that no other edgecore can split, and the lock goes
 * with a process that dies holding it. Files could not do that: taking over a stale claim file
 * needs a compare-and-delete the file system does not have (moving the claim aside first left a
 * moment with no claim at all, and a third edgecore took the uid then: the suite found that).
 */
class UidClaimTable {
  private readonly select: Statement<[number], { owner: string }>;
  private readonly upsert: Statement<[number, string]>;
  private readonly remove: Statement<[number, string]>;

  constructor(private readonly db: Database.Database) {
    db.exec('CREATE TABLE IF NOT EXISTS uid_claims (uid INTEGER PRIMARY KEY, owner TEXT NOT NULL) STRICT');
    this.select = db.prepare('SELECT owner FROM uid_claims WHERE uid = ?');
    this.upsert = db.prepare('INSERT INTO uid_claims (uid, owner) VALUES (?, ?) ON CONFLICT (uid) DO UPDATE SET owner = excluded.owner');
    this.remove = db.prepare('DELETE FROM uid_claims WHERE uid = ? AND owner = ?');
  }

  /** Takes `uid` for `owner` unless another live edgecore holds it (one whose data dir is gone is stale). */
  claim(uid: number, owner: string): boolean {
    return this.db.transaction(() => {
      const held = this.select.get(uid)?.owner;
      if (held !== undefined && held !== owner && existsSync(held)) return false;
      if (held !== owner) this.upsert.run(uid, owner);
      return true;
    }).immediate();
  }

  release(uid: number, owner: string): void {
    this.remove.run(uid, owner);
  }
}

/** Opens the claims file for one step and closes it: claims are rare, and no handle outlives them. */
function withClaimTable<T>(file: string, use: (table: UidClaimTable) => T): T {
  mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
  // Created owner-only before SQLite creates it with the umask; its journal takes the same mode.
  if (!existsSync(file)) closeSync(openSync(file, 'a', 0o600));
  const db = new Database(file);
  try {
    // Edgecores starting together wait for each other's claims rather than fail.
    db.pragma('busy_timeout = 10000');
    return use(new UidClaimTable(db));
  } finally {
    db.close();
  }
}
