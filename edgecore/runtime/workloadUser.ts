import { spawnSync } from 'node:child_process';
import { accessSync, constants, readFileSync, statSync } from 'node:fs';
import { delimiter, dirname, join, resolve } from 'node:path';
import type { ProcessTemplate } from '../../protocol/index.js';
import { DEFAULT_UID_CLAIMS_DB, DYNAMIC_UIDS, DynamicUids } from './dynamicUids.js';

export { DYNAMIC_UIDS, DynamicUids, pickUid } from './dynamicUids.js';

/**
 * Who a process workload runs as. edgecore as root owns the node: its credential, its database,
 * every workload's secrets. A workload running as edgecore's user could read them all, so when
 * edgecore is root, workloads run unprivileged: the template's `runAsUser`, else (the default,
 * `per-workload`) a uid of its own from a dynamic range, as systemd's DynamicUser does, in the
 * group `edgefleet-workload` (created on first start). A uid of its own is what keeps one
 * workload out of another's secrets: two processes of one uid can read each other's files.
 * Root for a workload is refused unless the node's own setting makes its workload user root.
 */

export const WORKLOAD_GROUP = 'edgefleet-workload';
/** The `workloadUser` setting's default: each workload its own uid. */
export const PER_WORKLOAD = 'per-workload';

export interface RunAs { uid: number; gid: number; groups: number[] }

export interface WorkloadUserPolicy {
  /** edgecore's own uid: only root (0) can run a workload as someone else. */
  edgeUid: number;
  /** Workloads without runAsUser run as this (given the workload's name); null = as edgecore (not root, or the node chose root). */
  defaultUser: ((workload: string) => RunAs) | null;
  /** The node allows root workloads (its workload user is root). */
  rootAllowed: boolean;
}

type IdentityFields = Pick<ProcessTemplate, 'runAsUser' | 'runAsGroup' | 'supplementalGroups'>;

/**
 * The identity a template runs as, with the node's defaults filled in (null: as edgecore, no
 * switch). Throws naming the field when the node cannot or will not give it.
 */
export function resolveRunAs(workload: string, t: IdentityFields, policy: WorkloadUserPolicy, primaryGid: (uid: number) => number | undefined): RunAs | null {
  const asked = t.runAsUser !== undefined || t.runAsGroup !== undefined || t.supplementalGroups !== undefined;
  if (policy.edgeUid !== 0) {
    if (!asked || (t.runAsUser === policy.edgeUid && t.runAsGroup === undefined && t.supplementalGroups === undefined)) return null;
    throw new Error(`runAsUser/runAsGroup/supplementalGroups: edgecore runs as uid ${policy.edgeUid}, not root, and cannot switch users; run edgecore as root or remove them from the template`);
  }
  if (t.runAsUser !== undefined && isWorkloadOwnUid(t.runAsUser)) {
    throw new Error(`runAsUser: ${t.runAsUser} is in ${DYNAMIC_UIDS.first}–${DYNAMIC_UIDS.last}, the uids edgecore gives workloads of their own; pick another uid`);
  }
  const fallback = t.runAsUser !== undefined && t.runAsGroup !== undefined && t.supplementalGroups !== undefined
    ? { uid: 0, gid: 0, groups: [] } // fully given: no default needed (nor a uid allocated for it)
    : policy.defaultUser?.(workload) ?? { uid: 0, gid: 0, groups: [] };
  const uid = t.runAsUser ?? fallback.uid;
  if (uid === 0 && !policy.rootAllowed) {
    throw new Error('runAsUser: 0 (root) is refused on this node: a root workload can read the node\'s credential, database and every secret; '
      + 'a node allows it only with --workload-user root');
  }
  const gid = t.runAsGroup ?? (t.runAsUser === undefined ? fallback.gid : primaryGid(uid) ?? uid);
  const groups = t.supplementalGroups ?? (t.runAsUser === undefined ? fallback.groups : []);
  if (uid === 0 && gid === 0 && groups.length === 0) return null;
  return { uid, gid, groups: [...new Set(groups)].sort((a, b) => a - b) };
}

/** A uid edgecore gives one workload alone: every process of it is that workload's. */
export function isWorkloadOwnUid(uid: number): boolean {
  return uid >= DYNAMIC_UIDS.first && uid <= DYNAMIC_UIDS.last;
}

/** The template with its identity written out, so the runtime runs exactly what was decided (and a change to it restarts the workload). */
export function withRunAs<T extends ProcessTemplate>(template: T, runAs: RunAs | null): T {
  if (runAs === null) return template;
  return { ...template, runAsUser: runAs.uid, runAsGroup: runAs.gid, supplementalGroups: runAs.groups };
}

/** The identity a (resolved) template asks for, or null to run as edgecore. */
export function runAsOf(t: IdentityFields): RunAs | null {
  if (t.runAsUser === undefined) return null;
  return { uid: t.runAsUser, gid: t.runAsGroup ?? t.runAsUser, groups: t.supplementalGroups ?? [] };
}

/**
 * The argv prefix that starts a command as `runAs` (util-linux `setpriv`): ids switched, no
 * capability kept or regained (no_new_privs, empty bounding set), so a setuid binary cannot
 * lift it back to root. `pdeathsig` makes it die with its parent, for a PID namespace's init.
 */
export function privilegeDropArgs(runAs: RunAs, opts: { pdeathsig?: boolean } = {}): string[] {
  return [
    'setpriv', '--reuid', String(runAs.uid), '--regid', String(runAs.gid),
    ...(runAs.groups.length > 0 ? ['--groups', runAs.groups.join(',')] : ['--clear-groups']),
    '--no-new-privs', '--inh-caps=-all', '--bounding-set=-all',
    ...(opts.pdeathsig ? ['--pdeathsig', 'SIGKILL'] : []),
    '--',
  ];
}

