import { describe, expect, it } from 'vitest';
import { parsePasswd, pickUid, privilegeDropArgs, resolveRunAs, type WorkloadUserPolicy } from './workloadUser.js';

const perWorkload: WorkloadUserPolicy = { edgeUid: 0, defaultUser: (w) => ({ uid: w === 'a' ? 70_001 : 70_002, gid: 995, groups: [] }), rootAllowed: false };
const primaryGid = (uid: number) => (uid === 1000 ? 1000 : undefined);

describe('resolveRunAs', () => {
  it('a template without identity runs as the node default, each workload its own', () => {
    expect(resolveRunAs('a', {}, perWorkload, primaryGid)).toEqual({ uid: 70_001, gid: 995, groups: [] });
    expect(resolveRunAs('b', {}, perWorkload, primaryGid)).toEqual({ uid: 70_002, gid: 995, groups: [] });
  });

  it('runAsUser takes its primary group from /etc/passwd (else the uid), runAsGroup and supplementalGroups as given', () => {
    expect(resolveRunAs('a', { runAsUser: 1000 }, perWorkload, primaryGid)).toEqual({ uid: 1000, gid: 1000, groups: [] });
    expect(resolveRunAs('a', { runAsUser: 4242 }, perWorkload, primaryGid)).toEqual({ uid: 4242, gid: 4242, groups: [] });
    expect(resolveRunAs('a', { runAsUser: 1000, runAsGroup: 20, supplementalGroups: [5, 20, 5] }, perWorkload, primaryGid)).toEqual({ uid: 1000, gid: 20, groups: [5, 20] });
  });

  it('a runAsUser in the range edgecore gives workloads of their own is refused: that uid would not be the workload\'s alone', () => {
    expect(() => resolveRunAs('a', { runAsUser: 70_500 }, perWorkload, primaryGid)).toThrow('runAsUser: 70500 is in 70000–99999, the uids edgecore gives workloads of their own; pick another uid');
  });

  it('root is refused unless the node allows it, naming the setting', () => {
    expect(() => resolveRunAs('a', { runAsUser: 0 }, perWorkload, primaryGid)).toThrow(/runAsUser: 0 \(root\) is refused on this node.*--workload-user root/);
    expect(resolveRunAs('a', { runAsUser: 0 }, { edgeUid: 0, defaultUser: null, rootAllowed: true }, primaryGid)).toBeNull();
  });

  it('an edgecore that is not root runs workloads as itself and refuses another identity by name', () => {
    const notRoot: WorkloadUserPolicy = { edgeUid: 1000, defaultUser: null, rootAllowed: false };
    expect(resolveRunAs('a', {}, notRoot, primaryGid)).toBeNull();
    expect(resolveRunAs('a', { runAsUser: 1000 }, notRoot, primaryGid)).toBeNull();
    expect(() => resolveRunAs('a', { runAsUser: 1001 }, notRoot, primaryGid)).toThrow(/edgecore runs as uid 1000, not root, and cannot switch users/);
  });
});

describe('identity plumbing', () => {
  it('privilegeDropArgs switches ids, drops every capability and keeps none across exec', () => {
    expect(privilegeDropArgs({ uid: 70_001, gid: 995, groups: [] })).toEqual(['setpriv', '--reuid', '70001', '--regid', '995', '--clear-groups', '--no-new-privs', '--inh-caps=-all', '--bounding-set=-all', '--']);
    expect(privilegeDropArgs({ uid: 1, gid: 2, groups: [3, 4] }, { pdeathsig: true })).toContain('--pdeathsig');
    expect(privilegeDropArgs({ uid: 1, gid: 2, groups: [3, 4] })).toEqual(expect.arrayContaining(['--groups', '3,4']));
  });

  it('pickUid is stable for a name and steps past taken uids', () => {
    const first = pickUid('web', new Set());
    expect(pickUid('web', new Set())).toBe(first);
    expect(pickUid('web', new Set([first]))).toBe(first === 99_999 ? 70_000 : first + 1);
    expect(() => pickUid('x', new Set([1, 2]), { first: 1, last: 2 })).toThrow(/no free uid left in 1–2/);
  });

  it('parsePasswd reads name, uid and gid and skips what is not an entry', () => {
    expect(parsePasswd('root:x:0:0:root:/root:/bin/bash\n# comment\nbad\nedgefleet-workload:x:999:995::/nonexistent:/usr/sbin/nologin\n'))
      .toEqual([{ name: 'root', uid: 0, gid: 0 }, { name: 'edgefleet-workload', uid: 999, gid: 995 }]);
  });
});
