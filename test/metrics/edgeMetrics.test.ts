import { join } from 'node:path';
import { connectAsync, type MqttClient } from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { api, Fleet, markerApp, type Cloud, type Edge } from '../helpers/fleet.js';
import { TcpProxy } from '../helpers/tcpProxy.js';
import { waitFor } from '../helpers/wait.js';
import { conventionProblems, Scrape } from './promText.js';

/**
 * edgecore `/metrics` on a real edge joined to a real cloudcore through a TCP proxy the test
 * cuts, with a real process workload and a device played by the `mqtt` package.
 */
describe('edgecore /metrics', () => {
  const fleet = new Fleet();
  let cloud: Cloud;
  let proxy: TcpProxy;
  let edge: Edge;
  let device: MqttClient | undefined;

  const scrape = async () => {
    const res = await fetch(`${edge.statusUrl}/metrics`);
    expect(res.status).toBe(200);
    return new Scrape(await res.text());
  };
  const workloadPid = async (name: string) => {
    const w = (await fleet.edgeStatus(edge)).workloads.find((x) => x.name === name);
    return w?.status?.state === 'Running' ? w.status.pid ?? undefined : undefined;
  };

  beforeAll(async () => {
    cloud = await fleet.startCloud();
    proxy = new TcpProxy(cloud.port);
    edge = await fleet.startEdge({ node: 'edge-1', cloudUrl: await proxy.start(), joinToken: await api(cloud).token('edge-1') });
  });
  afterAll(async () => {
    await device?.endAsync().catch(() => undefined);
    await fleet.cleanup();
    await proxy.close();
  });

  it('link up: connected, one connect, build info; names follow the conventions', async () => {
    const s = await waitFor('link up', async () => {
      const m = await scrape();
      return m.value('edgefleet_edge_link_connected') === 1 ? m : undefined;
    });
    expect(conventionProblems(s, 'edgefleet_')).toEqual([]);
    expect(s.value('edgefleet_edge_link_connects_total')).toBe(1);
    expect(s.value('edgefleet_edge_link_down_seconds')).toBe(0);
    expect(s.value('edgefleet_edge_build_info', { node: 'edge-1' })).toBe(1);
    expect(s.value('edgefleet_edge_data_disk_available_bytes')).toBeGreaterThan(0);
    expect(s.family('edgefleet_edge_outbox_dropped_total').type).toBe('COUNTER');
    // prom-client's process metrics, loaded with the first scrape.
    expect(s.value('process_resident_memory_bytes')).toBeGreaterThan(0);
  });

  it('workloads by state and restarts follow a real process workload', async () => {
    expect((await api(cloud).call('POST', '/apps', markerApp('counter', join(fleet.root, 'counter.marker')))).status).toBe(201);
    const pid = await waitFor('counter running', () => workloadPid('counter'));
    const running = await scrape();
    expect(running.value('edgefleet_edge_workloads', { state: 'Running' })).toBe(1);
    expect(running.value('edgefleet_edge_workload_restarts_total', { workload: 'counter' })).toBe(0);
    process.kill(pid, 'SIGKILL');
    await waitFor('restart counted', async () => (await scrape()).value('edgefleet_edge_workload_restarts_total', { workload: 'counter' }) === 1);
    await waitFor('running again', async () => (await scrape()).value('edgefleet_edge_workloads', { state: 'Running' }) === 1);
  });

  it('broker clients, messages in and out, devices online and twin updates follow a real MQTT device', async () => {
    expect((await api(cloud).call('POST', '/devicemodels', { metadata: { name: 'meter' }, spec: { protocol: 'virtual', properties: [
      { name: 'power', type: 'float', accessMode: 'ReadOnly' }, { name: 'limit', type: 'float', accessMode: 'ReadWrite' },
    ] } })).status).toBe(201);
    const created = await api(cloud).call<{ credentials: { password: string } }>('POST', '/devices', { metadata: { name: 'meter-1' }, spec: { model: 'meter', nodeName: 'edge-1', protocol: { name: 'virtual' }, desired: { limit: 10 } } });
    expect(created.status).toBe(201);
    await waitFor('device on the edge', async () => (await scrape()).value('edgefleet_edge_devices', { online: 'false' }) === 1);
    const before = await scrape();

    const mqttPort = Number(new URL(String(edge.proc.lines.find((l) => l.msg === 'edgecore ready')!.mqttUrl)).port);
    device = await connectAsync(`mqtt://127.0.0.1:${mqttPort}`, { username: 'meter-1', password: created.body.credentials.password, clientId: 'meter-1', protocolVersion: 4, reconnectPeriod: 0 });
    const desired = new Promise<void>((resolve) => device!.on('message', (topic) => { if (topic.endsWith('/twin/desired')) resolve(); }));
    await device.subscribeAsync('ef/devices/meter-1/twin/desired', { qos: 1 });
    await desired; // the retained desired section was delivered: one message out
    await device.publishAsync('ef/devices/meter-1/twin/reported', JSON.stringify({ properties: { power: 3.5, limit: 10 } }), { qos: 1 });

    const after = await waitFor('device activity counted', async () => {
      const s = await scrape();
      return s.value('edgefleet_edge_twin_updates_total') >= before.value('edgefleet_edge_twin_updates_total') + 2 ? s : undefined;
    });
    expect(after.value('edgefleet_edge_mqtt_clients')).toBe(1);
    expect(after.value('edgefleet_edge_devices', { online: 'true' })).toBe(1);
    expect(after.value('edgefleet_edge_mqtt_messages_received_total')).toBeGreaterThanOrEqual(before.value('edgefleet_edge_mqtt_messages_received_total') + 1);
    expect(after.value('edgefleet_edge_mqtt_messages_sent_total')).toBeGreaterThanOrEqual(before.value('edgefleet_edge_mqtt_messages_sent_total') + 1);
    expect(after.value('edgefleet_edge_mqtt_messages_refused_total')).toBe(before.value('edgefleet_edge_mqtt_messages_refused_total'));
    // The device coming online and its report went through the hub's group commit.
    expect(after.value('edgefleet_edge_device_commits_total')).toBeGreaterThan(before.value('edgefleet_edge_device_commits_total'));
    expect(after.value('edgefleet_edge_device_commit_items_total')).toBeGreaterThanOrEqual(before.value('edgefleet_edge_device_commit_items_total') + 2);
    expect(after.value('edgefleet_edge_device_commit_rollbacks_total')).toBe(0);

    // A publish outside its own topics is refused and counted.
    await device.publishAsync('ef/devices/someone-else/twin/reported', '{}', { qos: 0 }).catch(() => undefined);
    await waitFor('refusal counted', async () => (await scrape()).value('edgefleet_edge_mqtt_messages_refused_total') > before.value('edgefleet_edge_mqtt_messages_refused_total'));
  });

  it('link cut: disconnected, down seconds grow, the outbox fills; restored: it drains and connects again', async () => {
    proxy.cut();
    const down = await waitFor('link down for a second', async () => {
      const s = await scrape();
      return s.value('edgefleet_edge_link_connected') === 0 && s.value('edgefleet_edge_link_down_seconds') >= 1 ? s : undefined;
    });
    expect(down.value('edgefleet_edge_link_up_seconds')).toBe(0);
    // Something to queue while the cloud is away: the workload dies and is restarted locally.
    process.kill((await waitFor('counter running', () => workloadPid('counter'))), 'SIGKILL');
    await waitFor('outbox holds the status', async () => (await scrape()).value('edgefleet_edge_outbox_entries') > 0);

    proxy.restore();
    const up = await waitFor('reconnected and drained', async () => {
      const s = await scrape();
      return s.value('edgefleet_edge_link_connected') === 1 && s.value('edgefleet_edge_outbox_entries') === 0 ? s : undefined;
    }, 30_000);
    expect(up.value('edgefleet_edge_link_connects_total')).toBe(2);
    expect(up.value('edgefleet_edge_link_down_seconds')).toBe(0);
  });
});
