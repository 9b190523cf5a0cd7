import type { Logger } from 'pino';
import {
  FINAL_AGENT_UPGRADE_PHASES,
  type AgentInfo, type AgentUpgradeFrame, type Event, type NodeAgentSpec,
} from '../../protocol/index.js';
import { canonicalJson } from '../store/objectMeta.js';
import { updateNodeStatus } from '../store/readModifyWrite.js';
import type { Store } from '../store/store.js';

/**
 * The hub's side of agent upgrades (docs/install.md, "Upgrade"): tells a linked node the agent
 * version its Node.spec.agent asks for — after its hello, and whenever the upgrade controller
 * changes it — and records what the node reports back (`agentStatus` frames, and the upgrade
 * status every hello carries) into the Node's status, with an Event when an attempt ends.
 */

/** The artefact of a version for a node architecture (Node's `os.arch()`: x64, arm64, arm). */
export interface AgentArtefacts {
  find(version: string, nodeArch: string): { name: string; sha256: string; size: number } | undefined;
}

/** What the channel needs of a live session. */
export interface AgentLink {
  readonly node: string;
  /** The agent info of the link's hello; undefined before it. */
  agent(): AgentInfo | undefined;
  sendAgentUpgrade(frame: AgentUpgradeFrame): void;
}

export class AgentUpgradeChannel {
  /** The frame last sent per link, so a Node rewrite that did not touch spec.agent sends nothing. */
  private readonly sent = new WeakMap<AgentLink, string>();
  private eventSeq = 0;

  constructor(private readonly store: Store, private readonly log: Logger, private readonly artefacts: AgentArtefacts | undefined) {}

  /** Offers the node its desired agent (no-op without one, before the hello, or when unchanged). */
  offer(link: AgentLink, spec: NodeAgentSpec | undefined): void {
    const agent = link.agent();
    if (!spec || !agent) return;
    const found = this.artefacts?.find(spec.version, agent.arch);
    const frame: AgentUpgradeFrame = {
      type: 'agentUpgrade', upgrade: spec.upgrade, revision: spec.revision, version: spec.version,
      ...(found ? { file: found.name, sha256: found.sha256, size: found.size } : {}),
    };
    const key = canonicalJson(frame);
    if (this.sent.get(link) === key) return;
    this.sent.set(link, key);
    if (!found && spec.version !== agent.version) {
      this.log.warn({ node: link.node, version: spec.version, arch: agent.arch }, 'no artefact of this agent version for the node\'s architecture in the dist directory');
    }
    link.sendAgentUpgrade(frame);
  }

  /** Records an `agentStatus` frame: the node's agent info, with its latest upgrade attempt. */
  async record(node: string, agent: AgentInfo): Promise<void> {
    let ended: AgentInfo['upgrade'];
    await updateNodeStatus(this.store, node, (n) => {
      const before = n.status.agent?.upgrade;
      const attempt = agent.upgrade;
      if (attempt && FINAL_AGENT_UPGRADE_PHASES.includes(attempt.phase)
        && !(before && before.upgrade === attempt.upgrade && before.revision === attempt.revision && before.phase === attempt.phase)) ended = attempt;
      return { ...n.status, agent };
    });
    if (ended) await this.recordEnd(node, ended);
  }

  /** A hello carries the outcome of an attempt that ended across the restart: record its Event once. */
  async helloRecorded(node: string, before: AgentInfo['upgrade'] | undefined, agent: AgentInfo): Promise<void> {
    const attempt = agent.upgrade;
    if (!attempt || !FINAL_AGENT_UPGRADE_PHASES.includes(attempt.phase)) return;
    if (before && before.upgrade === attempt.upgrade && before.revision === attempt.revision && before.phase === attempt.phase) return;
    await this.recordEnd(node, attempt);
  }

  private async recordEnd(node: string, attempt: NonNullable<AgentInfo['upgrade']>): Promise<void> {
    const now = Date.now();
    const reason = attempt.phase === 'Committed' ? 'AgentUpgraded' : attempt.phase === 'RolledBack' ? 'AgentRolledBack' : 'AgentUpgradeFailed';
    const message = attempt.phase === 'Committed'
      ? `agent upgraded from ${attempt.previousVersion ?? '?'} to ${attempt.version}`
      : `agent upgrade to ${attempt.version} ${attempt.phase === 'RolledBack' ? 'rolled back' : 'failed'}: ${attempt.message}`;
    const event: Event = {
      kind: 'Event',
      metadata: { name: `${node}.agent.${attempt.upgrade}.r${attempt.revision}-${now}-${++this.eventSeq}`, labels: { 'edgefleet.io/agent-upgrade': attempt.upgrade } },
      spec: { reason, message, type: attempt.phase === 'Committed' ? 'Normal' : 'Warning', time: new Date(now).toISOString(), node, upgrade: attempt.upgrade },
    };
    await this.store.create(event).catch((err: Error) => this.log.warn({ node, err: err.message }, 'could not record the agent upgrade event'));
    this.log.info({ node, upgrade: attempt.upgrade, version: attempt.version, phase: attempt.phase }, message);
  }
}
