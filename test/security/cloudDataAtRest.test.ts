import { spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { api, Fleet, runBin } from '../helpers/fleet.js';

/**
 * Attack: with cloudcore's data dir pre-made 0755 (by hand, or an older version under the
 * umask), user `nobody` read a Secret's value out of cloudcore.db; a copied database file gave
 * every Secret away. Now the dir is closed to others at start, every file in it is 0600, and
 * the database holds Secrets sealed under a key kept in its own file.
 */

const VALUE = 'pa55-DISTINCTIVE-for-the-attack-test';
const asRoot = process.getuid?.() === 0;
const hasSetpriv = spawnSync('setpriv', ['--version']).status === 0;

/** Runs `cat path` as user nobody (65534), as another local account would. */
function catAsNobody(path: string): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync('setpriv', ['--reuid', '65534', '--regid', '65534', '--clear-groups', 'cat', path], { encoding: 'utf8' });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('cloudcore data at rest', () => {
  let fleet: Fleet;
  afterEach(async () => { await fleet.cleanup(); });

  it.skipIf(!asRoot || !hasSetpriv)('a 0755 data dir is closed at start; nobody cannot read the store, the tokens or the key; a copied store leaks no Secret', async () => {
    fleet = new Fleet();
    const dataDir = join(fleet.root, 'cloud');
    mkdirSync(dataDir, { mode: 0o755 });
    chmodSync(dataDir, 0o755);
    chmodSync(fleet.root, 0o755); // the attacker can reach the data dir itself
    const cloud = await fleet.startCloud({ dataDir });
    const client = api(cloud);
    expect((await client.call('POST', '/secrets', { metadata: { name: 'db' }, data: { password: VALUE } })).status).toBe(201);

    expect(statSync(dataDir).mode & 0o777).toBe(0o700);
    expect(cloud.proc.lines.some((l) => l.msg === 'a cloudcore file or dir was readable by others: closed it' && l.path === dataDir)).toBe(true);
    const files = readdirSync(dataDir);
    expect(files).toEqual(expect.arrayContaining(['cloudcore.db', 'telemetry.db', 'admin.token', 'readonly.token', 'secret-encryption.key']));
    for (const file of files) {
      expect({ file, mode: (statSync(join(dataDir, file)).mode & 0o777).toString(8) }).toEqual({ file, mode: '600' });
      const read = catAsNobody(join(dataDir, file));
      expect(read.status).not.toBe(0);
      expect(read.stderr).toMatch(/Permission denied/);
    }

    // The database file (with its WAL) copied away holds no value: the key stayed behind.
    const stolen = join(fleet.tempDir('ef-stolen-'), 'cloudcore.db');
    for (const suffix of ['', '-wal']) {
      if (existsSync(join(dataDir, `cloudcore.db${suffix}`))) copyFileSync(join(dataDir, `cloudcore.db${suffix}`), stolen + suffix);
    }
    const bytes = ['', '-wal'].filter((s) => existsSync(stolen + s)).map((s) => readFileSync(stolen + s).toString('latin1')).join('');
    expect(bytes).toContain('ef-sealed:v1:'); // the row is there, sealed …
    expect(bytes).not.toContain(VALUE); // … its value is not
  });

  it.skipIf(!asRoot)('a data dir owned by another user and open to others stops the start, named', async () => {
    fleet = new Fleet();
    const dataDir = join(fleet.root, 'foreign');
    mkdirSync(dataDir, { mode: 0o755 });
    chmodSync(dataDir, 0o777);
    spawnSync('chown', ['65534:65534', dataDir]);
    const proc = runBin('cloudcore', ['--data-dir', dataDir, '--port', '0']);
    expect(await proc.exited).toBe(1);
    await proc.drained;
    expect(proc.lines.find((l) => l.msg === 'cloudcore failed to start')?.err).toContain(`${dataDir} is mode 0777 and owned by uid 65534, not by cloudcore's user`);
    expect(readdirSync(dataDir)).toEqual([]);
  });
});
