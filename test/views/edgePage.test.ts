import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { connectAsync, type MqttClient } from 'mqtt';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { api, Fleet, ROOT, type Cloud, type Edge } from '../helpers/fleet.js';
import { TcpProxy } from '../helpers/tcpProxy.js';
import { waitFor } from '../helpers/wait.js';

const CHROMIUM = '/usr/bin/chromium';
const HAVE_CHROMIUM = existsSync(CHROMIUM);
if (!HAVE_CHROMIUM) console.warn(`[edge status page in a browser] SKIPPED: ${CHROMIUM} not found (apt-get install -y chromium)`);
const SHOTS = join(ROOT, 'test-output');

/**
 * The edge status page in a real browser (Debian's chromium via playwright-core): real
 * cloudcore, real edgecore with a process workload and an MQTT device; then the cloud link is
 * cut and the page must show the outage, for how long, and still list everything.
 */
describe.skipIf(!HAVE_CHROMIUM)('edge status page in a browser', () => {
  const fleet = new Fleet();
  let cloud: Cloud;
  let proxy: TcpProxy;
  let edge: Edge;
  let browser: Browser;
  let page: Page;
  let device: MqttClient | undefined;
  let retry: MqttClient | undefined;
  let devicePassword = '';
  let mqttPort = 0;
  const browserErrors: string[] = [];

  beforeAll(async () => {
    mkdirSync(SHOTS, { recursive: true });
    cloud = await fleet.startCloud();
    proxy = new TcpProxy(cloud.port);
    edge = await fleet.startEdge({ node: 'edge-page', cloudUrl: await proxy.start(), joinToken: await api(cloud).token('edge-page') });
    expect((await api(cloud).call('POST', '/apps', {
      kind: 'App', metadata: { name: 'pager' },
      spec: { selector: {}, template: { runtime: 'process', command: '/bin/sh', args: ['-c', 'echo "pager says hello"; echo "pager is ready"; exec sleep 600'], restartPolicy: 'Always' } },
    })).status).toBe(201);
    expect((await api(cloud).call('POST', '/devicemodels', { metadata: { name: 'gauge' }, spec: { protocol: 'virtual', properties: [{ name: 'level', type: 'float', accessMode: 'ReadOnly' }] } })).status).toBe(201);
    const created = await api(cloud).call<{ credentials: { password: string } }>('POST', '/devices', { metadata: { name: 'tank-1' }, spec: { model: 'gauge', nodeName: 'edge-page', protocol: { name: 'virtual' } } });
    expect(created.status).toBe(201);
    await waitFor('pager running and tank-1 known', async () => {
      const s = await fleet.edgeStatus(edge);
      return s.workloads.find((w) => w.name === 'pager')?.status?.state === 'Running' && ((s as unknown as { mqtt: { devices: unknown[] } | null }).mqtt?.devices.length ?? 0) === 1;
    });
    devicePassword = created.body.credentials.password;
    mqttPort = Number(new URL(String(edge.proc.lines.find((l) => l.msg === 'edgecore ready')!.mqttUrl)).port);
    device = await connectAsync(`mqtt://127.0.0.1:${mqttPort}`, { username: 'tank-1', password: devicePassword, clientId: 'tank-1', protocolVersion: 4, reconnectPeriod: 0 });
    await device.publishAsync('ef/devices/tank-1/twin/reported', JSON.stringify({ properties: { level: 42.5 } }), { qos: 1 });

    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'] });
    page = await browser.newPage({ viewport: { width: 1200, height: 1000 } });
    page.on('console', (m) => { if (m.type() === 'error') browserErrors.push(m.text()); });
    page.on('pageerror', (e) => browserErrors.push(e.message));
  });
  afterAll(async () => {
    await browser?.close();
    await device?.endAsync().catch(() => undefined);
    await retry?.endAsync().catch(() => undefined);
    await fleet.cleanup();
    await proxy.close();
  });

  it('shows the node, the live link, workloads with their logs, devices with values, disk and memory', async () => {
    await page.goto(edge.statusUrl);
    await page.locator('#link-summary[data-state="connected"]').waitFor({ timeout: 15_000 });
    expect(await page.locator('#link-summary').textContent()).toMatch(/^Connected to the cloud for \d+s$/);
    expect(await page.locator('#node-name').textContent()).toBe('edge-page');
    expect(await page.locator('#edgecore-version').textContent()).toBe('0.1.0');
    expect(await page.title()).toBe('edge-page · connected · edgecore');
    // Beside "Connected for …": when this connection was established, not the time of the last poll.
    const { connectedSince } = (await fleet.edgeStatus(edge)).link as unknown as { connectedSince: string };
    expect(await page.locator('#link-last-connected-label').textContent()).toBe('Connected since');
    expect(await page.locator('#link-last-connected').textContent()).toBe(await page.evaluate((t) => new Date(t).toLocaleString(), connectedSince));

    const pager = page.locator('tr[data-workload="pager"]');
    await pager.waitFor();
    expect(await pager.locator('td.state').getAttribute('data-state')).toBe('Running');
    await page.locator('tr[data-workload="pager"] pre', { hasText: 'pager is ready' }).waitFor();
    expect(await pager.locator('pre').textContent()).toBe('pager says hello\npager is ready');
    await page.getByRole('heading', { name: 'Workloads (1)' }).waitFor();

    const tank = page.locator('tr[data-device="tank-1"]');
    await page.locator('tr[data-device="tank-1"] td.values', { hasText: 'level = 42.5' }).waitFor();
    expect(await tank.locator('td').first().textContent()).toBe('online');
    expect(await page.locator('#mqtt-commit-failures').isHidden()).toBe(true);

    expect(await page.locator('#host-disk').textContent()).toMatch(/free of .* \(.+\)/);
    expect(await page.locator('#host-memory').textContent()).toMatch(/ of /);
    await page.screenshot({ path: join(SHOTS, 'edge-page-connected.png'), fullPage: true });
  });

  it('with the cloud link cut it shows the outage and for how long, and still lists workloads and devices', async () => {
    proxy.cut();
    const summary = page.locator('#link-summary');
    await page.locator('#link-summary.bad, #link-summary.warn').waitFor({ timeout: 15_000 });
    // "for how long" ticks: wait until it has been down a few seconds.
    await waitFor('outage of 3 s shown', async () => {
      const text = (await summary.textContent()) ?? '';
      const m = /^Cloud link DOWN \((connecting|disconnected)\) for (\d+)s$/.exec(text);
      return m && Number(m[2]) >= 3 ? text : undefined;
    }, 20_000);
    expect(await page.title()).toBe('edge-page · cloud link down · edgecore');
    expect(await page.locator('#link-down-since').textContent()).not.toBe('— (up)');
    expect(await page.locator('#link-last-connected').textContent()).not.toMatch(/never/);
    expect(await page.locator('#link-last-connected-label').textContent()).toBe('Last connected');

    // Autonomy, as the page shows it: the workload still runs, the device still reports.
    expect(await page.locator('tr[data-workload="pager"] td.state').getAttribute('data-state')).toBe('Running');
    await device!.publishAsync('ef/devices/tank-1/twin/reported', JSON.stringify({ properties: { level: 17 } }), { qos: 1 });
    await page.locator('tr[data-device="tank-1"] td.values', { hasText: 'level = 17' }).waitFor({ timeout: 15_000 });
    // The device report waits for the cloud in the outbox.
    await waitFor('queued items shown', async () => Number(await page.locator('#outbox-depth').textContent()) > 0);
    expect(await page.locator('#page-error').isHidden()).toBe(true);
    await page.screenshot({ path: join(SHOTS, 'edge-page-cloud-down.png'), fullPage: true });

    proxy.restore();
    await page.locator('#link-summary[data-state="connected"]').waitFor({ timeout: 30_000 });
    await waitFor('outbox drained on the page', async () => (await page.locator('#outbox-depth').textContent()) === '0');
    expect(browserErrors).toEqual([]);
  });

  it('when device commits fail (a failing disk) it says so next to the broker, and later reports are taken again', async () => {
    // Another connection to the edge's database makes every twin write fail, as a full or failing disk would.
    const saboteur = new Database(join(edge.dataDir, 'edge.db'));
    try {
      for (const op of ['INSERT', 'UPDATE']) {
        saboteur.exec(`CREATE TRIGGER page_test_no_twin_${op.toLowerCase()} BEFORE ${op} ON device_twins BEGIN SELECT RAISE(ABORT, 'injected write failure'); END`);
      }
      let acked = false;
      const closed = new Promise<void>((resolve) => device!.once('close', () => resolve()));
      device!.publish('ef/devices/tank-1/twin/reported', JSON.stringify({ properties: { level: 99 } }), { qos: 1 }, (err) => { if (!err) acked = true; });
      await closed; // no PUBACK: the hub refused the report after its commit failed, aedes closed the connection
      expect(acked).toBe(false);
      // Closed by the broker (no reconnect): end it here; endAsync() on it in afterAll would never settle.
      device!.end(true);
      device = undefined;
      const notice = page.locator('#mqtt-commit-failures');
      await notice.waitFor({ state: 'visible', timeout: 15_000 });
      expect(await notice.textContent()).toMatch(/^\d+ device commits? failed since edgecore started: device reports were not acknowledged and will be resent\. Check the disk\.$/);
      expect(await page.locator('tr[data-device="tank-1"] td.values').textContent()).toBe('level = 17');
      await page.screenshot({ path: join(SHOTS, 'edge-page-commit-failures.png'), fullPage: true });
    } finally {
      saboteur.exec('DROP TRIGGER IF EXISTS page_test_no_twin_insert; DROP TRIGGER IF EXISTS page_test_no_twin_update');
      saboteur.close();
    }
    // The disk is back: the resent report is taken and shown; the notice counts since start, so it stays.
    retry = await connectAsync(`mqtt://127.0.0.1:${mqttPort}`, { username: 'tank-1', password: devicePassword, clientId: 'tank-1', protocolVersion: 4, reconnectPeriod: 0 });
    await retry.publishAsync('ef/devices/tank-1/twin/reported', JSON.stringify({ properties: { level: 99 } }), { qos: 1 });
    await page.locator('tr[data-device="tank-1"] td.values', { hasText: 'level = 99' }).waitFor({ timeout: 15_000 });
    expect(await page.locator('#mqtt-commit-failures').isVisible()).toBe(true);
    expect(browserErrors).toEqual([]);
  });

  it('when a stored broker message cannot be read, it is dropped and the page says so', async () => {
    expect(await page.locator('#mqtt-unreadable').isHidden()).toBe(true);
    // A torn write or a hand edit, while edgecore runs: the device's retained status no longer parses.
    const editor = new Database(join(edge.dataDir, 'edge.db'));
    try {
      editor.prepare("UPDATE mqtt_retained SET packet = '{torn' WHERE topic = 'ef/devices/tank-1/status'").run();
    } finally {
      editor.close();
    }
    // Subscribing makes the broker read it back.
    await retry!.subscribeAsync('ef/devices/tank-1/status', { qos: 1 });
    const notice = page.locator('#mqtt-unreadable');
    await notice.waitFor({ state: 'visible', timeout: 15_000 });
    expect(await notice.textContent()).toBe('1 stored broker message could not be read back and was dropped since edgecore started (the log names them).');
    expect(edge.proc.exitCode).toBeUndefined();
    await page.screenshot({ path: join(SHOTS, 'edge-page-unreadable.png'), fullPage: true });
    expect(browserErrors).toEqual([]);
  });

  it('a device behind a mapper shows why the mapper cannot reach it, and online once it can', async () => {
    await retry!.endAsync();
    retry = undefined;
    const state = page.locator('tr[data-device="tank-1"] td.state');
    await state.filter({ hasText: /^offline$/ }).waitFor({ timeout: 15_000 });
    // The node's mapper credential for the device's protocol, as a mapper workload would read it.
    const password = readFileSync(join(edge.dataDir, 'mappers', 'virtual.password'), 'utf8').trim();
    const mapper = await connectAsync(`mqtt://127.0.0.1:${mqttPort}`, { username: 'mapper-virtual', password, clientId: 'mapper-virtual-edge-page', protocolVersion: 4, reconnectPeriod: 0 });
    try {
      await mapper.publishAsync('ef/devices/tank-1/mapper/state', JSON.stringify({ reachable: false, error: 'connect: connect ECONNREFUSED 10.1.2.3:502' }), { qos: 1 });
      await state.filter({ hasText: 'offline: connect: connect ECONNREFUSED 10.1.2.3:502' }).waitFor({ timeout: 15_000 });
      await page.screenshot({ path: join(SHOTS, 'edge-page-mapper-error.png'), fullPage: true });
      await mapper.publishAsync('ef/devices/tank-1/mapper/state', JSON.stringify({ reachable: true }), { qos: 1 });
      await state.filter({ hasText: /^online$/ }).waitFor({ timeout: 15_000 });
    } finally {
      await mapper.endAsync();
    }
    await state.filter({ hasText: /^offline$/ }).waitFor({ timeout: 15_000 });
    expect(browserErrors).toEqual([]);
  });
});
