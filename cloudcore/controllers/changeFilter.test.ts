import { describe, expect, it } from 'vitest';
import { ChangeFilter } from './changeFilter.js';

const node = (name: string, zone: string, beat = 0) => ({ metadata: { name }, zone, beat });

describe('ChangeFilter', () => {
  it('reports a change only when the derived key moves, and always for a delete', () => {
    const filter = new ChangeFilter<ReturnType<typeof node>>((n) => n.zone);
    filter.seed([node('a', 'x')]);
    expect(filter.changed('MODIFIED', node('a', 'x', 1))).toBe(false);
    expect(filter.changed('MODIFIED', node('a', 'y', 2))).toBe(true);
    expect(filter.changed('MODIFIED', node('a', 'y', 3))).toBe(false);
    expect(filter.changed('ADDED', node('b', 'x'))).toBe(true);
    expect(filter.changed('ADDED', node('b', 'x'))).toBe(false);
    expect(filter.changed('DELETED', node('b', 'x'))).toBe(true);
    // A name seen again after its delete is new.
    expect(filter.changed('ADDED', node('b', 'x'))).toBe(true);
  });
});
