import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { EdgeStatusSchema, NodeAppGrantsSchema, RouteSchema } from '../../protocol/index.js';
import { connectArgs, killClients, mosquittoClientsAvailable, runClient } from '../helpers/devices/mosquittoClients.js';
import { api, Fleet, ROOT, runToEnd, type Cloud, type Edge } from '../helpers/fleet.js';
import { waitFor } from '../helpers/wait.js';
import { HAVE_CHROMIUM, launchChromium } from './dashboardFixtures.js';

const SHOTS = join(ROOT, 'test-output', 'data-flows');
if (!HAVE_CHROMIUM) console.warn('[app grants and routes where an operator looks] browser tests SKIPPED: /usr/bin/chromium is missing (apt-get install -y chromium)');
if (!mosquittoClientsAvailable) console.warn('[app grants and routes where an operator looks] SKIPPED: Debian\'s mosquitto_pub/mosquitto_sub are not installed');

/**
 * Issue 24, "edgectl and the dashboard show each node's routes, app grants and their message/drop
 * counters; edgectl local status and the edge page too". Real cloudcore and edgecore; a workload
 * with a grant whose credential is used by Debian's mosquitto_pub/mosquitto_sub (published,
 * refused, delivered); a cloud route that forwards and an MQTT route to a closed port that queues
 * and shows its error. The counters are read where an operator reads them: the edge's /status,
 * `edgectl local status`, GET /nodes/{n}/grants and `edgectl get node` (the routeStatus frame
 * carried them), then the edge page and the dashboard in Debian's chromium.
 */
