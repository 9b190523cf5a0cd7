import { describe, expect, it } from 'vitest';
import { SelectionFilter } from './watchFilter.js';

interface Obj { labels: Record<string, string> }
const obj = (zone: string): Obj => ({ labels: { zone } });
const inNorth = (o: Obj) => o.labels.zone === 'north';

describe('SelectionFilter', () => {
  it('passes matching changes and drops the rest', () => {
    const filter = new SelectionFilter(inNorth, true);
    expect(filter.next('ADDED', 'a', obj('north'))).toBe('ADDED');
    expect(filter.next('ADDED', 'b', obj('south'))).toBeUndefined();
    expect(filter.next('MODIFIED', 'a', obj('north'))).toBe('MODIFIED');
    expect(filter.next('DELETED', 'a', obj('north'))).toBe('DELETED');
    expect(filter.next('DELETED', 'b', obj('south'))).toBeUndefined();
  });

  it('turns moving into the selection into ADDED and out of it into DELETED', () => {
    const filter = new SelectionFilter(inNorth, true);
    filter.markHeld('a');
    expect(filter.next('MODIFIED', 'a', obj('south'))).toBe('DELETED');
    expect(filter.next('MODIFIED', 'a', obj('south'))).toBeUndefined();
    expect(filter.next('MODIFIED', 'a', obj('north'))).toBe('ADDED');
    expect(filter.next('MODIFIED', 'x', obj('north'))).toBe('ADDED'); // knowsAll: x was not held
    expect(filter.next('DELETED', 'a', obj('north'))).toBe('DELETED');
  });

  it('when resumed from a revision, does not invent events for objects it has not seen', () => {
    const filter = new SelectionFilter(inNorth, false);
    expect(filter.next('MODIFIED', 'a', obj('north'))).toBe('MODIFIED');
    expect(filter.next('MODIFIED', 'b', obj('south'))).toBeUndefined();
    expect(filter.next('MODIFIED', 'b', obj('north'))).toBe('ADDED'); // seen outside before
    expect(filter.next('DELETED', 'c', obj('north'))).toBe('DELETED');
    expect(filter.next('DELETED', 'd', obj('south'))).toBeUndefined();
    expect(filter.next('MODIFIED', 'a', obj('south'))).toBe('DELETED');
  });
});
