import { describe, expect, it } from 'vitest';
import type { AgentUpgradeFrame, AgentUpgradeStatus } from '../../protocol/index.js';
import { decideFrame, decideStart, healthProblems, parseSha256Sums, releaseArch, resumeFrom, retryDelayMs, type SwitchRecord } from './decide.js';

const frame = (over: Partial<AgentUpgradeFrame> = {}): AgentUpgradeFrame => ({
  type: 'agentUpgrade', upgrade: 'north', revision: 2, version: '0.2.0',
  file: 'edgefleet-edge-0.2.0-linux-x64.tar.gz', sha256: 'a'.repeat(64), size: 1000, ...over,
});
const status = (over: Partial<AgentUpgradeStatus> = {}): AgentUpgradeStatus => ({
  upgrade: 'north', revision: 2, version: '0.2.0', previousVersion: '0.1.0', phase: 'Restarting', message: '', since: '2026-12-05T00:00:00Z', ...over,
});
const record = (over: Partial<SwitchRecord> = {}): SwitchRecord => ({
  upgrade: 'north', revision: 2, version: '0.2.0', previousVersion: '0.1.0', workloads: [], ...over,
});
const ctx = { running: '0.1.0', underLoader: true, arch: 'x64' };

describe('decideFrame', () => {
  it('starts an attempt for another version when under the loader with an artefact named', () => {
    expect(decideFrame(frame(), ctx)).toEqual({ do: 'start' });
  });
  it('does nothing for the running version, and calls off an attempt not yet switched', () => {
    expect(decideFrame(frame({ version: '0.1.0' }), ctx)).toEqual({ do: 'nothing' });
    expect(decideFrame(frame({ version: '0.1.0', revision: 3 }), { ...ctx, inFlight: { upgrade: 'north', revision: 2, version: '0.2.0' } })).toEqual({ do: 'callOff' });
  });
  it('keeps an attempt under way when the same frame comes again (after a reconnect)', () => {
    expect(decideFrame(frame(), { ...ctx, inFlight: { upgrade: 'north', revision: 2, version: '0.2.0' } })).toEqual({ do: 'keep' });
  });
  it('never retries by itself an attempt that ended (rolled back or failed); a new revision is tried', () => {
    for (const phase of ['RolledBack', 'Failed', 'Committed'] as const) {
      expect(decideFrame(frame(), { ...ctx, last: status({ phase }) })).toEqual({ do: 'keep' });
    }
    expect(decideFrame(frame({ revision: 3 }), { ...ctx, last: status({ phase: 'RolledBack' }) })).toEqual({ do: 'start' });
  });
  it('refuses clearly outside the loader, without an artefact for the arch, or on an arch with none', () => {
    const out = decideFrame(frame(), { ...ctx, underLoader: false });
    expect(out.do === 'refuse' && out.message).toMatch(/not running under edgefleet-loader/);
    const none = decideFrame(frame({ file: undefined, sha256: undefined, size: undefined }), ctx);
    expect(none.do === 'refuse' && none.message).toBe('the cloud has no artefact of version 0.2.0 for linux-x64');
    expect(decideFrame(frame(), { ...ctx, arch: null }).do).toBe('refuse');
  });
  it('goes back to a version still installed without an artefact from the cloud (a rollback to the baseline)', () => {
    expect(decideFrame(frame({ file: undefined, sha256: undefined, size: undefined }), { ...ctx, installed: true })).toEqual({ do: 'start' });
    expect(decideFrame(frame(), { ...ctx, underLoader: false, installed: true }).do).toBe('refuse');
  });
});

