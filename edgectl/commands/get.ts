import type { Command } from 'commander';
import type { App, Workload } from '../../protocol/index.js';
import { emit, outputOption, type Context } from '../context.js';
import {
  APP_COLUMNS, APP_NODE_COLUMNS, appFields, appNodeRows, appRow, EVENT_COLUMNS, eventRow, NODE_COLUMNS,
  nodeFields, nodeRow, renderFields, renderTable, WORKLOAD_COLUMNS, workloadInstance, workloadRow,
  type InstanceState, type OutputFormat,
} from '../format.js';
import { parseLimit, parseName, parseSelectorFlag } from '../parse.js';
import { printWatch } from '../watchOutput.js';
import { ROUTE_COLUMNS, ROUTE_COUNTER_COLUMNS, routeCounterRow, routeRow } from '../routeFormat.js';
import { fetchNodeDataFlows, renderNodeDataFlows } from '../nodeData.js';

interface OutputOpts { output: OutputFormat }
interface SelectorOpts extends OutputOpts { selector?: string }
interface WorkloadOpts extends OutputOpts { node?: string; app?: string }
interface EventOpts extends OutputOpts { node?: string; limit?: number }
interface WatchOpts { watch?: boolean }

const SELECTOR_HELP = 'label selector, e.g. "env=prod,zone in (a,b),!legacy"';

