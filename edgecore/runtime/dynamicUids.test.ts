import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DynamicUids, pickUid } from './dynamicUids.js';

let root: string;
let claimsDir: string;
beforeEach(() => {
  root = mkdtempSync(join(tmpdir(), 'ef-uids-'));
  claimsDir = join(root, 'claims');
});
afterEach(() => rmSync(root, { recursive: true, force: true }));

/** One edgecore's uids: its data dir (the claim's owner) and its uid file. */
function edgeUids(name: string): { uids: DynamicUids; dataDir: string; file: string } {
  const dataDir = join(root, name);
  mkdirSync(dataDir, { recursive: true });
  const file = join(dataDir, 'workload-uids.json');
  return { uids: new DynamicUids(file, new Set(), { claimsDir, owner: dataDir }), dataDir, file };
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
    expect(existsSync(join(claimsDir, String(web)))).toBe(false);
  });

  it('two edgecores on one host never share a uid, even for workloads of the same name', () => {
    const one = edgeUids('edge-1').uids.uidFor('keeper');
    const two = edgeUids('edge-2').uids.uidFor('keeper');
    expect(two).not.toBe(one);
    expect(readFileSync(join(claimsDir, String(one)), 'utf8')).toBe(join(root, 'edge-1'));
    expect(readFileSync(join(claimsDir, String(two)), 'utf8')).toBe(join(root, 'edge-2'));
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
    rmSync(join(claimsDir, String(uid))); // as after a reboot, before edge-1 starts again …
    expect(edgeUids('edge-2').uids.uidFor('keeper')).toBe(uid); // … edge-2 got there first
    const again = edgeUids('edge-1').uids.uidFor('keeper');
    expect(again).not.toBe(uid);
  });
});

const DIST_UIDS = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'dist', 'edgecore', 'runtime', 'dynamicUids.js');

describe.skipIf(!existsSync(DIST_UIDS))(`edgecores starting together${existsSync(DIST_UIDS) ? '' : ' (skipped: dist/ not built; npm test builds it)'}`, () => {
  it('never give one uid to two of them, however their claims interleave', async () => {
    // Each process claims a uid for workloads w0…w(n-1) at the same instants as the others: the
    // names hash alike, so every round is a race for one claim file (a real one, across processes).
    const rounds = 150;
    const startAt = Date.now() + 1_500;
    const source = `
      import { mkdirSync } from 'node:fs';
      import { DynamicUids } from ${JSON.stringify(DIST_UIDS)};
      const [root, me, startAt, rounds] = process.argv.slice(1);
      mkdirSync(root + '/' + me, { recursive: true });
      const uids = new DynamicUids(root + '/' + me + '/u.json', new Set(), { claimsDir: root + '/claims', owner: root + '/' + me });
      const got = [];
      for (let r = 0; r < Number(rounds); r++) {
        while (Date.now() < Number(startAt) + r * 10) { /* spin to the round's instant */ }
        got.push(uids.uidFor('w' + r));
      }
      console.log(JSON.stringify(got));`;
    const run = (me: string) => promisify(execFile)(process.execPath, ['--input-type=module', '-e', source, root, me, String(startAt), String(rounds)], { timeout: 60_000 });
    const outputs = await Promise.all(['edge-a', 'edge-b', 'edge-c'].map(run));
    const [a, b, c] = outputs.map((o) => JSON.parse(o.stdout) as number[]);
    const shared = a!.map((uid, r) => [uid, b![r], c![r]]).filter((round) => new Set(round).size < 3);
    expect(shared, 'rounds where two edgecores got the same uid').toEqual([]);
  }, 90_000);
});
