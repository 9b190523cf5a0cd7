import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  AppInputSchema, matchesSelector, NodePatchSchema, parseSelectorString, TokenRequestSchema,
  type App, type Event, type Labels, type Node, type Workload,
} from '../../../protocol/index.js';

/**
 * A stand-in for cloudcore's REST surface (docs/api.md) for edgectl's own tests: a real HTTP
 * server on 127.0.0.1 with in-memory state. It answers like the contract says so the CLI's
 * requests, flags and output can be checked; end-to-end tests against real cloudcore live elsewhere.
 */

export interface RecordedRequest {
  method: string;
  path: string;
  query: Record<string, string>;
  authorization: string | undefined;
  body: unknown;
}

export interface ApiState {
  nodes: Node[];
  apps: App[];
  workloads: Workload[];
  events: Event[];
}

export interface ApiDouble {
  url: string;
  state: ApiState;
  requests: RecordedRequest[];
  /** Answer the next requests with this instead (e.g. a malformed body); undefined to stop. */
  override: ((req: RecordedRequest) => { status: number; body: unknown } | undefined) | undefined;
  close: () => Promise<void>;
}

type Answer = { status: number; body: unknown };

export async function startApiDouble(initial: Partial<ApiState> = {}, token = 'admin-secret'): Promise<ApiDouble> {
  const state: ApiState = { nodes: [], apps: [], workloads: [], events: [], ...structuredClone(initial) };
  let revision = 100;
  const double: ApiDouble = { url: '', state, requests: [], override: undefined, close: async () => {} };

  const handle = (req: RecordedRequest): Answer => {
    if (req.authorization !== `Bearer ${token}`) return error(401, req.authorization ? 'unknown token' : 'missing bearer token');
    const [, api, v1, collection, name, ...rest] = req.path.split('/');
    if (api !== 'api' || v1 !== 'v1' || rest.length > 0) return error(404, `no route ${req.path}`);
    const selected = <T extends { metadata: { labels?: Labels | undefined } }>(items: T[]): T[] | Answer => {
      if (!req.query.labelSelector) return items;
      try {
        const selector = parseSelectorString(req.query.labelSelector);
        return items.filter((i) => matchesSelector(selector, i.metadata.labels));
      } catch (err) {
        return error(400, (err as Error).message, 'labelSelector');
      }
    };
    const key = `${req.method} ${collection}${name ? '/:name' : ''}`;
    switch (key) {
      case 'GET nodes': return listAnswer(selected(state.nodes), revision);
      case 'GET nodes/:name': return found(state.nodes, name!, 'node');
      case 'DELETE nodes/:name': return remove(state.nodes, name!, 'node');
      case 'PATCH nodes/:name': {
        const node = state.nodes.find((n) => n.metadata.name === name);
        if (!node) return error(404, `node "${name}" not found`);
        const patch = NodePatchSchema.safeParse(req.body);
        if (!patch.success) return error(400, patch.error.issues[0]!.message, patch.error.issues[0]!.path.join('.'));
        const labels: Labels = { ...node.metadata.labels };
        for (const [k, v] of Object.entries(patch.data.metadata.labels)) {
          if (v === null) delete labels[k]; else labels[k] = v;
        }
        node.metadata.labels = labels;
        node.metadata.resourceVersion = ++revision;
        return { status: 200, body: node };
      }
      case 'POST tokens': {
        const parsed = TokenRequestSchema.safeParse(req.body);
        if (!parsed.success) return error(400, parsed.error.issues[0]!.message, parsed.error.issues[0]!.path.join('.'));
        const expiresAt = new Date(Date.parse('2025-01-01T12:00:00Z') + parsed.data.ttlSeconds * 1000).toISOString();
        return { status: 201, body: { token: `join.${parsed.data.node}.secret`, node: parsed.data.node, expiresAt } };
      }
      case 'GET apps': return listAnswer(selected(state.apps), revision);
      case 'GET apps/:name': return found(state.apps, name!, 'app');
      case 'DELETE apps/:name': return remove(state.apps, name!, 'app');
      case 'POST apps':
      case 'PUT apps/:name': {
        const parsed = AppInputSchema.safeParse(req.body);
        if (!parsed.success) return error(400, parsed.error.issues[0]!.message, parsed.error.issues[0]!.path.join('.'));
        const input = parsed.data;
        const existing = state.apps.find((a) => a.metadata.name === input.metadata.name);
        if (req.method === 'POST' && existing) return error(409, `app "${input.metadata.name}" already exists`);
        if (req.method === 'PUT' && input.metadata.name !== name) return error(400, 'name does not match the URL', 'metadata.name');
        if (req.method === 'PUT' && !existing) return error(404, `app "${name}" not found`);
        const specChanged = !existing || JSON.stringify(existing.spec) !== JSON.stringify(input.spec);
        const app: App = {
          kind: 'App',
          metadata: {
            ...input.metadata,
            resourceVersion: ++revision,
            generation: (existing?.metadata.generation ?? 0) + (specChanged ? 1 : 0),
            creationTimestamp: existing?.metadata.creationTimestamp ?? '2025-01-01T11:00:00Z',
          },
          spec: input.spec,
        };
        state.apps = [...state.apps.filter((a) => a !== existing), app];
        return { status: existing ? 200 : 201, body: app };
      }
      case 'GET workloads': return listAnswer(state.workloads.filter((w) =>
        (!req.query.node || w.spec.nodeName === req.query.node) && (!req.query.app || w.spec.app === req.query.app)), revision);
      case 'GET events': {
        const events = state.events.filter((e) => !req.query.node || e.spec.node === req.query.node);
        return { status: 200, body: { items: events.slice(-Number(req.query.limit ?? 100)) } };
      }
      default: return error(404, `no route ${req.method} ${req.path}`);
    }
  };

  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const url = new URL(req.url ?? '/', 'http://127.0.0.1');
      const text = Buffer.concat(chunks).toString('utf8');
      const recorded: RecordedRequest = {
        method: req.method ?? 'GET',
        path: url.pathname,
        query: Object.fromEntries(url.searchParams),
        authorization: req.headers.authorization,
        body: text ? JSON.parse(text) as unknown : undefined,
      };
      double.requests.push(recorded);
      const answer = double.override?.(recorded) ?? handle(recorded);
      res.writeHead(answer.status, { 'content-type': 'application/json' });
      res.end(typeof answer.body === 'string' ? answer.body : JSON.stringify(answer.body));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  double.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  double.close = () => new Promise<void>((resolve) => { server.closeAllConnections(); server.close(() => resolve()); });
  return double;
}

function error(status: number, message: string, field?: string): Answer {
  return { status, body: field ? { error: message, field } : { error: message } };
}

function listAnswer<T>(items: T[] | Answer, revision: number): Answer {
  return Array.isArray(items) ? { status: 200, body: { items, resourceVersion: revision } } : items;
}

function found<T extends { metadata: { name: string } }>(items: T[], name: string, kind: string): Answer {
  const item = items.find((i) => i.metadata.name === decodeURIComponent(name));
  return item ? { status: 200, body: item } : error(404, `${kind} "${decodeURIComponent(name)}" not found`);
}

function remove<T extends { metadata: { name: string } }>(items: T[], name: string, kind: string): Answer {
  const index = items.findIndex((i) => i.metadata.name === name);
  if (index < 0) return error(404, `${kind} "${name}" not found`);
  return { status: 200, body: items.splice(index, 1)[0] };
}