export function registerGet(program: Command, ctx: Context): void {
  const get = program.command('get').description('show nodes, apps, workloads, events, routes, devices, device models, telemetry or unreadable objects');

  get.command('nodes')
    .description('list edge nodes (AGE is the time in the current STATUS)')
    .option('-l, --selector <selector>', SELECTOR_HELP, parseSelectorFlag)
    .option('-w, --watch', 'after the list, print a row for every change (a node going Offline, joining, relabelled) until interrupted')
    .addOption(outputOption())
    .action(async (opts: SelectorOpts & WatchOpts, cmd: Command) => {
      const client = ctx.client(cmd);
      const list = await client.listNodes(opts.selector);
      if (opts.watch) {
        return printWatch(ctx, opts.output, { columns: NODE_COLUMNS, row: (n) => nodeRow(n, ctx.now()), deletedColumn: 'STATUS' }, list.items,
          (onEvent) => client.watchNodes({ labelSelector: opts.selector, resourceVersion: list.resourceVersion }, onEvent));
      }
      const now = ctx.now();
      emit(ctx, opts.output, list, () => list.items.length === 0
        ? 'No nodes found.\n'
        : renderTable(NODE_COLUMNS, list.items.map((n) => nodeRow(n, now))));
    });

  get.command('node')
    .description('show one node, the workloads bound to it, its app grants and its routes with their counters')
    .argument('<name>', 'node name')
    .addOption(outputOption())
    .action(async (name: string, opts: OutputOpts, cmd: Command) => {
      const client = ctx.client(cmd);
      const node = await client.getNode(parseName(name, 'node'));
      if (opts.output !== 'table') return emit(ctx, opts.output, node, () => '');
      const workloads = await client.listWorkloads({ node: node.metadata.name });
      const flows = await fetchNodeDataFlows(client, node.metadata.name);
      const now = ctx.now();
      ctx.out(renderFields(nodeFields(node, now)) + '\n'
        + workloadSection(workloads.items, now, 'No workloads on this node.')
        + renderNodeDataFlows(node.metadata.name, flows, now));
    });

  get.command('apps')
    .description('list apps with how many of their nodes run the current generation')
    .option('-l, --selector <selector>', SELECTOR_HELP, parseSelectorFlag)
    .addOption(outputOption())
    .action(async (opts: SelectorOpts, cmd: Command) => {
      const client = ctx.client(cmd);
      const list = await client.listApps(opts.selector);
      if (opts.output !== 'table') return emit(ctx, opts.output, list, () => '');
      if (list.items.length === 0) return ctx.out('No apps found.\n');
      const instances = await instancesByApp(list.items, () => client.listWorkloads());
      ctx.out(renderTable(APP_COLUMNS, list.items.map((app) => appRow(app, instances(app)))));
    });

  get.command('app')
    .description('show one app and its state on every node it is bound to')
    .argument('<name>', 'app name')
    .addOption(outputOption())
    .action(async (name: string, opts: OutputOpts, cmd: Command) => {
      const app = await ctx.client(cmd).getApp(parseName(name, 'app'));
      emit(ctx, opts.output, app, () => {
        const rows = appNodeRows(app);
        return renderFields(appFields(app, ctx.now())) + '\n'
          + (rows.length === 0 ? 'No nodes match the selector yet.\n' : renderTable(APP_NODE_COLUMNS, rows));
      });
    });

  get.command('workloads')
    .description('list workloads: apps bound to nodes, with the state each edge reports')
    .option('--node <name>', 'only workloads on this node', (v: string) => parseName(v, 'node'))
    .option('--app <name>', 'only workloads of this app', (v: string) => parseName(v, 'app'))
    .option('-w, --watch', 'after the list, print a row for every change (state, restarts, a new generation) until interrupted')
    .addOption(outputOption())
    .action(async (opts: WorkloadOpts & WatchOpts, cmd: Command) => {
      const client = ctx.client(cmd);
      const list = await client.listWorkloads({ node: opts.node, app: opts.app });
      if (opts.watch) {
        return printWatch(ctx, opts.output, { columns: WORKLOAD_COLUMNS, row: (w) => workloadRow(w, ctx.now()), deletedColumn: 'STATE' }, list.items,
          (onEvent) => client.watchWorkloads({ node: opts.node, app: opts.app, resourceVersion: list.resourceVersion }, onEvent));
      }
      emit(ctx, opts.output, list, () => workloadSection(list.items, ctx.now(), 'No workloads found.'));
    });

  get.command('events')
    .description('list events reported by edges, newest last')
    .option('--node <name>', 'only events from this node', (v: string) => parseName(v, 'node'))
    .option('--limit <n>', 'at most this many events (cloudcore default 100)', parseLimit)
    .addOption(outputOption())
    .action(async (opts: EventOpts, cmd: Command) => {
      const list = await ctx.client(cmd).listEvents({ node: opts.node, limit: opts.limit });
      const now = ctx.now();
      emit(ctx, opts.output, list, () => list.items.length === 0
        ? 'No events found.\n'
        : renderTable(EVENT_COLUMNS, list.items.map((e) => eventRow(e, now))));
    });

  get.command('routes')
    .description('list routes: which local topics go where, on how many nodes')
    .addOption(outputOption())
    .action(async (opts: OutputOpts, cmd: Command) => {
      const list = await ctx.client(cmd).listRoutes();
      emit(ctx, opts.output, list, () => list.items.length === 0 ? 'No routes found.\n' : renderTable(ROUTE_COLUMNS, list.items.map(routeRow)));
    });

  get.command('route')
    .description('show one route and, per node, its message and drop counters as the node last reported them')
    .argument('<name>', 'route name')
    .addOption(outputOption())
    .action(async (name: string, opts: OutputOpts, cmd: Command) => {
      const route = await ctx.client(cmd).getRoute(parseName(name, 'route'));
      const nodes = route.status?.nodes ?? [];
      emit(ctx, opts.output, route, () => renderTable(ROUTE_COLUMNS, [routeRow(route)]) + '\n'
        + (nodes.length === 0 ? 'No nodes match the selector yet.\n' : renderTable(ROUTE_COUNTER_COLUMNS, nodes.map((n) => routeCounterRow(n.node, n)))));
    });

  get.command('unreadable')
    .description('list objects the cloud store holds but cannot read (remove each with `edgectl delete unreadable KIND NAME`)')
    .addOption(outputOption())
    .action(async (opts: OutputOpts, cmd: Command) => {
      const list = await ctx.client(cmd).listUnreadable();
      emit(ctx, opts.output, list, () => list.items.length === 0
        ? 'No unreadable objects: the store reads every object it holds.\n'
        : renderTable(['KIND', 'NAME', 'WHY'], list.items.map((o) => [o.kind, o.name, o.reason])));
    });
}

function workloadSection(items: Workload[], now: Date, empty: string): string {
  return items.length === 0 ? `${empty}\n` : renderTable(WORKLOAD_COLUMNS, items.map((w) => workloadRow(w, now)));
}

/**
 * Per-app instance states for the READY/BOUND column: from `status.nodes` when cloudcore put it on
 * the list items, otherwise from one workload listing (never one request per app).
 */
async function instancesByApp(
  apps: App[], listWorkloads: () => Promise<{ items: Workload[] }>,
): Promise<(app: App) => InstanceState[]> {
  if (apps.every((a) => a.status !== undefined)) return (app) => app.status!.nodes;
  const byApp = new Map<string, InstanceState[]>();
  for (const w of (await listWorkloads()).items) {
    const list = byApp.get(w.spec.app) ?? [];
    list.push(workloadInstance(w));
    byApp.set(w.spec.app, list);
  }
  return (app) => app.status?.nodes ?? byApp.get(app.metadata.name) ?? [];
}
