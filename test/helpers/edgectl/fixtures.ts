import type { App, Event, Labels, Node, Workload } from '../../../protocol/index.js';

/** Small builders for API objects as cloudcore returns them; `NOW` is the clock tests run at. */

export const NOW = new Date('2025-01-01T12:00:00Z');

export function minutesAgo(minutes: number): string {
  return new Date(NOW.getTime() - minutes * 60_000).toISOString();
}

export function makeNode(name: string, opts: { phase?: Node['status']['phase']; labels?: Labels; version?: string } = {}): Node {
  return {
    kind: 'Node',
    metadata: { name, resourceVersion: 5, creationTimestamp: minutesAgo(3 * 24 * 60), ...(opts.labels ? { labels: opts.labels } : {}) },
    spec: {},
    status: {
      phase: opts.phase ?? 'Ready',
      since: minutesAgo(180),
      lastSeen: opts.phase === 'Pending' ? null : minutesAgo(1),
      epoch: opts.phase === 'Pending' ? null : 'epoch-1',
      ackedRevision: 42,
      agent: opts.version ? { version: opts.version, os: 'linux', arch: 'x64', hostname: `${name}.local` } : null,
    },
  };
}

export function makeApp(name: string, opts: { generation?: number; status?: App['status']; matchLabels?: Labels } = {}): App {
  return {
    kind: 'App',
    metadata: { name, resourceVersion: 7, generation: opts.generation ?? 1, creationTimestamp: minutesAgo(120) },
    spec: {
      selector: opts.matchLabels ? { matchLabels: opts.matchLabels } : {},
      template: { runtime: 'process', command: '/usr/bin/node', args: ['server.js'], env: {}, restartPolicy: 'Always', probes: {}, configs: [], secrets: [] },
    },
    ...(opts.status ? { status: opts.status } : {}),
  };
}

export function makeWorkload(app: string, node: string, state: 'Running' | 'CrashLoop' | 'Pending', generation = 1): Workload {
  return {
    kind: 'Workload',
    metadata: { name: `${app}.${node}`, resourceVersion: 9 },
    spec: {
      nodeName: node, app, generation,
      template: { runtime: 'process', command: '/usr/bin/node', args: [], env: {}, restartPolicy: 'Always', probes: {}, configs: [], secrets: [] },
    },
    status: {
      state, restarts: state === 'CrashLoop' ? 4 : 0, generation, observedAt: minutesAgo(2),
      ...(state === 'CrashLoop' ? { lastError: 'exit code 1\nat line 3' } : {}),
    },
  };
}

export function makeEvent(node: string, reason: string, message: string, minutes: number): Event {
  return {
    kind: 'Event',
    metadata: { name: `${node}.${reason.toLowerCase()}.${minutes}`, resourceVersion: 11 },
    spec: { node, reason, message, type: reason === 'BackOff' ? 'Warning' : 'Normal', time: minutesAgo(minutes) },
  };
}
