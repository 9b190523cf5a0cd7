import { connect } from 'node:net';
import { join } from 'node:path';
import { readFileSync, rmSync } from 'node:fs';
import type { Logger } from 'pino';
import type { AgentUpgradeFrame, AgentUpgradePhase, AgentUpgradeStatus } from '../../protocol/index.js';
import type { EdgePart } from '../part.js';
import { readAttempt, upgradeDir, writeAttempt, type AttemptFile } from './attempt.js';
import { decideFrame, decideStart, healthProblems, releaseArch, type AttemptKey, type RecordedWorkload, type SwitchRecord } from './decide.js';
import { downloadResumable, fetchSmall } from './download.js';
import { commitLinks, installedIntact, linkTarget, pruneVersions, removeLink, sha256OfFile, signedSha256, switchTo, takeLoaderReason, unpackRelease } from './release.js';

/**
 * The edge side of an over-the-air agent upgrade (docs/install.md, "Upgrade"). On the cloud's
 * `agentUpgrade` frame: download the artefact from cloudcore's /dist (resumable), verify the
 * signed SHA256SUMS with the running release's key, unpack beside the running version, switch
 * edgefleet-loader's links, and exit 75 leaving the workloads running. On start after a switch:
 * the new agent checks its health (link welcomed, broker listening, workloads back) within
 * `upgradeHealthSeconds` and commits, or exits non-zero for the loader to roll back; the old
 * agent back after a rollback reports why. Every phase is reported to the cloud.
 */

export interface WorkloadView { name: string; runtime: string; state: string; pid: number | null }

export interface UpgraderOptions {
  dataDir: string;
  /** Where releases are downloaded from; a function: the replica the link is on now (the frame came from it). */
  cloudUrl: string | (() => string);
  running: string;
  healthSeconds: number;
  /** process.env's EDGEFLEET_LOADER and EDGEFLEET_HOME, as the loader set them. */
  env: { EDGEFLEET_LOADER?: string | undefined; EDGEFLEET_HOME?: string | undefined };
  ca: () => string | undefined;
  report: (status: AgentUpgradeStatus) => void;
  linkUp: () => boolean;
  /** mqtt://host:port of the device broker ('' when it has none). */
  brokerUrl: () => string;
  workloads: () => WorkloadView[];
  /** Stops edgecore LEAVING WORKLOADS RUNNING, then exits with `code`. */
  exit: (code: number) => void;
  log: Logger;
  /** How often the health check looks (ms); tests shorten it. */
  healthPollMs?: number;
}

/** The small files of a release are tiny; anything bigger is not one. */
const MAX_SUMS_BYTES = 64 * 1024;
const PROGRESS_EVERY_MS = 2000;

export class AgentUpgrader implements EdgePart {
  readonly name = 'upgrade';
  private last: AttemptFile | undefined;
  private inFlight: { key: AttemptKey; abort: AbortController; done: Promise<void> } | undefined;
  private checking = false;
  /** A frame that came while the new agent was still checking its health: handled after. */
  private deferred: AgentUpgradeFrame | undefined;
  private healthTimer: NodeJS.Timeout | undefined;
  private stopped = false;
  private readonly home: string;
  private readonly underLoader: boolean;

  constructor(private readonly opts: UpgraderOptions) {
    this.underLoader = opts.env.EDGEFLEET_LOADER === '1';
    this.home = opts.env.EDGEFLEET_HOME ?? '/opt/edgefleet';
  }

  /** The status page's view: running, previous and the last attempt. */
  view(): { version: string; previousVersion: string | null; lastAttempt: AgentUpgradeStatus | null } {
    const old = this.underLoader ? linkTarget(this.home, 'old') : null;
    return { version: this.opts.running, previousVersion: old !== this.opts.running ? old : null, lastAttempt: this.last?.status ?? null };
  }

  /** The last status, for the link to carry in its first hello. */
  lastStatus(): AgentUpgradeStatus | undefined { return this.last?.status; }

  async start(): Promise<void> {
    const { opts } = this;
    const read = readAttempt(opts.dataDir);
    if (read.problem) opts.log.warn({ problem: read.problem }, 'ignoring the upgrade record');
    this.last = read.attempt;
    const loaderReason = this.underLoader ? takeLoaderReason(this.home) : null;
    const decision = decideStart(this.last?.status, this.last?.record, opts.running, loaderReason);
    const record = this.last?.record;
    if (decision.do === 'check' && record) {
      this.checking = true;
      this.setStatus(record, 'Checking', `version ${record.version} started; checking its health (within ${opts.healthSeconds} s)`, record);
      this.watchHealth(record, Date.now() + opts.healthSeconds * 1000);
    } else if (decision.do === 'rolledBack' && record) {
      // A switch cut short (new set, current not yet) leaves a `new` that names no running version.
      if (this.underLoader && linkTarget(this.home, 'new') !== linkTarget(this.home, 'current')) removeLink(this.home, 'new');
      opts.log.error({ version: record.version, reason: decision.reason }, 'agent upgrade rolled back');
      this.setStatus(record, 'RolledBack', decision.reason, { ...record, failure: decision.reason });
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.healthTimer);
    this.inFlight?.abort.abort(new Error('edgecore is stopping'));
    await this.inFlight?.done;
  }

