import type { Logger } from 'pino';
import type { AgentUpgrade, Node, RolloutPhase, RolloutStatus } from '../../protocol/index.js';
import { canonicalJson } from '../store/objectMeta.js';
import { readModifyWrite } from '../store/readModifyWrite.js';
import type { Store, WatchEvent } from '../store/store.js';
import { nodeOwners, planAgentUpgrade, upgradeEventObject } from './agentUpgradePlan.js';
import { ChangeFilter } from './changeFilter.js';
import { MirrorController } from './mirrorController.js';
import { significantChange, type RolloutEventSpec } from './rolloutMachine.js';
import type { StoreMirror } from './storeMirror.js';
import { labelKey } from './scheduling.js';

/**
 * I/O shell around agentUpgradePlan.ts: after a change to upgrades or to what nodes report of
 * their agent, and on a tick while an upgrade waits on time, it steps each AgentUpgrade's
 * rollout, delivers new assignments into the nodes' `spec.agent` (the hub tells a linked node
 * at once, and any other when it links), writes the rollout state into the upgrade's status
 * and records its events. All state lives in the store, so a restart resumes.
 */

const MIRRORED = ['AgentUpgrade', 'Node'] as const;
type MirroredKind = typeof MIRRORED[number];

const ACTIVE: readonly RolloutPhase[] = ['Progressing', 'Paused', 'AwaitingApproval'];

export interface AgentUpgradeControllerOptions {
  tickMs?: number;
  batchMs?: number;
  now?: () => number;
}

export class AgentUpgradeController extends MirrorController<MirroredKind> {
  private readonly nodeKeys = new ChangeFilter<Node>(nodeKey);
  private eventSeq = 0;
  /** Per upgrade: a stepped status whose only changes (counts, readiness clocks) wait for the next tick's write. */
  private readonly deferred = new Map<string, { resourceVersion: number | undefined; status: RolloutStatus }>();
  private readonly lastWrite = new Map<string, number>();
  private readonly tickMs: number;
  private readonly now: () => number;

  constructor(store: Store, log: Logger, opts: AgentUpgradeControllerOptions = {}) {
    super(store, log, MIRRORED, 'agent upgrades', opts.batchMs ?? 250, opts.tickMs ?? 1000);
    this.tickMs = opts.tickMs ?? 1000;
    this.now = opts.now ?? Date.now;
  }

  protected override changes(event: WatchEvent): boolean {
    // Heartbeats rewrite Node status all the time; an upgrade reacts to labels, phase and the agent.
    return event.object.kind === 'Node' ? this.nodeKeys.changed(event.type, event.object) : true;
  }

  protected override seed(mirror: StoreMirror<MirroredKind>): void {
    this.nodeKeys.seed(mirror.items('Node'));
  }

  protected async reconcile(mirror: StoreMirror<MirroredKind>): Promise<void> {
    const upgrades = mirror.items('AgentUpgrade');
    const nodes = mirror.items('Node');
    const owners = nodeOwners(upgrades, nodes);
    let waiting = false;
    for (const stored of upgrades) {
      const name = stored.metadata.name;
      const deferred = this.deferred.get(name);
      const upgrade: AgentUpgrade = deferred && deferred.resourceVersion === stored.metadata.resourceVersion
        ? { ...stored, status: deferred.status } : stored;
      const plan = planAgentUpgrade({ upgrade, nodes: nodes.filter((n) => owners.get(n.metadata.name) === name), now: this.now() });
      for (const [node, agent] of plan.deliveries) {
        await this.tolerate(() => readModifyWrite(this.store, 'Node', node, (n) => (
          canonicalJson(n.spec.agent ?? null) === canonicalJson(agent) ? undefined : { ...n, spec: { ...n.spec, agent } })));
      }
      // Against what is stored, not the deferred state the plan started from: a deferred change
      // that the next pass leaves as it is must still be written.
      const unwritten = !stored.status || canonicalJson({ ...plan.status, updatedAt: '' }) !== canonicalJson({ ...stored.status, updatedAt: '' });
      if (unwritten) {
        if (stored.status && plan.events.length === 0 && !significantChange(plan.status, stored.status) && this.now() - (this.lastWrite.get(name) ?? 0) < this.tickMs) {
          this.deferred.set(name, { resourceVersion: stored.metadata.resourceVersion, status: plan.status });
          waiting = true;
          continue;
        }
        const written = await this.tolerate(() => this.store.update({ ...stored, status: plan.status }));
        this.deferred.delete(name);
        if (!written) continue;
        this.lastWrite.set(name, this.now());
        await this.record(name, plan.status.revision, plan.events);
      }
      const s = plan.status;
      if (ACTIVE.includes(s.phase) || s.counts.updating + s.counts.pending > 0) waiting = true;
    }
    for (const name of this.deferred.keys()) if (!upgrades.some((u) => u.metadata.name === name)) this.deferred.delete(name);
    this.waitingOnTime = waiting;
  }

  private async record(upgrade: string, revision: number, events: readonly RolloutEventSpec[]): Promise<void> {
    for (const e of events) {
      await this.tolerate(() => this.store.create(upgradeEventObject(upgrade, revision, e, this.now(), ++this.eventSeq)));
      this.log.info({ upgrade, reason: e.reason }, e.message);
    }
  }

}

function nodeKey(node: Node): string {
  const agent = node.status.agent;
  const attempt = agent?.upgrade;
  return canonicalJson([node.status.phase, labelKey(node.metadata.labels), node.spec.agent ?? null, agent?.version ?? null,
    attempt ? [attempt.upgrade, attempt.revision, attempt.phase] : null]);
}
