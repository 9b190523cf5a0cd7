import { FINAL_AGENT_UPGRADE_PHASES, edgeArchOfNode, type AgentUpgradeFrame, type AgentUpgradeStatus } from '../../protocol/index.js';

/**
 * The agent upgrade's decisions, as plain functions of what the node knows (docs/install.md,
 * "Upgrade"); upgrader.ts does the I/O around them. Kept apart so each rule is tested alone.
 */

/** One attempt's identity: the cloud's AgentUpgrade, its revision and the version it asks for. */
export interface AttemptKey { upgrade: string; revision: number; version: string }

export type FrameDecision =
  | { do: 'nothing' }
  /** The running version is what the cloud wants again: stop the attempt that has not switched yet. */
  | { do: 'callOff' }
  /** This attempt is already under way, or already ended (never retried by the node itself). */
  | { do: 'keep' }
  | { do: 'refuse'; message: string }
  | { do: 'start' };

export interface FrameContext {
  running: string;
  /** EDGEFLEET_LOADER is set: edgecore runs under edgefleet-loader, which can switch versions. */
  underLoader: boolean;
  /** The attempt downloading/verifying/installing now, if any. */
  inFlight?: AttemptKey | undefined;
  /** The last attempt's status (from attempt.json). */
  last?: AgentUpgradeStatus | undefined;
  /** The node's release architecture (x64 | arm64 | armv7), or null for one there is no artefact for. */
  arch: string | null;
  /** `$EDGEFLEET_HOME/<version>` is there and intact (e.g. the previous version, after a rollback the operator asked for). */
  installed?: boolean;
}

const sameAttempt = (a: AttemptKey, b: AttemptKey): boolean =>
  a.upgrade === b.upgrade && a.revision === b.revision && a.version === b.version;

export function decideFrame(frame: AgentUpgradeFrame, ctx: FrameContext): FrameDecision {
  if (frame.version === ctx.running) return ctx.inFlight ? { do: 'callOff' } : { do: 'nothing' };
  if (ctx.inFlight && sameAttempt(ctx.inFlight, frame)) return { do: 'keep' };
  // An ended attempt is not tried again by the node: after a rollback the same version would
  // most likely fail the same way. The operator asks again with a new revision.
  if (ctx.last && sameAttempt(ctx.last, frame) && FINAL_AGENT_UPGRADE_PHASES.includes(ctx.last.phase)) return { do: 'keep' };
  if (!ctx.underLoader) {
    return { do: 'refuse', message: 'edgecore is not running under edgefleet-loader (EDGEFLEET_LOADER is not set, e.g. a git checkout), '
      + 'so it cannot switch versions; install the node with install.sh (docs/install.md) to upgrade it over the air' };
  }
  // Going back to a version still on disk needs no download (the cloud may not even serve it any more).
  if (ctx.installed) return { do: 'start' };
  if (ctx.arch === null) return { do: 'refuse', message: `there are no edge artefacts for this node's architecture (${process.arch})` };
  if (frame.file === undefined || frame.sha256 === undefined || frame.size === undefined) {
    return { do: 'refuse', message: `the cloud has no artefact of version ${frame.version} for linux-${ctx.arch}` };
  }
  return { do: 'start' };
}

/** The release architecture of a Node.js `process.arch`, or null where no artefact is built (the mapping is protocol/dist.ts's). */
export function releaseArch(nodeArch: string): string | null {
  return edgeArchOfNode(nodeArch) ?? null;
}

/** What attempt.json records between the switch and the verdict. */
export interface SwitchRecord extends AttemptKey {
  previousVersion: string;
  /** The workloads running when the old agent switched: the new one must have them running again. */
  workloads: RecordedWorkload[];
  /** Written by the new agent when its health check failed, just before it exits for the rollback. */
  failure?: string | undefined;
}

export interface RecordedWorkload { name: string; runtime: string; pid: number | null }

export type StartDecision =
  | { do: 'none' }
  /** This agent is the new version: check its health, then commit or exit for the rollback. */
  | { do: 'check' }
  /** This agent is the old version again: the loader rolled back. */
  | { do: 'rolledBack'; reason: string };

/**
 * At start, with the last attempt's status and switch record. `loaderReason` is what the loader
 * wrote when it rolled back (null when it did not).
 */
export function decideStart(status: AgentUpgradeStatus | undefined, record: SwitchRecord | undefined, running: string, loaderReason: string | null): StartDecision {
  if (!status || !record || (status.phase !== 'Restarting' && status.phase !== 'Checking')) return { do: 'none' };
  if (running === record.version) return { do: 'check' };
  if (running === record.previousVersion) {
    const parts = [record.failure, loaderReason].filter((p): p is string => typeof p === 'string' && p !== '');
    const reason = parts.length > 0 ? parts.join('; ')
      : status.phase === 'Restarting' ? `the node came back on ${running} before version ${record.version} started`
        : `version ${record.version} stopped before it committed`;
    return { do: 'rolledBack', reason: reason.slice(0, 1024) };
  }
  return { do: 'none' };
}

export interface WorkloadNow { state: string; pid: number | null }

/**
 * Why the new agent is not healthy yet (empty: healthy): its cloud link is welcomed, the device
 * broker accepts connections, and every workload that ran at the switch runs again. Where the
 * runtime adopts workloads (`keepsPid`), it must be the very same process: a restart would mean
 * the upgrade interrupted it. `now` holds the workloads still desired: one the operator removed
 * meanwhile is not waited for.
 */
export function healthProblems(input: {
  linkUp: boolean;
  brokerListening: boolean;
  expected: readonly RecordedWorkload[];
  now: ReadonlyMap<string, WorkloadNow>;
  keepsPid: (runtime: string) => boolean;
}): string[] {
  const problems: string[] = [];
  if (!input.linkUp) problems.push('the cloud link is not up');
  if (!input.brokerListening) problems.push('the device broker does not accept connections');
  for (const w of input.expected) {
    const now = input.now.get(w.name);
    if (!now) continue;
    if (now.state !== 'Running') problems.push(`workload ${w.name} is ${now.state}`);
    else if (input.keepsPid(w.runtime) && w.pid !== null && now.pid !== w.pid) problems.push(`workload ${w.name} was restarted (pid ${w.pid} → ${now.pid ?? 'none'})`);
  }
  return problems;
}

/** `SHA256SUMS` (sha256sum's format) → file name → hex digest. Throws on a line that is not one. */
export function parseSha256Sums(text: string): Map<string, string> {
  const sums = new Map<string, string>();
  for (const [i, line] of text.split('\n').entries()) {
    if (line.trim() === '') continue;
    const m = /^([0-9a-f]{64}) [ *]([A-Za-z0-9._+-]+)$/.exec(line);
    if (!m) throw new Error(`SHA256SUMS line ${i + 1} is not "<sha256>  <file>"`);
    if (sums.has(m[2]!)) throw new Error(`SHA256SUMS names ${m[2]!} twice`);
    sums.set(m[2]!, m[1]!);
  }
  return sums;
}

/** What to ask for next, holding `have` bytes of a file of `size`. */
export function resumeFrom(have: number, size: number): { range: string | null; restart: boolean; done: boolean } {
  if (have === size) return { range: null, restart: false, done: true };
  if (have > size || have === 0) return { range: null, restart: have > size, done: false };
  return { range: `bytes=${have}-`, restart: false, done: false };
}

/** Back-off between download tries: 1 s doubling to 30 s. */
export function retryDelayMs(failures: number): number {
  return Math.min(30_000, 1000 * 2 ** Math.max(0, failures - 1));
}
