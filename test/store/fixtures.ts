import {
  AppSchema, DeviceSchema, EventSchema, NodeSchema, WorkloadSchema, workloadName,
  type App, type Device, type Event, type Node, type Workload,
} from '../../protocol/index.js';

/**
 * Realistic store objects, built through the protocol schemas so every fixture is a valid
 * resource (and defaults are filled in exactly as the API would fill them).
 */

export function makeApp(name: string, opts: { command?: string; args?: string[]; zone?: string } = {}): App {
  return AppSchema.parse({
    kind: 'App',
    metadata: { name, labels: { team: 'fleet' } },
    spec: {
      selector: { matchLabels: { zone: opts.zone ?? 'eu-1' } },
      template: { runtime: 'process', command: opts.command ?? '/usr/bin/sensor-agent', args: opts.args ?? ['--interval', '5s'] },
    },
  });
}

export function makeWorkload(app: App, node: string): Workload {
  return WorkloadSchema.parse({
    kind: 'Workload',
    metadata: { name: workloadName(app.metadata.name, node), labels: { app: app.metadata.name } },
    spec: {
      nodeName: node,
      app: app.metadata.name,
      generation: app.metadata.generation ?? 1,
      template: app.spec.template,
    },
  });
}

/** A device on `node` with an MQTT credential hash, as the API stores one. */
export function makeDevice(name: string, node: string): Device {
  return DeviceSchema.parse({
    kind: 'Device',
    metadata: { name },
    spec: {
      model: 'thermostat', nodeName: node, protocol: { name: 'virtual' },
      credentialHash: 'scrypt$c2FsdHNhbHRzYWx0c2FsdA==$a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2U=',
    },
  });
}

export function makeNode(name: string, zone = 'eu-1'): Node {
  return NodeSchema.parse({
    kind: 'Node',
    metadata: { name, labels: { zone } },
    spec: {},
    status: {
      phase: 'Pending',
      since: '2025-01-01T00:00:00.000Z',
      lastSeen: null,
      epoch: null,
      ackedRevision: 0,
      agent: null,
    },
  });
}

export function makeEdgeEvent(name: string, node: string, reason = 'Started'): Event {
  return EventSchema.parse({
    kind: 'Event',
    metadata: { name },
    spec: { node, reason, message: `workload ${reason.toLowerCase()}`, type: 'Normal', time: '2025-01-01T00:00:00.000Z' },
  });
}

/** A workload status as an edge would report it. */
export function runningStatus(generation: number, restarts = 0): NonNullable<Workload['status']> {
  return WorkloadSchema.shape.status.unwrap().parse({
    state: 'Running', restarts, pid: 4242, generation, observedAt: '2025-01-01T00:00:05.000Z',
  });
}

/** Polls `condition` until it holds; backends may deliver watch events asynchronously. */
export async function waitFor(condition: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}