describe.skipIf(!mosquittoClientsAvailable)('app grants and routes where an operator looks', () => {
  const fleet = new Fleet();
  let cloud: Cloud;
  let edge: Edge;
  let port = 0;
  let browser: Browser | undefined;
  let page: Page | undefined;
  const pageErrors: string[] = [];

  const appLogin = (clientId: string) => connectArgs(port, clientId, 'app-alerter', readFileSync(join(edge.dataDir, 'apps', 'alerter.password'), 'utf8').trim());
  const edgeStatus = async () => EdgeStatusSchema.parse(await (await fetch(`${edge.statusUrl}/status`)).json());
  const edgectl = (args: string[]) => runToEnd('edgectl', args, { EF_SERVER: cloud.url, EF_TOKEN: cloud.token });

  beforeAll(async () => {
    mkdirSync(SHOTS, { recursive: true });
    cloud = await fleet.startCloud();
    edge = await fleet.startEdge({ node: 'edge-1', cloudUrl: cloud.url, joinToken: await api(cloud).token('edge-1') });
    port = Number(new URL(String(edge.proc.lines.find((l) => l.msg === 'edgecore ready')!.mqttUrl)).port);
    expect((await api(cloud).call('POST', '/apps', { kind: 'App', metadata: { name: 'alerter' }, spec: { template: {
      runtime: 'process', command: '/bin/sleep', args: ['600'], mqtt: { publish: ['apps/alerts/#'], subscribe: ['apps/cmd/#'] },
    } } })).status).toBe(201);
    expect((await api(cloud).call('POST', '/routes', { metadata: { name: 'alerts-up' }, spec: { source: { topics: ['apps/alerts/#'] }, destination: { type: 'cloud' } } })).status).toBe(201);
    // Nothing listens on the discard port of loopback: the route queues and says why.
    expect((await api(cloud).call('POST', '/routes', { metadata: { name: 'to-nowhere' }, spec: {
      source: { topics: ['apps/alerts/#'] }, destination: { type: 'mqtt', url: 'mqtt://127.0.0.1:9', allowPlaintext: true },
    } })).status).toBe(201);
    await waitFor('alerter running with its grant, both routes running', async () => {
      const s = await edgeStatus();
      return s.mqtt?.appGrants?.some((g) => g.workload === 'alerter') === true && (s.routes?.length ?? 0) === 2
        && s.workloads.some((w) => w.name === 'alerter' && w.status?.state === 'Running');
    }, 30_000);
  }, 90_000);
  afterEach(async () => { await killClients(); });
  afterAll(async () => {
    await browser?.close().catch(() => undefined);
    await killClients();
    await fleet.cleanup();
  });

  it('the app\'s traffic is counted on the edge: /status and edgectl local status', async () => {
    for (let i = 1; i <= 3; i++) {
      expect((await runClient('mosquitto_pub', [...appLogin('app-alerter-pub'), '-q', '1', '-t', 'apps/alerts/tank', '-m', `{"level":${i}}`]).done).code).toBe(0);
    }
    // Outside its grant: refused (the broker may also drop the connection, so the exit code is not the point).
    await runClient('mosquitto_pub', [...appLogin('app-alerter-bad'), '-q', '1', '-t', 'apps/other/x', '-m', 'no']).done;
    // A retained command from the operator, then the app reads it: one delivery.
    expect((await api(cloud).call('POST', '/nodes/edge-1/publish', { topic: 'apps/cmd/fan', payload: '{"speed":3}', retain: true })).status).toBe(200);
    const got = await runClient('mosquitto_sub', [...appLogin('app-alerter-sub'), '-q', '1', '-t', 'apps/cmd/#', '-C', '1', '-W', '20']).done;
    expect(got.stdout.trim()).toBe('{"speed":3}');

    const s = await waitFor('counters on /status', async () => {
      const now = await edgeStatus();
      const up = now.routes?.find((r) => r.route === 'alerts-up');
      const grant = now.mqtt?.appGrants?.find((g) => g.workload === 'alerter');
      return up?.forwarded === 3 && (grant?.refused ?? 0) >= 1 && (grant?.delivered ?? 0) >= 1 ? now : undefined;
    }, 30_000);
    expect(s.mqtt!.appGrants!.find((g) => g.workload === 'alerter')).toMatchObject({ username: 'app-alerter', publish: ['apps/alerts/#'], subscribe: ['apps/cmd/#'], published: 3 });
    const nowhere = await waitFor('the unreachable route queues with its error', async () => {
      const r = (await edgeStatus()).routes?.find((x) => x.route === 'to-nowhere');
      return r && r.queueDepth === 3 && r.lastError ? r : undefined;
    }, 30_000);
    expect(nowhere.connected).toBe(false);

    const local = await runToEnd('edgectl', ['local', 'status', '--url', edge.statusUrl]);
    expect(local.err).toBe('');
    expect(local.out).toMatch(/APP GRANTS \(1\)\nWORKLOAD\s+USERNAME\s+PUBLISH\s+SUBSCRIBE\s+PUBLISHED\s+DELIVERED\s+REFUSED\n/);
    expect(local.out).toMatch(/alerter\s+app-alerter\s+apps\/alerts\/#\s+apps\/cmd\/#\s+3\s+[1-9]\d*\s+[1-9]\d*\n/);
    expect(local.out).toMatch(/ROUTES \(2\)\n/);
    expect(local.out).toMatch(/alerts-up\s+cloud\s+yes\s+3\s+3\s+0\s+0\/0/);
  });

  it('the counters reach the cloud: GET /nodes/{n}/grants, GET /routes and edgectl get node', async () => {
    const grants = await waitFor('app grants in the cloud', async () => {
      const answer = await api(cloud).call('GET', '/nodes/edge-1/grants');
      expect(answer.status).toBe(200);
      const parsed = NodeAppGrantsSchema.parse(answer.body);
      const alerter = parsed.items.find((g) => g.workload === 'alerter');
      return alerter?.published === 3 && alerter.refused >= 1 && alerter.delivered >= 1 ? parsed : undefined;
    }, 30_000);
    expect(grants).toMatchObject({ node: 'edge-1', omitted: 0 });
    expect(grants.observedAt).not.toBeNull();
    expect((await api(cloud).call('GET', '/nodes/nope/grants')).status).toBe(404);
    await waitFor('route counters in the cloud', async () => {
      const route = RouteSchema.parse((await api(cloud).call('GET', '/routes/to-nowhere')).body);
      return route.status?.nodes[0]?.queueDepth === 3;
    }, 30_000);

    const shown = await edgectl(['get', 'node', 'edge-1']);
    expect(shown.err).toBe('');
    expect(shown.out).toMatch(/APP GRANTS \(1; counters since the node's edgecore started, last report \d+[sm] ago\)\n/);
    expect(shown.out).toMatch(/alerter\s+app-alerter\s+apps\/alerts\/#\s+apps\/cmd\/#\s+3\s+[1-9]\d*\s+[1-9]\d*\n/);
    expect(shown.out).toMatch(/ROUTES \(2\)\n/);
    expect(shown.out).toMatch(/alerts-up\s+cloud\s+yes\s+3\s+3\s+0\s+0\/0/);
    expect(shown.out).toMatch(/to-nowhere\s+mqtt\s+no\s+3\s+0\s+3\s+0\/0\s+\S/);
  });

  it.skipIf(!HAVE_CHROMIUM)('the edge page shows App grants and Routes with their counters', async () => {
    browser = await launchChromium();
    page = await browser.newPage({ viewport: { width: 1300, height: 1000 } });
    page.on('pageerror', (err) => pageErrors.push(err.message));
    page.on('console', (msg) => { if (msg.type() === 'error' && !msg.text().startsWith('Failed to load resource')) pageErrors.push(msg.text()); });
    await page.goto(edge.statusUrl);
    const grant = page.locator('tr[data-grant="alerter"]');
    await grant.locator('td.published', { hasText: /^3$/ }).waitFor({ timeout: 15_000 });
    expect(await page.getByRole('heading', { name: 'App grants (1)' }).isVisible()).toBe(true);
    expect(await grant.locator('td').nth(0).textContent()).toBe('app-alerter');
    expect(await grant.locator('td').nth(1).textContent()).toBe('apps/alerts/#');
    expect(await grant.locator('td').nth(2).textContent()).toBe('apps/cmd/#');
    expect(Number(await grant.locator('td.delivered').textContent())).toBeGreaterThanOrEqual(1);
    expect(Number(await grant.locator('td.refused').textContent())).toBeGreaterThanOrEqual(1);

    expect(await page.getByRole('heading', { name: 'Routes (2)' }).isVisible()).toBe(true);
    const up = page.locator('tr[data-route="alerts-up"]');
    expect(await up.locator('td.reachable').textContent()).toBe('yes');
    expect(await up.locator('td.forwarded').textContent()).toBe('3');
    expect(await up.locator('td.dropped').textContent()).toBe('0 / 0');
    const nowhere = page.locator('tr[data-route="to-nowhere"]');
    expect(await nowhere.locator('td.reachable').textContent()).toBe('no');
    expect(await nowhere.locator('td.queued').textContent()).toMatch(/^3 \(\d+ B\)$/);
    expect(await nowhere.locator('td').last().textContent()).not.toBe('—');
    await page.screenshot({ path: join(SHOTS, 'edge-page-grants-routes.png'), fullPage: true });
    expect(pageErrors).toEqual([]);
  });

  it.skipIf(!HAVE_CHROMIUM)('the dashboard shows a Routes view with per-node counters, and the node\'s grants and routes', async () => {
    page ??= await (browser ??= await launchChromium()).newPage({ viewport: { width: 1300, height: 1000 } });
    await page.goto(`${cloud.url}/ui/`);
    await page.getByLabel('Operator token').fill(cloud.token);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('link', { name: 'Routes' }).click();
    await page.getByRole('heading', { name: 'Routes', level: 1 }).waitFor();
    const up = page.locator('[data-route="alerts-up"] tr[data-row="edge-1"]');
    await up.locator('td[data-col="forwarded"]', { hasText: /^3$/ }).waitFor({ timeout: 15_000 });
    expect(await up.locator('td[data-col="reachable"]').textContent()).toBe('yes');
    expect(await page.locator('[data-route="alerts-up"] [data-col="destination"]').textContent()).toBe('cloud');
    expect(await page.locator('[data-route="alerts-up"] [data-col="source"]').textContent()).toBe('apps/alerts/#');
    const nowhere = page.locator('[data-route="to-nowhere"] tr[data-row="edge-1"]');
    expect(await nowhere.locator('td[data-col="reachable"]').textContent()).toBe('no');
    expect(await nowhere.locator('td[data-col="queued"]').textContent()).toMatch(/^3 \(/);
    expect(await nowhere.locator('td[data-col="error"]').textContent()).not.toBe('');
    await page.screenshot({ path: join(SHOTS, 'dashboard-routes.png'), fullPage: true });

    await page.locator('[data-route="alerts-up"] tr[data-row="edge-1"] a', { hasText: 'edge-1' }).click();
    await page.getByRole('heading', { name: 'Node edge-1' }).waitFor();
    const grant = page.locator('table.app-grants tr[data-grant="alerter"]');
    await grant.waitFor({ timeout: 15_000 });
    expect(await grant.locator('td[data-col="published"]').textContent()).toBe('3');
    expect(Number(await grant.locator('td[data-col="refused"]').textContent())).toBeGreaterThanOrEqual(1);
    expect(await page.locator('table.route-counters tr[data-row="alerts-up"] td[data-col="forwarded"]').textContent()).toBe('3');
    expect(await page.locator('table.route-counters tr[data-row="to-nowhere"] td[data-col="reachable"]').textContent()).toBe('no');
    await page.screenshot({ path: join(SHOTS, 'dashboard-node-grants-routes.png'), fullPage: true });
    expect(pageErrors).toEqual([]);
  });
});
