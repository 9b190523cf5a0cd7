import { join } from 'node:path';
import type { AppGrantStatus, CloudFrame, NodeRoute, RouteCounters } from '../../../protocol/index.js';
import { fitAppGrants } from '../apps/grantReport.js';
import type { EdgePart } from '../../part.js';
import type { RouteUplink } from './cloudDestination.js';
import { RouteEngine, type RouteBus, type RouteLog } from './routeEngine.js';
import { RouteQueue } from './routeQueue.js';

/** How often changed route counters go to the cloud (they are shown there, not acted on). */
const STATUS_EVERY_MS = 5_000;

export interface RouteServiceOptions {
  node: string;
  dataDir: string;
  log: RouteLog;
  /** The edge broker (started before this part). */
  bus: () => RouteBus | null;
  /** The routes bound to this node as the meta database holds them (they run with the cloud away). */
  desired: () => { items: NodeRoute[]; unreadable: { name: string; error: string }[] };
  uplink: RouteUplink;
  /** The broker's app identities and their counters, sent to the cloud with the route counters. */
  appGrants?: () => AppGrantStatus[];
}

/**
 * The `routes` part: the route queue (`routes.db`) and engine, started after the broker from the
 * routes in the local database, re-applied after each sync that changed them; counters to the
 * cloud every few seconds while they change, with the broker's app grant counters.
 */
export class RouteService implements EdgePart {
  readonly name = 'routes';
  private queue: RouteQueue | undefined;
  private engine: RouteEngine | undefined;
  private timer: NodeJS.Timeout | undefined;
  private lastSent = '';
  private applying: Promise<void> = Promise.resolve();

  constructor(private readonly opts: RouteServiceOptions) {}

  async start(): Promise<void> {
    const bus = this.opts.bus();
    if (!bus) throw new Error('the routes need the device broker, which is not running');
    this.queue = new RouteQueue(join(this.opts.dataDir, 'routes.db'));
    this.engine = new RouteEngine({ node: this.opts.node, queue: this.queue, bus, uplink: this.opts.uplink, log: this.opts.log });
    await this.apply();
    this.timer = setInterval(() => this.sendStatus(), STATUS_EVERY_MS);
    this.timer.unref();
  }

  /** Re-reads the desired routes (after a sync changed them); applies run one after another. */
  apply(): Promise<void> {
    this.applying = this.applying.then(async () => {
      if (!this.engine) return;
      const { items, unreadable } = this.opts.desired();
      for (const row of unreadable) this.opts.log.warn({ route: row.name, error: row.error }, 'stored route cannot be read; not running it');
      await this.engine.setRoutes(items);
    }).catch((err: Error) => this.opts.log.warn({ err: err.message }, 'could not apply the routes'));
    return this.applying;
  }

  onLinkPhase(up: boolean): void {
    this.engine?.onLinkChange(up);
    if (up) this.lastSent = '';
  }

  /** A route frame from the cloud: an ack of routed messages, or an operator's publish into the broker. */
  onCloudFrame(frame: Extract<CloudFrame, { type: 'routedAck' | 'publishRequest' }>): void {
    const engine = this.engine;
    if (frame.type === 'routedAck') return engine?.onRoutedAck(frame.route, frame.seq);
    const answer = (error?: string) => this.opts.uplink.send({ type: 'publishResult', id: frame.id, ...(error !== undefined ? { error } : {}) });
    if (!engine) return void answer('the routes are not running on this node');
    engine.publishFromCloud(frame).then(() => answer(), (err: Error) => {
      this.opts.log.warn({ topic: frame.topic, err: err.message }, 'publish from the cloud refused');
      answer(err.message);
    });
  }

  counters(): RouteCounters[] {
    return this.engine?.counters() ?? [];
  }

  private sendStatus(): void {
    const routes = this.counters();
    const grants = this.opts.appGrants ? fitAppGrants(this.opts.appGrants()) : undefined;
    const frame = { type: 'routeStatus' as const, routes, ...(grants ? { appGrants: grants.appGrants, appGrantsOmitted: grants.omitted } : {}) };
    const text = JSON.stringify(frame);
    if (text === this.lastSent) return;
    if (this.opts.uplink.send(frame)) this.lastSent = text;
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.applying;
    await this.engine?.close();
    this.queue?.close();
  }
}
