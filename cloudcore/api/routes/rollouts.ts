import type { FastifyInstance } from 'fastify';
import { AppRevisionListSchema, RolloutSchema, type Rollout } from '../../../protocol/index.js';
import { applyRolloutCommand, RolloutCommandError, type RolloutCommand } from '../../controllers/rolloutCommands.js';
import { rolloutEventObject, type RolloutEventSpec } from '../../controllers/rolloutPlan.js';
import { readModifyWrite } from '../../store/readModifyWrite.js';
import type { Store } from '../../store/store.js';
import { ApiError } from '../plumbing/errors.js';
import { getOrNotFound, type ResourceRoutesOptions } from '../plumbing/routeContext.js';
import { ROLLOUT_COMMAND_BODIES, rolloutCommandOf, type RolloutCommandVerb } from '../rules/rolloutCommandBodies.js';
import { NameParams, SelectableListQuery, type ZodTypeProvider } from '../plumbing/zodSchemas.js';

/**
 * Fleet rollouts (docs/rollouts.md): an app's revisions, its Rollout (the controller's state),
 * operator commands on it, and a watch of all rollouts. Commands apply the pure transitions of
 * rolloutCommands.ts to the stored Rollout with optimistic concurrency; the controller carries
 * on from the new state.
 */

const WatchOnlyQuery = SelectableListQuery;
/** Attempts at read-modify-write before the command gives up with 409 (the controller writes the same object). */
const COMMAND_ATTEMPTS = 8;

export async function rolloutRoutes(app: FastifyInstance, { store, watches }: ResourceRoutesOptions): Promise<void> {
  const api = app.withTypeProvider<ZodTypeProvider>();
  let eventSeq = 0;

  api.get('/apps/:name/revisions', { schema: { params: NameParams, response: { '2xx': AppRevisionListSchema } } }, async (request) => {
    const { name } = request.params;
    await getOrNotFound(store, 'App', name);
    const { items } = await store.list('AppRevision');
    return { items: items.filter((r) => r.spec.app === name).sort((a, b) => a.spec.revision - b.spec.revision) };
  });

  api.get('/apps/:name/rollout', { schema: { params: NameParams, response: { '2xx': RolloutSchema } } }, async (request) => rolloutOf(store, request.params.name));

  api.get('/apps/:name/rollout/events', { schema: { params: NameParams, querystring: WatchOnlyQuery } }, async (request, reply) => {
    const { name } = request.params;
    const includes = (e: { spec: { app?: string | undefined } }) => e.spec.app === name;
    if (request.query.watch) return watches.serve(reply, { kind: 'Event', fromRevision: request.query.resourceVersion, includes });
    const { items } = await store.list('Event');
    return { items: items.filter(includes).sort((a, b) => (a.metadata.resourceVersion ?? 0) - (b.metadata.resourceVersion ?? 0)) };
  });

  api.get('/rollouts', { schema: { querystring: WatchOnlyQuery } }, async (request, reply) => {
    const { watch, resourceVersion } = request.query;
    if (watch) return watches.serve(reply, { kind: 'Rollout', fromRevision: resourceVersion, includes: () => true });
    const { items, revision } = await store.list('Rollout');
    return { items, resourceVersion: revision };
  });

  for (const [verb, body] of Object.entries(ROLLOUT_COMMAND_BODIES)) {
    api.post(`/apps/:name/rollout/${verb}`, { schema: { params: NameParams, body, response: { '2xx': RolloutSchema } } }, async (request) =>
      runCommand(request.params.name, rolloutCommandOf(verb as RolloutCommandVerb, request.body as { wave?: number; toRevision?: number } | null)));
  }

  async function runCommand(appName: string, command: RolloutCommand): Promise<Rollout> {
    let events: RolloutEventSpec[] = [];
    const written = await readModifyWrite(store, 'Rollout', appName, async (current) => {
      const revisions = (await store.list('AppRevision')).items.filter((r) => r.spec.app === appName).map((r) => r.spec.revision).sort((a, b) => a - b);
      let result;
      try {
        result = applyRolloutCommand(current, command, { revisions, now: Date.now() });
      } catch (err) {
        if (err instanceof RolloutCommandError) throw new ApiError(err.statusCode, err.message);
        throw err;
      }
      events = result.events; // of the attempt that wrote
      return result.rollout;
    }, {
      attempts: COMMAND_ATTEMPTS,
      absent: () => noRolloutError(store, appName),
      exhausted: () => new ApiError(409, `the rollout of app "${appName}" changed too often while applying ${command.type}; retry`),
    });
    for (const e of events) {
      await store.create(rolloutEventObject(appName, written.status.revision, e, Date.now(), `op${++eventSeq}`)).catch(() => undefined);
    }
    return written;
  }
}

async function rolloutOf(store: Store, appName: string): Promise<Rollout> {
  const found = await store.get('Rollout', appName);
  if (found) return found;
  throw await noRolloutError(store, appName);
}

/** Why an app has no rollout: the app is not there (its 404), or its controller has not made one yet. */
async function noRolloutError(store: Store, appName: string): Promise<Error> {
  await getOrNotFound(store, 'App', appName);
  return new ApiError(404, `app "${appName}" has no rollout yet (the rollout controller creates it after the app's first revision)`);
}
