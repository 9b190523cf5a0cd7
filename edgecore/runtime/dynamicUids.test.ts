import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DynamicUids, pickUid } from './dynamicUids.js';

let root: string;
let claimsDb: string;
beforeEach(() => {
  root = mkdtempSync(join(tmpdir(), 'ef-uids-'));
  claimsDb = join(root, 'run', 'claims.db');
});

/** The host-wide claims as the table holds them: uid → owner. */
function claimsHeld(): Record<number, string> {
  const db = new Database(claimsDb, { readonly: true });
  try {
    return Object.fromEntries(db.prepare<[], { uid: number; owner: string }>('SELECT uid, owner FROM uid_claims').all().map((r) => [r.uid, r.owner]));
  } finally {
    db.close();
  }
}
afterEach(() => rmSync(root, { recursive: true, force: true }));

/** One edgecore's uids: its data dir (the claim's owner) and its uid file. */
function edgeUids(name: string): { uids: DynamicUids; dataDir: string; file: string } {
  const dataDir = join(root, name);
  mkdirSync(dataDir, { recursive: true });
  const file = join(dataDir, 'workload-uids.json');
  return { uids: new DynamicUids(file, new Set(), { claimsDb, owner: dataDir }), dataDir, file };
}

describe('pickUid', () => {
  it('is stable for a name and steps past taken uids', () => {
    const first = pickUid('web', new Set());
    expect(pickUid('web', new Set())).toBe(first);
    expect(pickUid('web', new Set([first]))).toBe(first === 99_999 ? 70_000 : first + 1);
    expect(() => pickUid('x', new Set([1, 2]), { first: 1, last: 2 })).toThrow(/no free uid left in 1–2/);
  });
});

describe('DynamicUids', () => {
  it('keeps a workload\'s uid across restarts in an owner-only file and frees it (and its claim) on release', () => {
    const { uids, file } = edgeUids('edge-1');
    const web = uids.uidFor('web');
    const api = uids.uidFor('api');
    expect(web).not.toBe(api);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(edgeUids('edge-1').uids.uidFor('web')).toBe(web);
    uids.release('web');
    expect(JSON.parse(readFileSync(file, 'utf8'))).toEqual({ api });
    expect(claimsHeld()).toEqual({ [api]: join(root, 'edge-1') });
    expect(statSync(claimsDb).mode & 0o777).toBe(0o600);
  });

  it('two edgecores on one host never share a uid, even for workloads of the same name', () => {
    const one = edgeUids('edge-1').uids.uidFor('keeper');
    const two = edgeUids('edge-2').uids.uidFor('keeper');
    expect(two).not.toBe(one);
    expect(claimsHeld()).toEqual({ [one]: join(root, 'edge-1'), [two]: join(root, 'edge-2') });
  });

  it('takes over the claim of an edgecore whose data dir is gone', () => {
    const gone = edgeUids('gone');
    const uid = gone.uids.uidFor('keeper');
    rmSync(gone.dataDir, { recursive: true });
    expect(edgeUids('edge-2').uids.uidFor('keeper')).toBe(uid);
  });

  it('at start, gives up a stored uid another live edgecore holds now, and gets a new one', () => {
    const first = edgeUids('edge-1');
    const uid = first.uids.uidFor('keeper');
    rmSync(claimsDb); // as after a reboot, before edge-1 starts again …
    expect(edgeUids('edge-2').uids.uidFor('keeper')).toBe(uid); // … edge-2 got there first
    const again = edgeUids('edge-1').uids.uidFor('keeper');
    expect(again).not.toBe(uid);
  });
});

const DIST_UIDS = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'dist', 'edgecore', 'runtime', 'dynamicUids.js');

describe.skipIf(!existsSync(DIST_UIDS))(`edgecores starting together${existsSync(DIST_UIDS) ? '' : ' (skipped: dist/ not built; npm test builds it)'}`, () => {
  // Each process claims a uid for workloads w0…w(n-1) at the same instants as the others: the
  // names hash alike, so every round is a race for one claim (a real one, across processes).
  const ROUNDS = 150;
  const source = `
    import { mkdirSync } from 'node:fs';
    import { DynamicUids } from ${JSON.stringify(DIST_UIDS)};
    const [root, me, startAt, rounds] = process.argv.slice(1);
    mkdirSync(root + '/' + me, { recursive: true });
    const uids = new DynamicUids(root + '/' + me + '/u.json', new Set(), { claimsDb: root + '/run/claims.db', owner: root + '/' + me });
    const got = [];
    for (let r = 0; r < Number(rounds); r++) {
      while (Date.now() < Number(startAt) + r * 10) { /* spin to the round's instant */ }
      got.push(uids.uidFor('w' + r));
    }
    console.log(JSON.stringify(got));`;

  async function race(edges: string[]): Promise<number[][]> {
    const startAt = Date.now() + 1_500;
    const run = (me: string) => promisify(execFile)(process.execPath, ['--input-type=module', '-e', source, root, me, String(startAt), String(ROUNDS)], { timeout: 60_000 });
    const outputs = await Promise.all(edges.map(run));
    const got = outputs.map((o) => JSON.parse(o.stdout) as number[]);
    // Per round, the uids the edgecores got; a round with fewer distinct uids than edgecores shared one.
    return Array.from({ length: ROUNDS }, (_, r) => got.map((g) => g[r]!)).filter((round) => new Set(round).size < edges.length);
  }

  it('never give one uid to two of them, however their claims interleave', async () => {
    expect(await race(['edge-a', 'edge-b', 'edge-c']), 'rounds where two edgecores got the same uid').toEqual([]);
  }, 90_000);

  it('never give one uid to two of them when they race to take over stale claims', async () => {
    // An edgecore that claimed every round's first uid and is gone (its data dir removed, as a
    // test's temp dir or a wiped node's): each round, all of them find its claim stale at once.
    const gone = edgeUids('gone');
    for (let r = 0; r < ROUNDS; r++) gone.uids.uidFor(`w${r}`);
    rmSync(gone.dataDir, { recursive: true });
    expect(await race(['edge-a', 'edge-b', 'edge-c', 'edge-d', 'edge-e']), 'rounds where two edgecores got the same uid').toEqual([]);
  }, 90_000);
});
