import { describe, expect, it } from 'vitest';
import { groupMembers, isLive, parseProcStat, readProcStat } from './processGroup.js';

describe('parseProcStat', () => {
  it('reads state, ppid, pgrp and start ticks (field 22), even with ") " in the command name', () => {
    const fields = ['S', '1', '4242', '4242', '0', '-1', '4194560', '0', '0', '0', '0', '0', '0', '0', '0', '20', '0', '1', '0', '987654', '1000'];
    expect(parseProcStat(`4242 (odd) name) ${fields.join(' ')}\n`)).toEqual({ state: 'S', ppid: 1, pgrp: 4242, startTicks: 987654 });
  });

  it('rejects truncated or malformed text', () => {
    expect(parseProcStat('')).toBeNull();
    expect(parseProcStat('12 (x) S 1 2')).toBeNull();
  });
});

describe('/proc lookups', () => {
  it('sees this process as live with its own start ticks and group', () => {
    const self = readProcStat(process.pid)!;
    expect(self.state).not.toBe('Z');
    expect(isLive(process.pid, self.startTicks)).toBe(true);
    expect(isLive(process.pid, self.startTicks + 1)).toBe(false);
    expect(groupMembers(self.pgrp)).toContain(process.pid);
    expect(readProcStat(999_999_999)).toBeNull();
  });
});
