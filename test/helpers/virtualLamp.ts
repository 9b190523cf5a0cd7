import { expect } from 'vitest';
import { api, type Cloud } from './fleet.js';
import { waitFor } from './wait.js';

/**
 * A virtual switch ("lamp") for the mapper tests: the model and device in the cloud, and the
 * round trip a mapper must make work (desired in the cloud → the device → reported back).
 */

export async function createLamp(cloud: Cloud, node: string): Promise<void> {
  expect((await api(cloud).call('POST', '/devicemodels', { metadata: { name: 'virtual-switch' }, spec: { protocol: 'virtual', properties: [
    { name: 'on', type: 'boolean', accessMode: 'ReadWrite' },
  ] } })).status).toBe(201);
  expect((await api(cloud).call('POST', '/devices', { metadata: { name: 'lamp' }, spec: {
    model: 'virtual-switch', nodeName: node, protocol: { name: 'virtual', config: { kind: 'switch' } },
    properties: [{ name: 'on', collectCycleMs: 200, reportCycleMs: 200 }],
  } })).status).toBe(201);
}

export async function lampTwin(cloud: Cloud): Promise<{ reported: Record<string, unknown>; delta: Record<string, unknown> }> {
  return (await api(cloud).call<{ reported: Record<string, unknown>; delta: Record<string, unknown> }>('GET', '/devices/lamp/twin')).body;
}

/** Sets desired `on` in the cloud and waits until the lamp reports it, with no delta left. */
export async function switchLamp(cloud: Cloud, on: boolean): Promise<void> {
  expect((await api(cloud).call('PATCH', '/devices/lamp/twin', { on })).status).toBe(200);
  await waitFor(`lamp ${on ? 'on' : 'off'}, no delta`, async () => {
    const t = await lampTwin(cloud);
    return t.reported.on === on && Object.keys(t.delta).length === 0;
  }, 30_000);
}