describe('decideStart', () => {
  it('the new version checks its health; the old one after a rollback reports why; nothing else acts', () => {
    expect(decideStart(status(), record(), '0.2.0', null)).toEqual({ do: 'check' });
    expect(decideStart(status({ phase: 'Checking' }), record(), '0.2.0', null)).toEqual({ do: 'check' });
    expect(decideStart(status({ phase: 'Checking' }), record({ failure: 'not healthy: link down' }), '0.1.0', 'version 0.2.0 exited with code 1'))
      .toEqual({ do: 'rolledBack', reason: 'not healthy: link down; version 0.2.0 exited with code 1' });
    expect(decideStart(status(), record(), '0.1.0', 'version 0.2.0 exited with code 1 before it committed'))
      .toEqual({ do: 'rolledBack', reason: 'version 0.2.0 exited with code 1 before it committed' });
    expect(decideStart(status(), record(), '0.1.0', null)).toEqual({ do: 'rolledBack', reason: 'the node came back on 0.1.0 before version 0.2.0 started' });
    expect(decideStart(status({ phase: 'Committed' }), record(), '0.2.0', null)).toEqual({ do: 'none' });
    expect(decideStart(status(), record(), '0.3.0', null)).toEqual({ do: 'none' });
    expect(decideStart(undefined, undefined, '0.1.0', 'stray')).toEqual({ do: 'none' });
  });
});

describe('healthProblems', () => {
  const base = { linkUp: true, brokerListening: true, keepsPid: (r: string) => r === 'container' };
  it('healthy when link, broker and every recorded workload are back (adopted containers with the same pid)', () => {
    const expected = [{ name: 'web', runtime: 'container', pid: 10 }, { name: 'job', runtime: 'process', pid: 20 }];
    const now = new Map([['web', { state: 'Running', pid: 10 }], ['job', { state: 'Running', pid: 33 }]]);
    expect(healthProblems({ ...base, expected, now })).toEqual([]);
  });
  it('names each problem', () => {
    const expected = [{ name: 'web', runtime: 'container', pid: 10 }, { name: 'gone', runtime: 'process', pid: 1 }, { name: 'crash', runtime: 'process', pid: 2 }];
    const now = new Map([['web', { state: 'Running', pid: 11 }], ['crash', { state: 'Failed', pid: null }]]);
    expect(healthProblems({ ...base, linkUp: false, brokerListening: false, expected, now })).toEqual([
      'the cloud link is not up', 'the device broker does not accept connections',
      'workload web was restarted (pid 10 → 11)', 'workload crash is Failed',
    ]);
  });
});

describe('release helpers', () => {
  it('parses SHA256SUMS and refuses anything else', () => {
    const sums = parseSha256Sums(`${'a'.repeat(64)}  x.tar.gz\n${'b'.repeat(64)} *y.tar.gz\n`);
    expect([...sums]).toEqual([['x.tar.gz', 'a'.repeat(64)], ['y.tar.gz', 'b'.repeat(64)]]);
    expect(() => parseSha256Sums('zz  x.tar.gz')).toThrow(/line 1/);
    expect(() => parseSha256Sums(`${'a'.repeat(64)}  ../x`)).toThrow(/line 1/);
    expect(() => parseSha256Sums(`${'a'.repeat(64)}  x\n${'b'.repeat(64)}  x`)).toThrow(/twice/);
  });
  it('resumes with a Range from the bytes held; starts over when it holds more than the size', () => {
    expect(resumeFrom(0, 100)).toEqual({ range: null, restart: false, done: false });
    expect(resumeFrom(40, 100)).toEqual({ range: 'bytes=40-', restart: false, done: false });
    expect(resumeFrom(100, 100).done).toBe(true);
    expect(resumeFrom(120, 100)).toEqual({ range: null, restart: true, done: false });
  });
  it('maps Node arch names to release names and backs off 1 s doubling to 30 s', () => {
    expect(['x64', 'arm64', 'arm', 'ia32'].map(releaseArch)).toEqual(['x64', 'arm64', 'armv7', null]);
    expect([1, 2, 3, 6, 20].map(retryDelayMs)).toEqual([1000, 2000, 4000, 30_000, 30_000]);
  });
});
