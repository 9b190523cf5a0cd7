import { realpathSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { Logger } from 'pino';
import type { UpstreamEntry, Workload, WorkloadState, WorkloadStatus, WorkloadTemplate } from '../../protocol/index.js';
import { WORKLOAD_DATA_DIR } from '../dataDir.js';
import type { EdgePart } from '../part.js';
import type { ContainerRuntime } from './container/containerRuntime.js';
import { ALWAYS_PROTECTED, hostAccessProblem, parseHostPathPrefixes, type HostAccessPolicy } from './container/hostAccess.js';
import { materializeTemplate, removeWorkloadData, withPrivateAppCredential, withPrivateMapperCredential } from './dataRefs.js';
import { ProcessRuntime } from './processRuntime.js';
import type { RecordKeeper } from './runtime.js';
import { RuntimeRouter } from './runtimeRouter.js';
import { transitionEvent } from './transitionEvent.js';
import { prepareWorkloadUser, primaryGidFromPasswd, resolveRunAs, withRunAs, type DynamicUids, type WorkloadUserPolicy } from './workloadUser.js';

type UpstreamBody<K extends UpstreamEntry['kind']> = Extract<UpstreamEntry, { kind: K }>['body'];

/** What the workload manager reads and writes of the edge's local database (edgecore/meta's MetaStore). */
export interface WorkloadLedger {
  readonly records: RecordKeeper;
  /** The desired workloads, and the rows of them that cannot be read (they stay wanted). */
  readDesiredWorkloads(): { items: Workload[]; unreadable: { kind: 'Workload' | 'Device'; name: string; error: string }[] };
  desiredWorkload(app: string): Workload | undefined;
  enqueue(kind: 'workloadStatus', key: string, body: UpstreamBody<'workloadStatus'>): number;
  enqueue(kind: 'event', key: string, body: UpstreamBody<'event'>): number;
}

/**
 * A mapper workload's template with the broker address and credential it needs, or undefined
 * while the device broker is not up yet (the devices part reconciles again once it is).
 */
export type MapperTemplates = (template: WorkloadTemplate & { deviceMapper: NonNullable<WorkloadTemplate['deviceMapper']> }) => Promise<WorkloadTemplate>;

/** Workloads' own broker identities (edgecore/devices/apps): given to templates with `mqtt`, taken from every other. */
export interface AppTemplates {
  /** The template with the workload's broker URL, username and password file. */
  template(workload: string, template: WorkloadTemplate & { mqtt: NonNullable<WorkloadTemplate['mqtt']> }): Promise<WorkloadTemplate>;
  /** Only these workloads keep an identity. */
  keepOnly(workloads: ReadonlySet<string>): void;
}

export interface WorkloadManagerOptions {
  dataDir: string;
  node: string;
  logMaxBytes: number;
  /** Unix socket of a Docker-API engine; without it container workloads are refused. */
  containerEngine?: string;
  /** Who process workloads without runAsUser run as (a name or uid; `root` widens it): see workloadUser.ts. */
  workloadUser: string;
  /** Comma-separated directories container hostPath volumes may name (container/hostAccess.ts). */
  allowHostPaths: string;
  allowHostNetwork: boolean;
  keepWorkloadsOnExit: boolean;
  ledger: WorkloadLedger;
  log: Logger;
  /** Stored desired workloads that cannot be read (see UnreadableRepair). */
  onUnreadable: (rows: { kind: 'Workload'; name: string; error: string }[]) => void;
  /** New outbox entries (statuses, events) are committed. */
  onOutbox: () => void;
}

/**
 * The node's workloads (KubeEdge's edged): the process and container runtimes, the reconcile
 * loop that brings them in line with the desired set in the local database, and their status
 * reports into the outbox. Starting it recovers what ran before (processes from their records,
 * containers by adoption) and runs the local desired set before the cloud is even tried.
 */
export class WorkloadManager implements EdgePart {
  readonly name = 'workloads';
  readonly runtime: RuntimeRouter;
  private readonly processRuntime: ProcessRuntime;
  private containerRuntime: ContainerRuntime | undefined;
  private mapperTemplates: MapperTemplates | undefined;
  private appTemplates: AppTemplates | undefined;
  private reconciling: Promise<void> = Promise.resolve();
  private stopping = false;
  private readonly lastState = new Map<string, WorkloadState>();
  private readonly users: WorkloadUserPolicy;
  private readonly uids: DynamicUids | null;
  private readonly hostAccess: HostAccessPolicy;
  private readonly primaryGid = primaryGidFromPasswd();

  constructor(private readonly opts: WorkloadManagerOptions) {
    const { policy, warnings, uids } = prepareWorkloadUser(opts.workloadUser, join(opts.dataDir, 'workload-uids.json'));
    this.users = policy;
    this.uids = uids;
    for (const warning of warnings) opts.log.warn(warning);
    this.processRuntime = new ProcessRuntime({
      logDir: join(opts.dataDir, 'logs'),
      records: opts.ledger.records,
      logMaxBytes: opts.logMaxBytes,
      logger: opts.log,
    });
    if (!this.processRuntime.pidNamespaces) {
      opts.log.warn('exec and exec probes end with their process group only (no PID namespaces: edgecore is not root, or unshare fails): what they start with setsid can outlive a timeout');
    }
    this.runtime = new RuntimeRouter({ process: this.processRuntime });
    const protectedPaths = [...ALWAYS_PROTECTED, resolve(opts.dataDir), ...(opts.containerEngine ? [resolve(opts.containerEngine)] : [])];
    this.hostAccess = { hostPathPrefixes: parseHostPathPrefixes(opts.allowHostPaths, protectedPaths), hostNetwork: opts.allowHostNetwork, protectedPaths };
    if (this.hostAccess.hostPathPrefixes.length > 0) opts.log.warn({ allowHostPaths: this.hostAccess.hostPathPrefixes }, 'containers may mount these node directories (--allow-host-paths)');
    if (opts.allowHostNetwork) opts.log.warn('containers may share the node\'s network namespace (--allow-host-network)');
  }

  async start(): Promise<void> {
    const { opts } = this;
    if (opts.containerEngine) {
      const { ContainerRuntime } = await import('./container/containerRuntime.js');
      this.containerRuntime = new ContainerRuntime({
        socketPath: opts.containerEngine,
        nodeName: opts.node,
        dataVolumeDir: join(opts.dataDir, 'volumes'),
        logger: opts.log,
      });
      this.runtime.add('container', this.containerRuntime);
    }
    this.runtime.onStatus((name, status) => this.onWorkloadStatus(name, status));
    await this.processRuntime.recover();
    // Containers outlive edgecore: take over the running ones instead of recreating them.
    await this.containerRuntime?.adopt();
    // Autonomy: run what the local database says before even trying the cloud.
    await this.reconcile();
  }

  /** Workloads with `mqtt` wait for this (the device broker), given before useMapperTemplates, which reconciles. */
  useAppTemplates(templates: AppTemplates): void {
    this.appTemplates = templates;
  }

  /** Mapper workloads wait for this (the device broker's address and credentials), then reconcile. */
  async useMapperTemplates(templates: MapperTemplates): Promise<void> {
    this.mapperTemplates = templates;
    await this.reconcile();
  }

  /** Where configs and secrets of workloads are written (root-only). */
  private dataRoot(): string { return join(this.opts.dataDir, WORKLOAD_DATA_DIR); }

  /** Brings the runtime in line with the desired set in the local database. Serialized. */
  reconcile(): Promise<void> {
    this.reconciling = this.reconciling.then(() => this.reconcileOnce()).catch((err: unknown) => {
      // Never left rejected: later reconciles chain on this promise and must still run.
      this.opts.log.error({ err: String(err) }, 'reconciling workloads failed; the next desired change tries again');
    });
    return this.reconciling;
  }

  private async reconcileOnce(): Promise<void> {
    if (this.stopping) return;
    const { log, ledger } = this.opts;
    const { items: desired, unreadable } = ledger.readDesiredWorkloads();
    this.opts.onUnreadable(unreadable.map((row) => ({ ...row, kind: 'Workload' as const })));
    // A workload whose stored object cannot be read is still wanted: what runs of it keeps
    // running until the cloud's copy replaces the row.
    const wanted = new Set([...desired.map((w) => w.spec.app), ...unreadable.map((r) => r.name)]);
    // Before anything starts: a workload whose grant went never runs with its old identity.
    this.appTemplates?.keepOnly(new Set([...desired.filter((w) => w.spec.template.mqtt !== undefined).map((w) => w.spec.app), ...unreadable.map((r) => r.name)]));
    for (const name of this.runtime.statuses().keys()) {
      if (!wanted.has(name)) {
        await this.runtime.remove(name);
        removeWorkloadData(this.dataRoot(), name);
        this.uids?.release(name); // after its data: nothing of it is left for a next owner of the uid
        this.lastState.delete(name);
        log.info({ workload: name }, 'workload removed');
      }
    }
    // Workloads start in parallel: a cold start with many of them is bounded by the slowest, not the sum.
    await Promise.all(desired.map(async (w) => {
      const base = { name: w.spec.app, generation: w.spec.generation };
      let template;
      try {
        // The operator's template as sent: edgecore's own mounts (configs, secrets, the mapper password) come after.
        const refused = hostAccessProblem(w.spec.template, this.hostAccess, realPathOrSelf);
        if (refused !== null) throw new Error(refused);
        const runAs = w.spec.template.runtime === 'process' ? resolveRunAs(w.spec.app, w.spec.template, this.users, this.primaryGid) : null;
        template = materializeTemplate(w, this.dataRoot(), runAs);
        if (template.deviceMapper !== undefined) {
          // Mappers need the broker, which starts after the first reconcile; it reconciles again then.
          if (!this.mapperTemplates) return;
          template = await this.mapperTemplates({ ...template, deviceMapper: template.deviceMapper });
          if (runAs) template = withPrivateMapperCredential(template, this.dataRoot(), w.spec.app, runAs);
        }
        if (template.mqtt !== undefined) {
          if (!this.appTemplates) return; // as mappers: the broker starts after the first reconcile
          template = await this.appTemplates.template(w.spec.app, { ...template, mqtt: template.mqtt });
          if (runAs) template = withPrivateAppCredential(template, this.dataRoot(), w.spec.app, runAs);
        }
        if (template.runtime === 'process') template = withRunAs(template, runAs);
      } catch (err) {
        await this.runtime.markFailed({ ...base, template: w.spec.template }, (err as Error).message);
        return;
      }
      await this.runtime.ensure({ ...base, template })
        .catch((err: Error) => log.error({ workload: w.spec.app, err: err.message }, 'could not start workload'));
    }));
    // Owned containers this node no longer wants, including ones no runtime entry tracks.
    await this.containerRuntime?.removeUndesired(wanted)
      .catch((err: Error) => log.warn({ err: err.message }, 'could not clean up undesired containers'));
  }

  private onWorkloadStatus(name: string, reported: WorkloadStatus): void {
    const { ledger, log } = this.opts;
    const desired = this.stopping ? undefined : ledger.desiredWorkload(name);
    if (!desired) return;
    // Tells the cloud which version of the Workload this status is about (and not to echo it back).
    const status: WorkloadStatus = { ...reported, observedGeneration: desired.metadata.generation ?? 0 };
    ledger.enqueue('workloadStatus', name, { app: name, status });
    const previous = this.lastState.get(name);
    if (previous !== status.state) {
      this.lastState.set(name, status.state);
      const event = transitionEvent(name, status);
      if (event) ledger.enqueue('event', `${name}:${status.state}`, event);
      log.info({ workload: name, state: status.state, pid: status.pid, exitCode: status.exitCode }, 'workload state');
    }
    this.opts.onOutbox();
  }

  /** The next stop leaves the workloads running whatever keepWorkloadsOnExit says: an upgrade's restart, whose next agent adopts them. */
  leaveWorkloadsRunning(): void { this.leaveRunning = true; }
  private leaveRunning = false;

  async stop(): Promise<void> {
    this.stopping = true;
    await this.reconciling;
    await this.runtime.shutdown({ stopWorkloads: !(this.opts.keepWorkloadsOnExit || this.leaveRunning) });
  }
}

function realPathOrSelf(path: string): string {
  try {
    return realpathSync(path);
  } catch {
    return path; // not there (yet): the engine makes it, where it was named
  }
}
