import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RolloutSchema, type Rollout, type RolloutStrategy } from '../../protocol/index.js';
import { startChildCloud, startInProcessCloud, type SimCloud } from './simCloud.js';
import { SimFleet } from './simFleet.js';
import { WorkloadTracker } from './simTracker.js';
import { NdjsonWatch } from './simWatch.js';
import { waitFor } from './wait.js';

/**
 * Everything a fleet rollout test needs: cloudcore (in-process, or a child process that can be
 * SIGKILLed), N simulated nodes, and two watches recorded from the very start: Workloads (per
 * app: every revision every node was ever assigned, and the maxUnavailable invariant on every
 * status change) and Rollouts (every status the controller persisted, checked against its own
 * maxUnavailable).
 */

export type RolloutCommand = 'pause' | 'resume' | 'abort' | 'approve' | 'rollback';

export interface RolloutHarnessOptions {
  nodes: number;
  cloud?: 'in-process' | 'child';
  labels?: (node: string, index: number) => Record<string, string> | undefined;
  /** Extra cloudcore settings (e.g. a faster controller tick). */
  settings?: Record<string, string | number>;
  offlineAfterSeconds?: number;
}

export class RolloutHarness {
  readonly trackers = new Map<string, WorkloadTracker>();
  /** Every Rollout object seen on the watch, per app, in order. */
  readonly rolloutHistory = new Map<string, Rollout[]>();
  /** Rollout statuses whose counts broke their own maxUnavailable, or that did not parse. */
  readonly rolloutViolations: string[] = [];
  private readonly watches: NdjsonWatch[] = [];

  private constructor(readonly cloud: SimCloud, readonly fleet: SimFleet, private readonly root: string) {}

  static async start(opts: RolloutHarnessOptions): Promise<RolloutHarness> {
    const root = mkdtempSync(join(tmpdir(), 'ef-rollout-'));
    const cloudOpts = {
      dataDir: join(root, 'cloud'), offlineAfterSeconds: opts.offlineAfterSeconds ?? 5,
      ...(opts.settings ? { settings: opts.settings } : {}),
    };
    let cloud: SimCloud | undefined;
    try {
      cloud = opts.cloud === 'child' ? await startChildCloud(cloudOpts) : await startInProcessCloud(cloudOpts);
      const fleet = await SimFleet.start({
        cloudUrl: cloud.url, apiUrl: cloud.url, adminToken: cloud.adminToken, nodes: opts.nodes, dataRoot: join(root, 'edges'),
        ...(opts.labels ? { labels: opts.labels } : {}),
      });
      const h = new RolloutHarness(cloud, fleet, root);
      await h.watchRollouts();
      return h;
    } catch (err) {
      await cloud?.close();
      rmSync(root, { recursive: true, force: true });
      throw err;
    }
  }

  get api() { return this.fleet.api; }

  /** Starts recording the Workloads of `app` (call before creating the app to see every assignment). */
  async track(app: string): Promise<WorkloadTracker> {
    const existing = this.trackers.get(app);
    if (existing) return existing;
    const tracker = new WorkloadTracker(app);
    this.trackers.set(app, tracker);
    const watch = new NdjsonWatch({
      url: `${this.cloud.url}/api/v1/workloads?app=${app}`, token: this.cloud.adminToken,
      onEvent: (line) => tracker.apply(line.type, line.object),
    });
    this.watches.push(watch);
    await watch.start();
    return tracker;
  }

  private async watchRollouts(): Promise<void> {
    const watch = new NdjsonWatch({
      url: `${this.cloud.url}/api/v1/rollouts`, token: this.cloud.adminToken,
      onEvent: (line) => {
        if (line.type === 'DELETED') return;
        const parsed = RolloutSchema.safeParse(line.object);
        if (!parsed.success) {
          this.rolloutViolations.push(`rollout object does not parse: ${parsed.error.message.slice(0, 300)}`);
          return;
        }
        const r = parsed.data;
        const history = this.rolloutHistory.get(r.spec.app) ?? [];
        history.push(r);
        this.rolloutHistory.set(r.spec.app, history);
        if (r.status.counts.updating > r.status.maxUnavailable) {
          this.rolloutViolations.push(`rollout ${r.spec.app} rv ${r.metadata.resourceVersion}: counts.updating ${r.status.counts.updating} > maxUnavailable ${r.status.maxUnavailable}`);
        }
      },
    });
    this.watches.push(watch);
    // The rollout API may not exist yet (built in parallel); the workload checks stand on their own.
    await watch.start().catch((err: Error) => this.rolloutViolations.push(`rollout watch: ${err.message}`));
  }

  /** Creates `app` on the nodes its selector matches, with a template whose env says `version`. */
  async createApp(app: string, opts: { version: string; strategy?: RolloutStrategy; selector?: Record<string, unknown> }): Promise<number> {
    await this.track(app);
    const created = await this.api.request('POST', '/apps', appBody(app, opts)) as { metadata: { generation?: number } };
    return created.metadata.generation ?? 1;
  }

  /** Changes the template (a new revision); returns the app's new generation = the revision number. */
  async updateApp(app: string, opts: { version: string; strategy?: RolloutStrategy; selector?: Record<string, unknown> }): Promise<number> {
    const updated = await this.api.request('PUT', `/apps/${app}`, appBody(app, opts)) as { metadata: { generation?: number } };
    const generation = updated.metadata.generation;
    if (generation === undefined) throw new Error(`PUT /apps/${app}: no generation in the answer`);
    return generation;
  }

  async rollout(app: string): Promise<Rollout> {
    const parsed = RolloutSchema.safeParse(await this.api.request('GET', `/apps/${app}/rollout`));
    if (!parsed.success) throw new Error(`GET /apps/${app}/rollout: ${parsed.error.message}`);
    return parsed.data;
  }

  async command(app: string, command: RolloutCommand, body: Record<string, unknown> = {}): Promise<unknown> {
    return this.api.request('POST', `/apps/${app}/rollout/${command}`, body);
  }

  /** Polls GET /apps/{app}/rollout until `done` holds; the error names the last phase seen. */
  async waitRollout(app: string, what: string, done: (r: Rollout) => boolean, timeoutMs = 120_000): Promise<Rollout> {
    let last: Rollout | undefined;
    try {
      return await waitFor(`${app}: ${what}`, async () => {
        last = await this.rollout(app);
        return done(last) ? last : undefined;
      }, timeoutMs, 200);
    } catch (err) {
      const s = last?.status;
      throw new Error(`${(err as Error).message}; last rollout status: ${s ? JSON.stringify({ phase: s.phase, revision: s.revision, wave: s.wave, counts: s.counts, message: s.message }) : 'none'}`);
    }
  }

  /** Rollout objects of `app` seen on the watch so far. */
  history(app: string): Rollout[] {
    return this.rolloutHistory.get(app) ?? [];
  }

  watchErrors(): string[] {
    return this.watches.flatMap((w) => w.errors);
  }

  async stop(): Promise<void> {
    for (const w of this.watches) await w.close();
    await this.fleet.stop();
    await this.cloud.close();
    rmSync(this.root, { recursive: true, force: true });
  }
}

export function appBody(app: string, opts: { version: string; strategy?: RolloutStrategy; selector?: Record<string, unknown> }) {
  return {
    metadata: { name: app },
    spec: {
      selector: opts.selector ?? {},
      template: { runtime: 'process', command: '/bin/sleep', args: ['600'], env: { VERSION: opts.version } },
      ...(opts.strategy ? { strategy: opts.strategy } : {}),
    },
  };
}
