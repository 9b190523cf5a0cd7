import type { Logger } from 'pino';
import { ConflictError, NotFoundError, type Store, type Watch } from '../store/store.js';
import { desiredWorkloads, planBindings } from './scheduling.js';

/**
 * I/O shell around `scheduling.ts`: watches Apps and Nodes, and after any change (batched)
 * reconciles the Workload objects so each app is bound to exactly the nodes it selects.
 * Conflicts (an edge status write racing ours) simply trigger another pass.
 */
export class Scheduler {
  private watches: Watch[] = [];
  private readonly nodeLabels = new Map<string, string>();
  private running = false;
  private again = false;
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  /** Resolves when the current pass (and any it triggered) has finished; for tests and shutdown. */
  private idle: Promise<void> = Promise.resolve();
  passes = 0;

  constructor(private readonly store: Store, private readonly log: Logger, private readonly batchMs = 20) {}

  async start(): Promise<void> {
    const from = await this.store.revision();
    for (const node of (await this.store.list('Node')).items) this.nodeLabels.set(node.metadata.name, labelKey(node.metadata.labels));
    for (const kind of ['App', 'Config', 'Secret'] as const) {
      this.watches.push(await this.store.watch({ kind, fromRevision: from }, () => this.trigger()));
    }
    this.watches.push(await this.store.watch({ kind: 'Node', fromRevision: from }, (event) => {
      // Node status writes (heartbeats, phase) cannot change bindings: only membership and labels can.
      const name = event.object.metadata.name;
      const labels = labelKey(event.object.metadata.labels);
      if (event.type === 'DELETED') this.nodeLabels.delete(name);
      else if (this.nodeLabels.get(name) === labels) return;
      else this.nodeLabels.set(name, labels);
      this.trigger();
    }));
    this.trigger();
  }

  trigger(): void {
    if (this.stopped) return;
    if (this.running) { this.again = true; return; }
    if (this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.idle = this.run();
    }, this.batchMs);
  }

  private async run(): Promise<void> {
    this.running = true;
    try {
      do {
        this.again = false;
        await this.reconcile();
      } while (this.again && !this.stopped);
    } catch (err) {
      this.log.error({ err: (err as Error).message }, 'scheduling pass failed; retrying');
      setTimeout(() => this.trigger(), 1000).unref();
    } finally {
      this.running = false;
    }
  }

  private async reconcile(): Promise<void> {
    this.passes++;
    const [apps, nodes, workloads, configs, secrets] = await Promise.all([
      this.store.list('App'), this.store.list('Node'), this.store.list('Workload'), this.store.list('Config'), this.store.list('Secret'),
    ]);
    const data = {
      configs: new Map(configs.items.map((c) => [c.metadata.name, c.data])),
      secrets: new Map(secrets.items.map((c) => [c.metadata.name, c.data])),
    };
    const plan = planBindings(desiredWorkloads(apps.items, nodes.items, data), workloads.items);
    let writes = 0;
    // Yield now and then so the hub can start sending to the first nodes while the rest are written.
    const pace = async () => { if (++writes % 100 === 0) await new Promise((r) => setImmediate(r)); };
    for (const w of plan.create) { await this.tolerate(() => this.store.create(w)); await pace(); }
    for (const w of plan.update) { await this.tolerate(() => this.store.update(w)); await pace(); }
    for (const w of plan.remove) {
      await this.tolerate(() => this.store.delete('Workload', w.metadata.name, { resourceVersion: w.metadata.resourceVersion }));
      await pace();
    }
    const changed = plan.create.length + plan.update.length + plan.remove.length;
    if (changed > 0) {
      this.log.info({ created: plan.create.length, updated: plan.update.length, removed: plan.remove.length }, 'workload bindings reconciled');
    }
  }

  /** A conflict or vanished object means our view was stale: schedule another pass. */
  private async tolerate(write: () => Promise<unknown>): Promise<void> {
    try {
      await write();
    } catch (err) {
      if (err instanceof ConflictError || err instanceof NotFoundError) this.again = true;
      else throw err;
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    for (const w of this.watches) w.close();
    await this.idle;
  }
}

function labelKey(labels: Record<string, string> | undefined): string {
  return JSON.stringify(Object.entries(labels ?? {}).sort(([a], [b]) => a.localeCompare(b)));
}