/**
 * The argv prefix that runs a command as the init of a new PID namespace: when it ends, or the
 * `unshare` above it is killed, the kernel ends every process in the namespace, including ones
 * that left their process group with setsid.
 */
export const PID_NAMESPACE_ARGS = ['unshare', '--pid', '--fork', '--kill-child', '--'];

/** Whether `command` (a path, or a name looked up in PATH) is an executable file; spawn's ENOENT, said before a wrapper hides it. */
export function findExecutable(command: string, path: string | undefined, cwd?: string): string | null {
  const candidates = command.includes('/')
    ? [cwd && !command.startsWith('/') ? join(cwd, command) : command]
    : (path ?? '').split(delimiter).filter((d) => d !== '').map((d) => join(d, command));
  for (const candidate of candidates) {
    try {
      if (!statSync(candidate).isFile()) continue;
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch { /* next */ }
  }
  return null;
}

/** uid → primary gid from /etc/passwd (undefined when the uid has no entry). */
export function primaryGidFromPasswd(passwd = readPasswd()): (uid: number) => number | undefined {
  const byUid = new Map(passwd.map((e) => [e.uid, e.gid]));
  return (uid) => byUid.get(uid);
}

export interface PasswdEntry { name: string; uid: number; gid: number }

export function parsePasswd(text: string): PasswdEntry[] {
  const entries: PasswdEntry[] = [];
  for (const line of text.split('\n')) {
    const [name, , uid, gid] = line.split(':');
    if (!name || uid === undefined || gid === undefined || !/^\d+$/.test(uid) || !/^\d+$/.test(gid)) continue;
    entries.push({ name, uid: Number(uid), gid: Number(gid) });
  }
  return entries;
}

function readPasswd(): PasswdEntry[] {
  try {
    return parsePasswd(readFileSync('/etc/passwd', 'utf8'));
  } catch {
    return [];
  }
}

export interface WorkloadUserSetup { policy: WorkloadUserPolicy; warnings: string[]; uids: DynamicUids | null }

/**
 * Works out the node's workload identity from the `workloadUser` setting once at start:
 * `per-workload` (each workload its own uid in the `edgefleet-workload` group, made if missing,
 * `nobody`'s group where it cannot be), a user name or uid that every workload then shares, or
 * `root`. A user named in the setting that does not exist stops the start.
 */
export function prepareWorkloadUser(setting: string, uidFile: string, edgeUid = process.getuid?.() ?? 0): WorkloadUserSetup {
  const warnings: string[] = [];
  if (edgeUid !== 0) {
    return { uids: null, policy: { edgeUid, defaultUser: null, rootAllowed: false }, warnings: [
      `edgecore runs as uid ${edgeUid}, not root: process workloads run as that same user and can read what edgecore can (its credential, its database); run edgecore as root to give them their own users`,
    ] };
  }
  if (setting === 'root' || setting === '0') {
    return { uids: null, policy: { edgeUid, defaultUser: null, rootAllowed: true }, warnings: [
      'workloads run as root (--workload-user root): any workload can read the node\'s credential, its database and every other workload\'s secrets',
    ] };
  }
  if (setting === PER_WORKLOAD) {
    let passwd = readPasswd();
    let group = lookUp(WORKLOAD_GROUP, passwd);
    if (group === undefined) {
      const made = spawnSync('useradd', ['--system', '--user-group', '--no-create-home', '--home-dir', '/nonexistent', '--shell', '/usr/sbin/nologin', WORKLOAD_GROUP], { encoding: 'utf8' });
      passwd = readPasswd();
      group = lookUp(WORKLOAD_GROUP, passwd);
      if (group === undefined) {
        group = lookUp('nobody', passwd) ?? { name: 'nobody', uid: 65534, gid: 65534 };
        const why = made.error ? made.error.message : (made.stderr || `exit code ${made.status}`).trim();
        warnings.push(`cannot create ${WORKLOAD_GROUP} (useradd: ${why}); workloads run in ${group.name}'s group (gid ${group.gid}), still each as its own uid`);
      }
    }
    const uids = new DynamicUids(uidFile, new Set(passwd.map((e) => e.uid)), { claimsDb: DEFAULT_UID_CLAIMS_DB, owner: dirname(resolve(uidFile)) });
    const gid = group.gid;
    return { uids, policy: { edgeUid, defaultUser: (workload) => ({ uid: uids.uidFor(workload), gid, groups: [] }), rootAllowed: false }, warnings };
  }
  let entry = lookUp(setting, readPasswd());
  if (entry === undefined) {
    if (!/^\d+$/.test(setting)) throw new Error(`workloadUser: no user named ${JSON.stringify(setting)} on this host (give per-workload, a name from /etc/passwd, a uid, or root)`);
    entry = { name: setting, uid: Number(setting), gid: Number(setting) };
  }
  if (entry.uid === 0) return prepareWorkloadUser('root', uidFile, edgeUid);
  const shared = { uid: entry.uid, gid: entry.gid, groups: [] };
  warnings.push(`every workload without runAsUser runs as ${entry.name} (uid ${entry.uid}): they can read each other's secrets; the default, per-workload, gives each its own uid`);
  return { uids: null, policy: { edgeUid, defaultUser: () => shared, rootAllowed: false }, warnings };
}

function lookUp(nameOrUid: string, passwd: PasswdEntry[]): PasswdEntry | undefined {
  return /^\d+$/.test(nameOrUid) ? passwd.find((e) => e.uid === Number(nameOrUid)) : passwd.find((e) => e.name === nameOrUid);
}
