import type { FastifyInstance } from 'fastify';
import {
  AgentUpgradeListSchema, AgentUpgradeRequestSchema, AgentUpgradeSchema, type AgentUpgrade, type Rollout,
} from '../../../protocol/index.js';
import { upgradeEventObject } from '../../controllers/agentUpgradePlan.js';
import { applyRolloutCommand, RolloutCommandError, type RolloutCommand } from '../../controllers/rolloutCommands.js';
import type { RolloutEventSpec } from '../../controllers/rolloutMachine.js';
import { readModifyWrite } from '../../store/readModifyWrite.js';
import { ApiError } from '../plumbing/errors.js';
import { getOrNotFound, type ResourceRoutesOptions } from '../plumbing/routeContext.js';
import { NameParams, SelectableListQuery, type ZodTypeProvider } from '../plumbing/zodSchemas.js';
import { DEFAULT_AGENT_UPGRADE_NAME, nextAgentUpgrade, nodesHeldByOthers } from '../rules/agentUpgradeRequests.js';
import { ROLLOUT_COMMAND_BODIES, rolloutCommandOf, type RolloutCommandVerb } from '../rules/rolloutCommandBodies.js';

/**
 * Over-the-air agent upgrades (docs/install.md, "Upgrade"): create one or give it a new version
 * (POST), read them, and the rollout commands an app's rollout has (pause, resume, abort,
 * approve, rollback), applied to the upgrade's status with optimistic concurrency.
 */

export interface AgentUpgradeRoutesOptions extends ResourceRoutesOptions {
  /** Versions cloudcore serves under /dist; a request for another is refused. Absent: not checked. */
  versions?: () => readonly string[];
}

const COMMAND_ATTEMPTS = 8;

export async function agentUpgradeRoutes(app: FastifyInstance, { store, watches, versions }: AgentUpgradeRoutesOptions): Promise<void> {
  const api = app.withTypeProvider<ZodTypeProvider>();
  let eventSeq = 0;

  api.get('/agent-upgrades', { schema: { querystring: SelectableListQuery, response: { '2xx': AgentUpgradeListSchema } } }, async (request, reply) => {
    const { watch, resourceVersion } = request.query;
    if (watch) return watches.serve(reply, { kind: 'AgentUpgrade', fromRevision: resourceVersion, includes: () => true });
    const { items, revision } = await store.list('AgentUpgrade');
    return { items, resourceVersion: revision };
  });

  api.get('/agent-upgrades/:name', { schema: { params: NameParams, response: { '2xx': AgentUpgradeSchema } } }, async (request) =>
    getOrNotFound(store, 'AgentUpgrade', request.params.name));

  api.post('/agent-upgrades', { schema: { body: AgentUpgradeRequestSchema, response: { '2xx': AgentUpgradeSchema } } }, async (request, reply) => {
    const body = request.body;
    const name = body.name ?? DEFAULT_AGENT_UPGRADE_NAME;
    const served = versions?.();
    if (served && !served.includes(body.version)) {
      throw new ApiError(400, `version "${body.version}" is not in cloudcore's dist directory (it serves: ${served.join(', ') || 'none'}); copy its release directory there first`, 'version');
    }
    const [upgrades, nodes] = await Promise.all([store.list('AgentUpgrade'), store.list('Node')]);
    const held = nodesHeldByOthers(name, body.selector, upgrades.items, nodes.items);
    if (held.size > 0) {
      const which = [...held].map(([u, ns]) => `"${u}" (${ns.slice(0, 5).join(', ')}${ns.length > 5 ? `, … ${ns.length} in all` : ''})`).join('; ');
      throw new ApiError(409, `nodes this selector matches are still being upgraded by another upgrade: ${which}; wait for it, abort it, or narrow the selector`, 'selector');
    }
    const existing = upgrades.items.find((u) => u.metadata.name === name);
    const next = nextAgentUpgrade(existing, body, name);
    if (!next) return reply.code(200).send(existing!);
    if (!existing) return reply.code(201).send(await store.create(next));
    return store.update(next);
  });

  api.delete('/agent-upgrades/:name', { schema: { params: NameParams, response: { '2xx': AgentUpgradeSchema } } }, async (request) => {
    const found = await getOrNotFound(store, 'AgentUpgrade', request.params.name);
    const phase = found.status?.phase;
    if (phase === 'Progressing' || phase === 'Paused' || phase === 'AwaitingApproval') {
      throw new ApiError(409, `agent upgrade "${found.metadata.name}" is ${phase}; abort it first (nodes keep what they run)`);
    }
    return store.delete('AgentUpgrade', found.metadata.name, { resourceVersion: found.metadata.resourceVersion });
  });

  for (const [verb, body] of Object.entries(ROLLOUT_COMMAND_BODIES)) {
    api.post(`/agent-upgrades/:name/${verb}`, { schema: { params: NameParams, body, response: { '2xx': AgentUpgradeSchema } } }, async (request) =>
      runCommand(request.params.name, rolloutCommandOf(verb as RolloutCommandVerb, request.body as { wave?: number; toRevision?: number } | null)));
  }

  async function runCommand(name: string, command: RolloutCommand): Promise<AgentUpgrade> {
    let events: RolloutEventSpec[] = [];
    const written = await readModifyWrite(store, 'AgentUpgrade', name, (current) => {
      if (!current.status) throw new ApiError(409, `agent upgrade "${name}" has not started yet (its controller steps it within a second); retry`);
      // The shared commands work on a Rollout; the upgrade keeps the same status.
      const asRollout: Rollout = { kind: 'Rollout', metadata: { name }, spec: { app: name }, status: current.status };
      let result;
      try {
        result = applyRolloutCommand(asRollout, command, {
          revisions: current.spec.revisions.map((r) => r.revision), now: Date.now(), subject: `agent upgrade "${name}"`,
        });
      } catch (err) {
        if (err instanceof RolloutCommandError) throw new ApiError(err.statusCode, err.message);
        throw err;
      }
      events = result.events;
      return { ...current, status: result.rollout.status };
    }, {
      attempts: COMMAND_ATTEMPTS,
      absent: async () => { await getOrNotFound(store, 'AgentUpgrade', name); return new ApiError(404, `agent upgrade "${name}" is gone`); },
      exhausted: () => new ApiError(409, `agent upgrade "${name}" changed too often while applying ${command.type}; retry`),
    });
    for (const e of events) {
      await store.create(upgradeEventObject(name, written.status!.revision, e, Date.now(), `op${++eventSeq}`)).catch(() => undefined);
    }
    return written;
  }
}