  onFrame(frame: AgentUpgradeFrame): void {
    if (this.stopped) return;
    if (this.checking) { this.deferred = frame; return; }
    const decision = decideFrame(frame, {
      running: this.opts.running, underLoader: this.underLoader, inFlight: this.inFlight?.key,
      last: this.last?.status, arch: releaseArch(process.arch), installed: this.installed(frame.version),
    });
    switch (decision.do) {
      case 'nothing':
      case 'keep':
        return;
      case 'callOff': {
        const key = this.inFlight!.key;
        this.inFlight!.abort.abort(new Error('called off'));
        this.setStatus(key, 'Failed', `called off: the cloud asks for the running version ${this.opts.running} again`);
        return;
      }
      case 'refuse':
        this.opts.log.warn({ version: frame.version, reason: decision.message }, 'agent upgrade refused');
        this.setStatus(frame, 'Failed', decision.message);
        return;
      case 'start': {
        this.inFlight?.abort.abort(new Error(`replaced by ${frame.upgrade} revision ${frame.revision}`));
        const abort = new AbortController();
        const key: AttemptKey = { upgrade: frame.upgrade, revision: frame.revision, version: frame.version };
        const done = this.attempt(frame, abort.signal).catch((err: unknown) => {
          if (abort.signal.aborted) return;
          this.opts.log.error({ version: frame.version, err: (err as Error).message }, 'agent upgrade failed; the running version stays');
          this.setStatus(key, 'Failed', (err as Error).message);
        }).finally(() => { if (this.inFlight?.key === key) this.inFlight = undefined; });
        this.inFlight = { key, abort, done };
      }
    }
  }

  private installed(version: string): boolean {
    const arch = releaseArch(process.arch);
    return this.underLoader && arch !== null && linkTarget(this.home, 'current') !== version && installedIntact(this.home, version, arch);
  }

  private async attempt(frame: AgentUpgradeFrame, signal: AbortSignal): Promise<void> {
    if (linkTarget(this.home, 'current') === frame.version) throw new Error(`${join(this.home, 'current')} already names ${frame.version}`);
    if (this.installed(frame.version)) {
      this.setStatus(frame, 'Installing', `${frame.version} is still installed beside ${this.opts.running}: switching back to it without a download`);
    } else {
      await this.fetchAndUnpack(frame, signal);
    }
    this.switchAndRestart(frame);
  }

  /** Download, verification and unpacking: everything before the switch that can fail with the old agent untouched. */
  private async fetchAndUnpack(frame: AgentUpgradeFrame, signal: AbortSignal): Promise<void> {
    const { opts, home } = this;
    const file = frame.file!, expected = frame.sha256!, size = frame.size!;
    const arch = releaseArch(process.arch)!;
    const cloudUrl = typeof opts.cloudUrl === 'string' ? opts.cloudUrl : opts.cloudUrl();
    const base = new URL(`dist/${encodeURIComponent(frame.version)}/`, cloudUrl.endsWith('/') ? cloudUrl : `${cloudUrl}/`);
    const fetchOpts = { ca: opts.ca(), signal };

    this.setStatus(frame, 'Downloading', `fetching SHA256SUMS of ${frame.version}`, undefined, { bytes: 0, totalBytes: size });
    const sums = await fetchSmall(new URL('SHA256SUMS', base), MAX_SUMS_BYTES, fetchOpts);
    const sig = await fetchSmall(new URL('SHA256SUMS.sig', base), MAX_SUMS_BYTES, fetchOpts);
    const keyPem = readFileSync(join(home, 'current', 'share', 'release-key.pub'), 'utf8');
    const signed = signedSha256(sums, sig, keyPem, file);
    if (signed !== expected) throw new Error(`the signed SHA256SUMS gives ${file} sha256 ${signed}, the cloud's frame ${expected}`);

    const part = join(upgradeDir(opts.dataDir), `${expected}.part`);
    let lastReport = 0;
    const requests = await downloadResumable(new URL(encodeURIComponent(file), base), part, {
      ...fetchOpts, size,
      onProgress: (bytes) => {
        const now = Date.now();
        if (now - lastReport < PROGRESS_EVERY_MS && bytes < size) return;
        lastReport = now;
        this.setStatus(frame, 'Downloading', `downloading ${file}`, undefined, { bytes, totalBytes: size });
      },
      onRetry: (err, delayMs, have) => opts.log.warn({ file, have, size, delayMs, err: err.message }, 'artefact download interrupted; resuming'),
    });
    opts.log.info({ file, size, requests }, 'artefact downloaded');

    this.setStatus(frame, 'Verifying', `checking the sha256 of ${file} against the signed SHA256SUMS`);
    const actual = await sha256OfFile(part);
    if (actual !== signed) {
      rmSync(part, { force: true }); // a wrong file must not be resumed by a later try
      throw new Error(`${file} has sha256 ${actual}, the signed SHA256SUMS ${signed}: refused`);
    }
    signal.throwIfAborted();

    this.setStatus(frame, 'Installing', `unpacking ${frame.version} beside ${opts.running}`);
    await unpackRelease(home, part, frame.version, arch);
    rmSync(part, { force: true });
    signal.throwIfAborted();
  }

