import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import mqtt, { type MqttClient } from 'mqtt';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { api, Fleet, ROOT, type Cloud, type Edge } from '../helpers/fleet.js';
import { waitFor } from '../helpers/wait.js';
import { HAVE_CHROMIUM, launchChromium, prefillFleet, type PrefilledFleet } from './dashboardFixtures.js';

if (!HAVE_CHROMIUM) console.warn('[dashboard in a real browser] SKIPPED: /usr/bin/chromium is missing (apt-get install -y chromium)');

const SHOTS = join(ROOT, 'test-output', 'dashboard');
const FAKE_NODES = 998;

/**
 * Issue 6, the cloud dashboard in Debian's chromium: a real cloudcore process whose store holds
 * 998 nodes written before it started, plus two real edgecore processes (Ready, with a
 * workload and a device), so the fleet page shows 1,000 nodes. The device is played by an
 * MQTT client (the `mqtt` package) subscribed to its delta topic on the edge's broker.
 */
describe.skipIf(!HAVE_CHROMIUM)('cloud dashboard in a real browser', () => {
  const fleet = new Fleet();
  let cloud: Cloud;
  let edges: Edge[] = [];
  let prefilled: PrefilledFleet;
  let browser: Browser;
  let page: Page;
  let device: MqttClient | undefined;
  const deltas: Record<string, unknown>[] = [];
  const pageErrors: string[] = [];

  const shot = (name: string) => page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: true });
  const text = (selector: string) => page.locator(selector).first().innerText();
  const twin = async () => (await api(cloud).call<{ desired: Record<string, unknown>; version: { desired: number } }>('GET', '/devices/thermo-1/twin')).body;

  beforeAll(async () => {
    mkdirSync(SHOTS, { recursive: true });
    const dataDir = join(fleet.root, 'cloud');
    prefilled = await prefillFleet(dataDir, { nodes: FAKE_NODES });
    cloud = await fleet.startCloud({ dataDir });
    for (const node of ['edge-1', 'edge-2']) {
      edges.push(await fleet.startEdge({ node, cloudUrl: cloud.url, joinToken: await api(cloud).token(node), extra: ['--node-stats-seconds', '1'] }));
      expect((await api(cloud).call('PATCH', `/nodes/${node}`, { metadata: { labels: { zone: 'lab' } } })).status).toBe(200);
    }
    expect((await api(cloud).call('POST', '/apps', {
      metadata: { name: 'web' },
      spec: { selector: { matchLabels: { zone: 'lab' } }, template: { runtime: 'process', command: '/bin/sh', args: ['-c', 'echo "web started"; for i in $(seq 1 60); do echo "web line $i"; done; exec sleep 600'], restartPolicy: 'Always' } },
    })).status).toBe(201);
    expect((await api(cloud).call('POST', '/devicemodels', { metadata: { name: 'thermostat' }, spec: { protocol: 'virtual', properties: [
      { name: 'temperature', type: 'float', accessMode: 'ReadOnly', unit: 'C' },
      { name: 'target', type: 'float', accessMode: 'ReadWrite', minimum: 5, maximum: 30 },
    ] } })).status).toBe(201);
    const created = await api(cloud).call<{ credentials: { username: string; password: string } }>('POST', '/devices', {
      metadata: { name: 'thermo-1' }, spec: { model: 'thermostat', nodeName: 'edge-1', protocol: { name: 'virtual' }, desired: { target: 20 } },
    });
    expect(created.status).toBe(201);
    await waitFor('workloads Running on both edges', async () => {
      const statuses = await Promise.all(edges.map((e) => fleet.edgeStatus(e)));
      return statuses.every((s) => s.workloads.some((w) => w.status?.state === 'Running'));
    }, 30_000);
    await waitFor('thermo-1 on edge-1', async () => ((await fleet.edgeStatus(edges[0]!)) as unknown as { mqtt: { devices: unknown[] } }).mqtt.devices.length === 1);
    // The device: subscribed to its delta topic, reporting one temperature.
    const mqttUrl = String(edges[0]!.proc.lines.find((l) => l.msg === 'edgecore ready')!.mqttUrl);
    device = await mqtt.connectAsync(mqttUrl, { username: created.body.credentials.username, password: created.body.credentials.password, clientId: 'thermo-1-test', protocolVersion: 4, reconnectPeriod: 0 });
    device.on('message', (topic, payload) => { if (topic.endsWith('/twin/delta')) deltas.push(JSON.parse(payload.toString()) as Record<string, unknown>); });
    await device.subscribeAsync('ef/devices/thermo-1/twin/delta', { qos: 1 });
    await device.publishAsync('ef/devices/thermo-1/twin/reported', JSON.stringify({ properties: { temperature: 21.5, target: 20 } }), { qos: 1 });
    await device.publishAsync('ef/devices/thermo-1/telemetry', JSON.stringify({ samples: [{ values: { temperature: 20.5 } }, { values: { temperature: 20.75 } }, { values: { temperature: 21 } }] }), { qos: 1 });
    await waitFor('telemetry in the cloud', async () => ((await api(cloud).call<{ items: unknown[] }>('GET', '/devices/thermo-1/telemetry')).body.items.length === 3));

    browser = await launchChromium();
    page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
    page.on('pageerror', (err) => pageErrors.push(err.message));
    // A 404 the page expects (an app without a rollout) is logged by chromium as a failed resource: not an error of ours.
    page.on('console', (msg) => { if (msg.type() === 'error' && !msg.text().startsWith('Failed to load resource')) pageErrors.push(msg.text()); });
  }, 120_000);

  afterAll(async () => {
    await browser?.close().catch(() => undefined);
    await device?.endAsync().catch(() => undefined);
    await fleet.cleanup();
  });

  it('asks for the token, then shows 1,000 nodes with the counts by status', async () => {
    await page.goto(`${cloud.url}/ui/`);
    await page.getByLabel('Operator token').fill('not-the-token');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByText('That token was not accepted.').waitFor();
    await page.getByLabel('Operator token').fill(cloud.token);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.locator('[data-count="nodes"]').waitFor();
    expect(await text('[data-count="nodes"]')).toBe('1,000');
    expect(await text('[data-count="Ready"]')).toBe('2');
    expect(await text('[data-count="Offline"]')).toBe(prefilled.byPhase.Offline.toLocaleString('en'));
    expect(await text('[data-count="Pending"]')).toBe(prefilled.byPhase.Pending.toLocaleString('en'));
    expect(await page.locator('table.fleet tbody tr').count()).toBe(50);
    expect(await text('.pager')).toContain('Page 1 of 20');
    await shot('fleet');
    expect(pageErrors).toEqual([]);
  });

  it('filters by label and status, sorts by a column and pages on the server', async () => {
    await page.getByLabel('Label selector').fill('zone=north');
    await page.getByLabel('Status').selectOption('Offline');
    await page.getByRole('button', { name: 'Apply' }).click();
    const northOffline = prefilled.names.filter((_, i) => i % 4 === 0 && i % 5 !== 4).length;
    await waitFor('filtered count', async () => (await text('[data-count="matched"]')) === northOffline.toLocaleString('en'));
    expect(await page.locator('table.fleet tbody tr').count()).toBe(Math.min(50, northOffline));
    await page.getByRole('button', { name: 'Clear' }).click();
    await waitFor('unfiltered', async () => (await text('[data-count="matched"]')) === '1,000');
    await page.getByRole('button', { name: 'Node' }).click(); // already ascending by name: now descending
    await waitFor('descending by name', async () => (await page.locator('table.fleet tbody tr').first().getAttribute('data-node')) === 'site-998');
    expect(await page.locator('th[aria-sort="descending"]').innerText()).toContain('Node');
    await page.getByRole('button', { name: 'Next' }).click();
    await waitFor('second page', async () => (await text('.pager')).includes('Page 2 of 20'));
    expect(await page.locator('table.fleet tbody tr').first().getAttribute('data-node')).toBe('site-948');
    // Keyboard only: focus the name filter, type, Enter submits.
    await page.getByLabel('Name contains').focus();
    await page.keyboard.type('site-00');
    await page.keyboard.press('Enter');
    await waitFor('name filter', async () => (await text('[data-count="matched"]')) === '9');
  });

  it('updates a row live, without a reload, when a node is labelled through the API', async () => {
    await page.goto(`${cloud.url}/ui/#/?labelSelector=zone%3Dlab`);
    const row = page.locator('tr[data-node="edge-2"]');
    await row.waitFor();
    expect(await row.innerText()).toContain('Ready');
    expect(await row.locator('[data-col="workloads"]').innerText()).toContain('1 Running');
    await page.evaluate(() => { (window as unknown as { notReloaded: boolean }).notReloaded = true; });
    await waitFor('page is live', async () => (await text('.live-note')).includes('Live'));
    expect((await api(cloud).call('PATCH', '/nodes/edge-2', { metadata: { labels: { team: 'blue' } } })).status).toBe(200);
    await waitFor('label shown in the row', async () => (await row.innerText()).includes('team=blue'), 15_000);
    expect(await page.evaluate(() => (window as unknown as { notReloaded?: boolean }).notReloaded)).toBe(true);
    await shot('fleet-live');
  });

  it('opens a node: workloads with logs, the device twin, events and the resource chart', async () => {
    await page.getByRole('link', { name: 'edge-1', exact: true }).click();
    await page.getByRole('heading', { name: 'Node edge-1' }).waitFor();
    const workload = page.locator('tr[data-workload="web"]');
    await workload.waitFor();
    expect(await workload.locator('[data-col="state"]').innerText()).toBe('Running');
    await workload.getByRole('button', { name: /Show recent logs/ }).click();
    await waitFor('log lines', async () => (await workload.locator('pre.log').count()) > 0 && (await workload.locator('pre.log').innerText()).includes('web line 60'));
    expect(await workload.locator('pre.log').innerText()).toContain('web started');
    // A log opens at its newest line, like kubectl logs: scrolled to the bottom of its box.
    const scroll = await workload.locator('pre.log').evaluate((el) => ({ top: el.scrollTop, bottom: el.scrollHeight - el.clientHeight }));
    expect(scroll.bottom).toBeGreaterThan(0);
    expect(scroll.top).toBeGreaterThanOrEqual(scroll.bottom - 1);
    const twinRow = page.locator('table.twin[data-device="thermo-1"] tr[data-property="temperature"]');
    await waitFor('reported temperature in the twin', async () => (await twinRow.count()) > 0 && (await twinRow.locator('[data-col="reported"]').innerText()) === '21.5', 15_000);
    await waitFor('events listed', async () => (await page.locator('table.events').count()) > 0 && (await page.locator('table.events').innerText()).includes('Started'), 15_000);
    await waitFor('resource samples charted', async () => Number(await page.locator('.chart-canvas').getAttribute('data-points').catch(() => '0')) >= 2, 20_000);
    expect(await text('.chart-summary')).toMatch(/CPU [\d.]+ %, memory/);
    await shot('node');
    expect(pageErrors).toEqual([]);
  });

  it('shows the device twin and its telemetry chart, sets a desired value and the device receives it', async () => {
    await page.locator('table.twin[data-device="thermo-1"]').waitFor();
    await page.getByRole('link', { name: 'thermo-1', exact: true }).click();
    await page.getByRole('heading', { name: 'Device thermo-1' }).waitFor();
    const telemetry = page.locator('figure[aria-labelledby="telemetry-caption"]');
    await telemetry.locator('.chart-canvas[data-points="3"]').waitFor();
    expect(await telemetry.locator('.chart-summary').innerText()).toContain('temperature = 21');
    // Away from the cursor the legend shows the latest sample, not uPlot's "--" placeholders.
    await page.mouse.move(0, 0);
    const legend = await telemetry.locator('.u-legend').innerText();
    expect(legend).not.toContain('--');
    expect(legend).toMatch(/temperature\s*21\b/);
    // Three samples within a second: the time axis spans a minute, not years.
    expect(Number(await telemetry.locator('.chart-canvas').getAttribute('data-span-seconds'))).toBe(60);
    // The chart fills its figure, and follows when the window narrows.
    const widths = () => telemetry.evaluate((figure) => ({ figure: figure.clientWidth, plot: figure.querySelector('.uplot')!.getBoundingClientRect().width }));
    const fills = ({ figure, plot }: { figure: number; plot: number }) => plot <= figure && plot >= figure * 0.95;
    expect(fills(await widths())).toBe(true);
    await page.setViewportSize({ width: 900, height: 900 });
    await waitFor('chart follows the narrower window', async () => { const w = await widths(); return w.figure < 900 && fills(w); });
    await page.setViewportSize({ width: 1400, height: 900 });
    await waitFor('chart follows the wider window', async () => { const w = await widths(); return w.figure > 900 && fills(w); });
    await page.getByLabel('target', { exact: true }).fill('22.5');
    await page.getByRole('button', { name: 'Set desired values' }).click();
    await page.getByText(/Saved: desired version 2/).waitFor();
    await waitFor('delta reached the device over MQTT', () => deltas.some((d) => (d.properties as Record<string, unknown>)?.target === 22.5), 15_000);
    expect((await twin()).desired.target).toBe(22.5);
    await waitFor('twin table shows the pending delta', async () => (await page.locator('tr.delta[data-property="target"]').count()) === 1);
    await shot('device');
  });

  it('shows why a device behind a mapper is offline, as its mapper told the edge', async () => {
    expect((await api(cloud).call('POST', '/devices', { metadata: { name: 'meter-9' }, spec: { model: 'thermostat', nodeName: 'edge-2', protocol: { name: 'virtual' } } })).status).toBe(201);
    const edge2 = edges[1]!;
    const passwordFile = join(edge2.dataDir, 'mappers', 'virtual.password');
    await waitFor('the mapper credential on edge-2', () => existsSync(passwordFile));
    const mqttUrl = String(edge2.proc.lines.find((l) => l.msg === 'edgecore ready')!.mqttUrl);
    // Retried as a mapper retries a refused login (the file appears once the broker has the password).
    const mapper = await waitFor('the mapper login accepted', () => mqtt.connectAsync(mqttUrl, {
      username: 'mapper-virtual', password: readFileSync(passwordFile, 'utf8').trim(), clientId: 'mapper-virtual-edge-2', protocolVersion: 4, reconnectPeriod: 0,
    }).catch(() => undefined));
    try {
      await waitFor('meter-9 on edge-2', async () => ((await fleet.edgeStatus(edge2)) as unknown as { mqtt: { devices: { name: string }[] } }).mqtt.devices.some((d) => d.name === 'meter-9'));
      await mapper.publishAsync('ef/devices/meter-9/mapper/state', JSON.stringify({ reachable: false, error: 'connect: connect EHOSTUNREACH 10.0.0.7:502' }), { qos: 1 });
      await page.goto(`${cloud.url}/ui/#/devices/meter-9`);
      await page.locator('dd[data-col="online"]', { hasText: 'no (connect: connect EHOSTUNREACH 10.0.0.7:502)' }).waitFor({ timeout: 15_000 });
      // Came from thermo-1's page, where a value was typed and saved: none of that may show here,
      // or the next "Set desired values" would write thermo-1's input to meter-9.
      expect(await page.getByLabel('target', { exact: true }).inputValue()).toBe('');
      expect(await page.getByText(/Saved: desired version/).count()).toBe(0);
      await shot('device-offline-reason');
    } finally {
      await mapper.endAsync();
    }
  });

  it('shows bad input next to the field and stores nothing', async () => {
    const before = await twin();
    await page.getByLabel('target', { exact: true }).fill('99');
    await page.getByRole('button', { name: 'Set desired values' }).click();
    const fieldError = page.locator('[data-field="target"] .field-error');
    await waitFor('error from the API', async () => (await fieldError.innerText()).includes('≤ 30'));
    expect(await page.getByLabel('target', { exact: true }).getAttribute('aria-invalid')).toBe('true');
    await page.getByLabel('target', { exact: true }).fill('warm');
    await page.getByRole('button', { name: 'Set desired values' }).click();
    await waitFor('error from the form', async () => (await fieldError.innerText()).includes('must be a number'));
    await shot('device-error');
    const after = await twin();
    expect(after.desired).toEqual(before.desired);
    expect(after.version.desired).toBe(before.version.desired);
  });

  it('shows link quality: a reconnect of edge-2 is counted and its round trip is shown', async () => {
    await edges[1]!.proc.stop();
    edges[1] = await fleet.startEdge({ node: 'edge-2', cloudUrl: cloud.url, dataDir: edges[1]!.dataDir, extra: ['--node-stats-seconds', '1'] });
    await page.goto(`${cloud.url}/ui/#/?search=edge-2`);
    const link = page.locator('tr[data-node="edge-2"] td').last();
    await waitFor('reconnect and round trip in the row', async () => /RTT [\d.]+ ms · 1 reconnect\/h/.test(await link.innerText().catch(() => '')), 20_000);
    // The round trip rides the first heartbeat, which can land before the Ready write shows up.
    await waitFor('edge-2 Ready again in the row', async () => (await text('tr[data-node="edge-2"]').catch(() => '')).includes('Ready'), 20_000);
  });

  it('shows an app with its per-node state and rollout section', async () => {
    await page.goto(`${cloud.url}/ui/#/apps/web`);
    await page.getByRole('heading', { name: 'App web' }).waitFor();
    await page.locator('table.app-nodes tr[data-node="edge-1"]').waitFor();
    expect(await page.locator('table.app-nodes tbody tr').count()).toBe(2);
    // With the rollout controller: its phase and waves; without one the page says so.
    const rollout = await page.locator('[data-rollout]').first().getAttribute('data-rollout');
    if (rollout !== 'none') expect(await page.locator('table.waves tbody tr').count()).toBeGreaterThan(0);
    await shot('app');
    expect(pageErrors).toEqual([]);
  });

  it('after a rollback shows the rolled-back-to template and marks the revision left bad', async () => {
    const template = (args: string) => ({ runtime: 'process', command: '/bin/sh', args: ['-c', args], restartPolicy: 'Always' });
    const v2 = { metadata: { name: 'web' }, spec: { selector: { matchLabels: { zone: 'lab' } }, template: template('echo "web v2 started"; exec sleep 600') } };
    expect((await api(cloud).call('PUT', '/apps/web', v2)).status).toBe(200);
    const rollout = async () => (await api(cloud).call<{ status: { revision: number; observedRevision: number } }>('GET', '/apps/web/rollout')).body;
    await waitFor('the rollout of revision 2', async () => (await rollout().catch(() => undefined))?.status.observedRevision === 2);
    expect((await api(cloud).call('POST', '/apps/web/rollout/rollback', { toRevision: 1 })).status).toBe(200);
    await page.goto(`${cloud.url}/ui/#/apps/web`);
    await page.getByRole('heading', { name: 'App web' }).waitFor();
    await waitFor('revision 2 marked bad', async () => (await text('table.revisions tr[key="web.r2"], table.revisions tbody tr:first-child').catch(() => '')).includes('bad'), 20_000);
    // The app's template is revision 1's again (a kubectl user's `rollout undo`), not v2's.
    await waitFor('the v1 template shown', async () => {
      await page.reload();
      await page.getByRole('heading', { name: 'App web' }).waitFor();
      const runs = await text('dd code').catch(() => '');
      return runs.includes('web started') && !runs.includes('v2');
    }, 20_000);
    expect(pageErrors).toEqual([]);
  });
});
