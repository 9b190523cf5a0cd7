import { mkdtempSync, readFileSync, rmSync, statSync, existsSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { CappedLogStore, LineSplitter, pieces } from './cappedLog.js';

let dir: string;
beforeEach(() => { dir = mkdtempSync(join(tmpdir(), 'cappedlog-')); });
afterEach(() => { rmSync(dir, { recursive: true, force: true }); });

describe('LineSplitter', () => {
  it('joins lines split across chunks and keeps the unterminated rest', () => {
    const splitter = new LineSplitter();
    expect(splitter.push('a\nb')).toEqual(['a']);
    expect(splitter.push('c\n\nd')).toEqual(['bc', '']);
    expect(splitter.flush()).toEqual(['d']);
    expect(splitter.flush()).toEqual([]);
  });

  it('cuts a line that never ends', () => {
    const splitter = new LineSplitter(4);
    expect(splitter.push('abcdefghij')).toEqual(['abcd', 'efgh']);
    expect(splitter.flush()).toEqual(['ij']);
  });
});

describe('CappedLogStore', () => {
  it('appends raw lines to <logDir>/<name>.log', async () => {
    const store = new CappedLogStore(dir, 1024);
    store.append('web', ['one', 'two']);
    store.append('web', ['three']);
    expect(readFileSync(join(dir, 'web.log'), 'utf8')).toBe('one\ntwo\nthree\n');
    expect(await store.readTail('web', 2)).toEqual(['two', 'three']);
    expect(await store.readTail('web', 100)).toEqual(['one', 'two', 'three']);
    expect(await store.readTail('web', 0)).toEqual([]);
  });

  it('rotates to .log.1 before exceeding maxBytes, keeping disk use within 2 × maxBytes', async () => {
    const maxBytes = 100;
    const store = new CappedLogStore(dir, maxBytes);
    for (let i = 0; i < 200; i++) {
      store.append('app', [`line-${String(i).padStart(4, '0')}`]); // 10 bytes each with newline
      const current = statSync(join(dir, 'app.log')).size;
      const old = existsSync(join(dir, 'app.log.1')) ? statSync(join(dir, 'app.log.1')).size : 0;
      expect(current).toBeLessThanOrEqual(maxBytes);
      expect(current + old).toBeLessThanOrEqual(2 * maxBytes);
    }
    const tail = await store.readTail('app', 15);
    expect(tail).toEqual(Array.from({ length: 15 }, (_, k) => `line-${String(185 + k).padStart(4, '0')}`));
    // Only 20 lines fit on disk; asking for more returns what is kept, still in order.
    expect(await store.readTail('app', 1000)).toEqual(Array.from({ length: 20 }, (_, k) => `line-${String(180 + k).padStart(4, '0')}`));
  });

  it('keeps a large batch contiguous across the rotation and cuts an overlong line', async () => {
    const store = new CappedLogStore(dir, 16);
    store.append('big', ['aaaa']);
    store.append('big', ['bbbbbbbbbb', 'cccccccccc', 'dddd', 'eeee']); // 11 + 11 + 5 + 5 bytes
    expect(readFileSync(join(dir, 'big.log.1'), 'utf8')).toBe('cccccccccc\ndddd\n');
    expect(readFileSync(join(dir, 'big.log'), 'utf8')).toBe('eeee\n');
    expect(await store.readTail('big', 10)).toEqual(['cccccccccc', 'dddd', 'eeee']);
    store.append('huge', ['x'.repeat(40)]);
    expect(statSync(join(dir, 'huge.log')).size).toBe(16);
    expect(await store.readTail('huge', 1)).toEqual(['x'.repeat(15)]);
  });

  it('splits lines into pieces of at most maxBytes, dropping what cannot survive', () => {
    const sizes = pieces(['aaaa', 'bbbb', 'cccc', 'dddd', 'eeee'], 10).map((b) => b.toString());
    expect(sizes).toEqual(['bbbb\ncccc\n', 'dddd\neeee\n']);
    expect(pieces(['é'.repeat(10)], 5).map((b) => b.toString())).toEqual(['éé\n']);
  });

  it('continues an existing file after a restart, counting its size', async () => {
    writeFileSync(join(dir, 'svc.log'), 'old-1\nold-2\n');
    const store = new CappedLogStore(dir, 20);
    store.append('svc', ['new-1']); // 12 + 6 = 18 ≤ 20
    expect(existsSync(join(dir, 'svc.log.1'))).toBe(false);
    store.append('svc', ['new-2']); // would be 24 → rotate first
    expect(readFileSync(join(dir, 'svc.log.1'), 'utf8')).toBe('old-1\nold-2\nnew-1\n');
    expect(await store.readTail('svc', 3)).toEqual(['old-2', 'new-1', 'new-2']);
  });

  it('returns no lines for an unknown name, deletes both files, and refuses path-like names', async () => {
    const store = new CappedLogStore(dir, 10);
    expect(await store.readTail('nobody', 5)).toEqual([]);
    store.append('gone', ['12345']);
    store.append('gone', ['67890']);
    expect(existsSync(join(dir, 'gone.log.1'))).toBe(true);
    store.delete('gone');
    expect(existsSync(join(dir, 'gone.log'))).toBe(false);
    expect(existsSync(join(dir, 'gone.log.1'))).toBe(false);
    expect(() => store.append('../escape', ['x'])).toThrow(/invalid workload name/);
  });

  it('reads the tail of large files from the end, across chunk and file boundaries, keeping multi-byte characters whole', async () => {
    const store = new CappedLogStore(dir, 256 * 1024);
    const lines = Array.from({ length: 9000 }, (_, k) => `line-${k} ${'é'.repeat(20)}`);
    for (let k = 0; k < lines.length; k += 500) store.append('big', lines.slice(k, k + 500));
    expect(existsSync(join(dir, 'big.log.1'))).toBe(true);
    expect(await store.readTail('big', 3)).toEqual(lines.slice(-3));
    const current = readFileSync(join(dir, 'big.log'), 'utf8').split('\n').length - 1;
    // Reaching into the rotated file: the newest lines of .log.1 followed by all of .log.
    expect(await store.readTail('big', current + 2)).toEqual(lines.slice(-(current + 2)));
  });
});
