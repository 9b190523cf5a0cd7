import type { Logger } from 'pino';
import type { Store, WriteGuard } from '../store/store.js';
import { AgentUpgradeController } from './agentUpgradeController.js';
import { ModelCopyController } from './modelCopy.js';
import { NodeLifecycle } from './nodeLifecycle.js';
import { RolloutController } from './rolloutController.js';
import { RouteBinder } from './routeBinder.js';
import { Scheduler } from './scheduler.js';
import { StartWhenReadable, type Controller } from './startWhenReadable.js';

export interface ControllerSetOptions {
  log: Logger;
  rolloutTickMs: number;
  offlineAfterMs: number;
  /** Whether some replica holds the node's link now. */
  isConnected(node: string): boolean;
  /** With several replicas: the guard under which a node nobody holds may be marked Offline. */
  offlineGuard?: (node: string) => WriteGuard;
  /**
   * Restart every controller this often (±25 %): each lists the store afresh, so a watch event a
   * distributed store lost does not leave a controller's copy wrong for long (store etcd).
   */
  resyncMs?: number;
}

/**
 * Everything in cloudcore that writes on its own (scheduler, rollouts, agent upgrades, device
 * model copy, node lifecycle), started and stopped as one. One cloudcore runs it for good; with
 * several replicas only the elected leader runs it, over a store view whose every write carries
 * the leader guard, so a deposed leader's last writes fail instead of racing the new leader's.
 */
export class ControllerSet {
  private running: Controller[] = [];
  private resyncTimer: NodeJS.Timeout | undefined;
  /** Bumped by every start and stop: a resync due from an earlier start must not undo a later stop. */
  private term = 0;
  /** Serialises start and stop: an election can flip faster than a start completes. */
  private queue: Promise<void> = Promise.resolve();

  constructor(private readonly opts: ControllerSetOptions) {}

  get active(): boolean {
    return this.running.length > 0;
  }

  /** Starts every controller over `store` (already guarded when a leader runs them). */
  start(store: Store): Promise<void> {
    const term = ++this.term;
    return this.enqueue(async () => {
      if (term !== this.term) return; // stopped or started again meanwhile
      await this.stopAll();
      const { log, offlineAfterMs } = this.opts;
      // Started even while the store holds an unreadable object (they wait for its removal), so
      // the API that can remove it stays up.
      const controllers: Controller[] = [
        new StartWhenReadable('scheduler', new Scheduler(store, log), log),
        new StartWhenReadable('rollouts', new RolloutController(store, log, { tickMs: this.opts.rolloutTickMs }), log),
        new StartWhenReadable('agent upgrades', new AgentUpgradeController(store, log, { tickMs: this.opts.rolloutTickMs }), log),
        new StartWhenReadable('device model copy', new ModelCopyController(store, log), log),
        new StartWhenReadable('route binding', new RouteBinder(store, log), log),
        lifecycleController(new NodeLifecycle({
          store, log, offlineAfterMs, isConnected: this.opts.isConnected, intervalMs: Math.min(10_000, offlineAfterMs / 3),
          ...(this.opts.offlineGuard ? { offlineGuard: this.opts.offlineGuard } : {}),
        })),
      ];
      for (const controller of controllers) {
        this.running.push(controller);
        await controller.start();
      }
      const resyncMs = this.opts.resyncMs;
      if (resyncMs !== undefined) {
        this.resyncTimer = setTimeout(() => {
          if (term !== this.term) return;
          this.opts.log.debug('controllers listing the store afresh (resync)');
          this.start(store).catch((err: Error) => this.opts.log.error({ err: err.message }, 'controllers failed to restart for a resync'));
        }, Math.round(resyncMs * (0.75 + Math.random() * 0.5)));
        this.resyncTimer.unref();
      }
    });
  }

  /** Stops every controller; their passes in flight end first. */
  stop(): Promise<void> {
    this.term++;
    return this.enqueue(() => this.stopAll());
  }

  private async stopAll(): Promise<void> {
    clearTimeout(this.resyncTimer);
    const running = this.running.splice(0).reverse();
    for (const controller of running) {
      await controller.stop().catch((err: Error) => this.opts.log.warn({ err: err.message }, 'controller stop failed'));
    }
  }

  private enqueue(step: () => Promise<void>): Promise<void> {
    const next = this.queue.then(step);
    this.queue = next.catch(() => undefined);
    return next;
  }
}

function lifecycleController(lifecycle: NodeLifecycle): Controller {
  return { start: async () => lifecycle.start(), stop: () => lifecycle.stop() };
}
