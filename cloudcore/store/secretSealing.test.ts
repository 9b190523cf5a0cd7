import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { SecretSchema } from '../../protocol/index.js';
import { newKeyFileText, parseKeyFile, SecretSealer } from './secretSealing.js';
import { openSqliteStore } from './sqliteStore.js';
import { UnreadableError } from './store.js';

const VALUE = 'hunter2-DISTINCTIVE-secret-value';
const secret = (name: string, value = VALUE) => SecretSchema.parse({ kind: 'Secret', metadata: { name }, data: { password: value } });
const sealerOf = (text: string) => new SecretSealer(parseKeyFile(text, 'key file'));

describe('parseKeyFile', () => {
  it('reads <id>:<base64 key> lines, first one seals', () => {
    const text = newKeyFileText();
    const keys = parseKeyFile(`# comment\n\n${text}`, 'f');
    expect(keys).toHaveLength(1);
    expect(keys[0]!.key).toHaveLength(32);
    expect(sealerOf(text).primaryKeyId).toBe(keys[0]!.id);
  });

  it('refuses a line without a colon, a key of the wrong length, a repeated id and a file with no key, naming the line', () => {
    const key = Buffer.alloc(32, 7).toString('base64');
    expect(() => parseKeyFile('justtext\n', 'f')).toThrow('f line 1: expected "<id>:<base64 key>"');
    expect(() => parseKeyFile(`a:${Buffer.alloc(16).toString('base64')}\n`, 'f')).toThrow(/f line 1: the key must be 32 bytes/);
    expect(() => parseKeyFile(`a:not base64!\n`, 'f')).toThrow(/line 1: the key must be 32 bytes/);
    expect(() => parseKeyFile(`a:${key}\na:${key}\n`, 'f')).toThrow('f line 2: key id a appears twice');
    expect(() => parseKeyFile('# nothing\n', 'f')).toThrow('f holds no key');
    expect(() => parseKeyFile(`bad id:${key}\n`, 'f')).toThrow(/line 1: a key id is/);
  });
});

describe('SecretSealer', () => {
  const sealer = sealerOf(newKeyFileText());

  it('seals Secret bodies and opens them again; other kinds pass unchanged', () => {
    const body = JSON.stringify(secret('db'));
    const sealed = sealer.seal('Secret', 'db', body);
    expect(sealed).toMatch(/^ef-sealed:v1:k\d{8}-[0-9a-f]{6}:/);
    expect(sealed).not.toContain(VALUE);
    expect(sealer.open('Secret', 'db', sealed)).toEqual({ body });
    expect(sealer.seal('Config', 'db', body)).toBe(body);
  });

  it('a sealed body moved to another object, altered, or sealed under an unknown key does not open, and says why', () => {
    const sealed = sealer.seal('Secret', 'db', JSON.stringify(secret('db')));
    expect(sealer.open('Secret', 'other', sealed)).toEqual({ reason: expect.stringMatching(/does not open with key .*sealed for another object/) });
    // Another character in place of the third from the end (comparing that one: the last one
    // was compared before, and one run in 64 'changed' an 'A' into an 'A').
    const flipped = sealed.slice(0, -3) + (sealed.at(-3) === 'A' ? 'B' : 'A') + sealed.slice(-2);
    expect(flipped).not.toBe(sealed);
    expect(sealer.open('Secret', 'db', flipped)).toHaveProperty('reason');
    expect(sealerOf(newKeyFileText()).open('Secret', 'db', sealed)).toEqual({ reason: expect.stringMatching(/sealed with key "k.*", which is not in the secret key file/) });
  });
});

describe('a sealing SQLite store', () => {
  let dir: string;
  afterEach(async () => { await rm(dir, { recursive: true, force: true }); });

  /** Every byte SQLite keeps for the store: the file, its WAL and shared memory. */
  const fileBytes = (path: string) => ['', '-wal', '-shm'].map((s) => path + s).filter(existsSync).map((p) => readFileSync(p).toString('latin1')).join('');

  it('keeps no Secret value in its files, only in what it hands back', async () => {
    dir = await mkdtemp(join(tmpdir(), 'ef-sealed-'));
    const path = join(dir, 'cloudcore.db');
    const store = await openSqliteStore({ path, sealer: sealerOf(newKeyFileText()) });
    await store.create(secret('db'));
    await store.update({ ...(await store.get('Secret', 'db'))!, data: { password: `${VALUE}-2` } });
    expect((await store.get('Secret', 'db'))!.data.password).toBe(`${VALUE}-2`);
    expect(fileBytes(path)).not.toContain(VALUE);
    await store.close();
    expect(fileBytes(path)).not.toContain(VALUE);
  });

  it('seals Secrets a store kept plain (an older version) when it opens with a key, and leaves no plain copy in the file', async () => {
    dir = await mkdtemp(join(tmpdir(), 'ef-sealed-'));
    const path = join(dir, 'cloudcore.db');
    const plain = await openSqliteStore({ path });
    await plain.create(secret('db'));
    await plain.close();
    expect(fileBytes(path)).toContain(VALUE);

    const sealed = await openSqliteStore({ path, sealer: sealerOf(newKeyFileText()) });
    expect(sealed.resealed).toEqual({ objects: 1, events: 1 });
    expect((await sealed.get('Secret', 'db'))!.data.password).toBe(VALUE);
    await sealed.close();
    expect(fileBytes(path)).not.toContain(VALUE);
  });

  it('rotates: a new first key with the old one kept below reseals everything, after which the old key can go', async () => {
    dir = await mkdtemp(join(tmpdir(), 'ef-sealed-'));
    const path = join(dir, 'cloudcore.db');
    const oldKey = newKeyFileText();
    const newKey = newKeyFileText(new Date('2030-01-01'));
    const first = await openSqliteStore({ path, sealer: sealerOf(oldKey) });
    await first.create(secret('db'));
    await first.close();

    const rotating = await openSqliteStore({ path, sealer: sealerOf(`${newKey}${oldKey}`) });
    expect(rotating.resealed).toEqual({ objects: 1, events: 1 });
    await rotating.close();
    const rotated = await openSqliteStore({ path, sealer: sealerOf(newKey) });
    expect(rotated.resealed).toEqual({ objects: 0, events: 0 });
    expect((await rotated.get('Secret', 'db'))!.data.password).toBe(VALUE);
    await rotated.close();
  });

  it('without its key, a sealed Secret is an unreadable object named with the missing key; nothing else is affected', async () => {
    dir = await mkdtemp(join(tmpdir(), 'ef-sealed-'));
    const path = join(dir, 'cloudcore.db');
    const store = await openSqliteStore({ path, sealer: sealerOf(newKeyFileText()) });
    await store.create(secret('db'));
    await store.close();

    const keyless = await openSqliteStore({ path, sealer: sealerOf(newKeyFileText()) });
    await expect(keyless.get('Secret', 'db')).rejects.toBeInstanceOf(UnreadableError);
    expect(await keyless.listUnreadable()).toEqual([{ kind: 'Secret', name: 'db', reason: expect.stringMatching(/sealed with key "k.*", which is not in the secret key file/) }]);
    expect((await keyless.list('Config')).items).toEqual([]);
    await keyless.close();
  });
});
