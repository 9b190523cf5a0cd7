import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { api, Fleet, runToEnd, type Cloud, type Edge } from '../helpers/fleet.js';
import { connectArgs, killClients, mosquittoClientsAvailable, runClient } from '../helpers/devices/mosquittoClients.js';
import { watch, type Watch } from '../helpers/devices/mosquittoWatch.js';
import { TcpProxy } from '../helpers/tcpProxy.js';
import { sleep, waitFor } from '../helpers/wait.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const EXAMPLE = join(ROOT, 'docs', 'examples', 'edge-alerts.yaml');
const CUT_SECONDS = 60;

interface RoutedItem { node: string; seq: number; topic: string; payload: string }

/**
 * Issue 24, test 2: docs/edge-data.md's worked example, applied from its file with the real
 * edgectl, run by real cloudcore and edgecore: a workload reads a thermometer's telemetry on the
 * node and publishes an alert above 30 °C; a panel (a plain-MQTT device with a grant) sees the
 * alerts; a route sends them to the cloud. The cloud link is cut for 60 s: the alerts keep
 * coming on the node, and afterwards every one of them is in the cloud, in order, once each.
 * The thermometer and the panel are Debian's mosquitto_pub/mosquitto_sub.
 */
describe.skipIf(!mosquittoClientsAvailable)(`the edge alerts example, with a ${CUT_SECONDS} s link cut${mosquittoClientsAvailable ? '' : ' (skipped: mosquitto-clients not installed)'}`, () => {
  const fleet = new Fleet();
  let cloud: Cloud;
  let proxy: TcpProxy;
  let edge: Edge;
  let port: number;
  const passwords: Record<string, string> = {};
  let count = 0;

  /** One reading; every third is cool (no alert), the others hot. Returns its count. */
  async function report(): Promise<{ count: number; hot: boolean }> {
    const n = ++count;
    const hot = n % 3 !== 0;
    const payload = JSON.stringify({ values: { temperature: hot ? 35 : 20, count: n } });
    const sent = await runClient('mosquitto_pub', [...connectArgs(port, 'thermo-1', 'thermo-1', passwords['thermo-1']), '-q', '1', '-t', 'ef/devices/thermo-1/telemetry', '-m', payload]).done;
    expect(sent.code, sent.stderr).toBe(0);
    return { count: n, hot };
  }
  const countOf = (payload: string) => (JSON.parse(payload) as { values: { count: number } }).values.count;
  const alertCounts = (panel: Watch) => panel.messages().filter((m) => m.topic === 'apps/alerts/thermo-1').map((m) => countOf(m.payload));
  async function cloudAlerts(): Promise<RoutedItem[]> {
    const items: RoutedItem[] = [];
    for (let after = 0; ;) {
      const page = (await api(cloud).call<{ items: RoutedItem[]; next: number }>('GET', `/routes/alerts-up/messages?after=${after}&limit=1000`)).body;
      items.push(...page.items);
      if (page.items.length === 0) return items;
      after = page.next;
    }
  }

  beforeAll(async () => {
    cloud = await fleet.startCloud();
    proxy = new TcpProxy(cloud.port);
    edge = await fleet.startEdge({ node: 'edge-1', cloudUrl: await proxy.start(), joinToken: await api(cloud).token('edge-1') });
    port = Number(new URL(String(edge.proc.lines.find((l) => l.msg === 'edgecore ready')!.mqttUrl)).port);
    const applied = await runToEnd('edgectl', ['apply', '-f', EXAMPLE], { EF_SERVER: cloud.url, EF_TOKEN: cloud.token });
    expect(applied.code, applied.err).toBe(0);
    expect(applied.out).toMatch(/app\/alerter created/);
    expect(applied.out).toMatch(/route\/alerts-up created/);
    for (const [, device, password] of applied.out.matchAll(/username: (\S+)\s+password: (\S+)/g)) passwords[device!] = password!;
    expect(Object.keys(passwords).sort()).toEqual(['panel-1', 'thermo-1']);
    await waitFor('the alerter running', () => fleet.runningWorkload(edge, 'alerter'), 30_000);
    await waitFor('the route running', async () => edge.proc.lines.some((l) => l.msg === 'route running' && l.route === 'alerts-up'), 30_000);
  }, 120_000);
  afterAll(async () => {
    await killClients();
    await fleet.cleanup();
    await proxy?.close();
  });

  it('alerts on the node with the cloud gone, and the cloud gets every alert afterwards, in order, once', async () => {
    const panel = watch(connectArgs(port, 'panel-1', 'panel-1', passwords['panel-1']), ['apps/alerts/#'], ['-q', '1']);
    expect(await panel.subscribed()).toEqual([1]);
    // The alerter's own subscription has no visible moment of readiness: report until it alerts.
    const first = await waitFor('a first alert on the panel', async () => {
      await report();
      await sleep(300);
      return alertCounts(panel)[0];
    }, 30_000, 50);

    proxy.cut();
    await waitFor('the edge sees the link down', async () => (await fleet.edgeStatus(edge)).link.state !== 'connected');
    const cutAt = Date.now();
    const hotDuringCut: number[] = [];
    while (Date.now() - cutAt < CUT_SECONDS * 1000) {
      const r = await report();
      if (r.hot) hotDuringCut.push(r.count);
      await sleep(1_000);
    }
    // Every hot reading of the cut raised its alert on the node, while the cloud was unreachable.
    await waitFor('the alerts of the cut on the panel', () => hotDuringCut.every((c) => alertCounts(panel).includes(c)), 30_000);
    expect((await fleet.edgeStatus(edge)).link.state).not.toBe('connected');
    expect(hotDuringCut.length).toBeGreaterThan(30);
    proxy.restore();

    // Every hot reading from the first alert on, exactly once and in order: the alerts of the cut
    // were kept on the node and sent after the link came back.
    const hotFromFirst = Array.from({ length: count - first + 1 }, (_, i) => first + i).filter((c) => c % 3 !== 0);
    const all = await waitFor('every alert in the cloud', async () => {
      const items = await cloudAlerts();
      return items.length >= hotFromFirst.length ? items : undefined;
    }, 60_000);
    expect(all.map((m) => countOf(m.payload))).toEqual(hotFromFirst);
    expect(new Set(all.map((m) => m.seq)).size).toBe(all.length);
    expect(all.every((m) => m.node === 'edge-1' && m.topic === 'apps/alerts/thermo-1')).toBe(true);
    // On the node too, once each and in order (QoS 1 to a connected panel).
    expect(alertCounts(panel)).toEqual(hotFromFirst);
    await panel.stop();
  }, (CUT_SECONDS + 120) * 1000);
});