  private switchAndRestart(frame: AgentUpgradeFrame): void {
    const { opts, home } = this;

    // Recorded before the switch: whichever agent starts next finds what was tried and what ran.
    const running = opts.workloads().filter((w) => w.state === 'Running');
    const record: SwitchRecord = {
      upgrade: frame.upgrade, revision: frame.revision, version: frame.version, previousVersion: opts.running,
      workloads: running.map((w): RecordedWorkload => ({ name: w.name, runtime: w.runtime, pid: w.pid })),
    };
    this.setStatus(frame, 'Restarting', `switching to ${frame.version}; restarting edgecore (workloads keep running)`, record);
    switchTo(home, frame.version);
    opts.log.info({ from: opts.running, to: frame.version, workloads: running.length }, 'switched to the new agent version; restarting');
    opts.exit(75);
  }

  private watchHealth(record: SwitchRecord, deadline: number): void {
    const { opts } = this;
    const look = async (): Promise<void> => {
      if (this.stopped) return;
      const now = new Map(opts.workloads().map((w) => [w.name, { state: w.state, pid: w.pid }]));
      const problems = healthProblems({
        linkUp: opts.linkUp(), brokerListening: await brokerListening(opts.brokerUrl()), expected: record.workloads, now,
        // Both runtimes hand their workloads over and the next agent adopts them: same pid.
        keepsPid: () => true,
      });
      if (this.stopped) return;
      if (problems.length === 0) return this.commit(record);
      if (Date.now() >= deadline) {
        const reason = `version ${record.version} did not come healthy within ${opts.healthSeconds} s: ${problems.join('; ')}`.slice(0, 1024);
        opts.log.error({ reason }, 'agent upgrade health check failed; exiting for the loader to roll back');
        this.last = { status: this.last!.status, record: { ...record, failure: reason } };
        writeAttempt(opts.dataDir, this.last);
        opts.exit(1);
        return;
      }
      this.healthTimer = setTimeout(() => void look(), opts.healthPollMs ?? 1000);
    };
    this.healthTimer = setTimeout(() => void look(), 0);
  }

  private commit(record: SwitchRecord): void {
    commitLinks(this.home);
    this.checking = false;
    let pruned: string[] = [];
    try {
      pruned = pruneVersions(this.home);
    } catch (err) {
      this.opts.log.warn({ err: (err as Error).message }, 'cannot remove versions no longer linked');
    }
    this.opts.log.info({ version: record.version, from: record.previousVersion, pruned }, 'agent upgrade committed');
    this.setStatus(record, 'Committed', `running ${record.version} (was ${record.previousVersion}); healthy`, record);
    const deferred = this.deferred;
    this.deferred = undefined;
    if (deferred) this.onFrame(deferred);
  }

  private setStatus(key: AttemptKey, phase: AgentUpgradePhase, message: string, record?: SwitchRecord, progress?: { bytes: number; totalBytes: number }): void {
    const previousVersion = record?.previousVersion ?? this.opts.running;
    const before = this.last?.status;
    // `since` is when the phase was entered: a progress report within it keeps it.
    const samePhase = before !== undefined && before.phase === phase && before.upgrade === key.upgrade && before.revision === key.revision;
    const status: AgentUpgradeStatus = {
      upgrade: key.upgrade, revision: key.revision, version: key.version,
      previousVersion,
      phase, message: message.slice(0, 1024), ...(progress ?? {}), since: samePhase ? before.since : new Date().toISOString(),
    };
    this.last = record ? { status, record } : { status };
    try {
      writeAttempt(this.opts.dataDir, this.last);
    } catch (err) {
      this.opts.log.warn({ err: (err as Error).message }, 'cannot write the upgrade record');
    }
    this.opts.report(status);
  }
}

/** A TCP connect to the broker's port: listening is what devices need. */
function brokerListening(url: string): Promise<boolean> {
  if (url === '') return Promise.resolve(true); // no broker configured: nothing to wait for
  const u = new URL(url);
  return new Promise((resolve) => {
    const socket = connect({ host: u.hostname, port: Number(u.port), timeout: 2000 });
    socket.once('connect', () => { socket.destroy(); resolve(true); });
    socket.once('error', () => resolve(false));
    socket.once('timeout', () => { socket.destroy(); resolve(false); });
  });
}
