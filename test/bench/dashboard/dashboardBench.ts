import { mkdtempSync, rmSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { Command } from 'commander';
import type { Browser, Page } from 'playwright-core';
import { z } from 'zod';
import { startCloudcoreChild, type CloudcoreChild } from '../cloudcoreProcess.js';
import { summarizeLatencies, type LatencySummary } from '../figures.js';
import { parseBenchOptions, runGuarded } from '../harness.js';
import { HAVE_CHROMIUM, launchChromium, prefillFleet } from '../../views/dashboardFixtures.js';

/**
 * `npm run bench:dashboard -- --nodes 10000`: how fast the dashboard's fleet page is with a
 * large fleet. A cloudcore child process starts on a store prefilled with N nodes, one
 * workload each and two devices on every fifth node; Debian's chromium (playwright-core)
 * then loads the fleet page several times and sorts, filters and pages it. Also times
 * `GET /api/v1/fleet` on its own. Results: a summary, then one JSON line (docs/benchmarks.md).
 */

const OptionsSchema = z.object({
  nodes: z.coerce.number().int().min(1).max(100_000),
  runs: z.coerce.number().int().min(1).max(100),
  apiRequests: z.coerce.number().int().min(1).max(10_000),
  timeoutSeconds: z.coerce.number().min(30).max(86_400),
});
type Options = z.infer<typeof OptionsSchema>;

const log = (line: string) => process.stderr.write(`[dashboard ${new Date().toISOString().slice(11, 19)}] ${line}\n`);

function parseOptions(argv: string[]): Options {
  const program = new Command('dashboard')
    .description('EdgeFleet dashboard benchmark: fleet page load, sort, filter and paging with N nodes in a real browser')
    .option('--nodes <n>', 'nodes in the fleet', '10000')
    .option('--runs <n>', 'page loads to time (the first one is cold)', '5')
    .option('--api-requests <n>', 'GET /fleet requests to time per query', '20')
    .option('--timeout-seconds <n>', 'abort the whole run after this long', '900');
  return parseBenchOptions('dashboard bench', program, OptionsSchema, argv);
}

interface ApiTiming { query: string; bytes: number; ms: LatencySummary }

interface Report {
  nodes: number;
  workloads: number;
  devices: number;
  machine: { cpus: number; loadAvg1mStart: number; loadAvg1mEnd: number; node: string };
  prefillMs: number;
  api: { firstRequestMs: number; queries: ApiTiming[] };
  page: {
    /** Navigation start → sign-in done → 50 rows and the header counts on screen. */
    coldLoadMs: number;
    warmLoadMs: LatencySummary;
    sortMs: LatencySummary;
    filterMs: LatencySummary;
    nextPageMs: LatencySummary;
    rowsShown: number;
    jsHeapUsedMiB: number;
  };
}

const API_QUERIES = [
  'limit=50',
  'limit=50&sort=lastSeen&order=desc',
  'limit=50&sort=notRunning&order=desc',
  'limit=50&labelSelector=zone%3Dnorth,tier%3Dgateway',
  'limit=50&status=Offline&sort=version',
  'limit=200&offset=5000',
];

async function timeApi(cloud: CloudcoreChild, requests: number): Promise<Report['api']> {
  const get = async (q: string) => {
    const t0 = performance.now();
    const res = await fetch(`${cloud.url}/api/v1/fleet?${q}`, { headers: { authorization: `Bearer ${cloud.adminToken}` } });
    const body = await res.text();
    if (!res.ok) throw new Error(`GET /fleet?${q}: HTTP ${res.status} ${body}`);
    return { ms: performance.now() - t0, bytes: Buffer.byteLength(body) };
  };
  // The first request builds the fleet index from the store.
  const firstRequestMs = (await get('limit=50')).ms;
  const queries: ApiTiming[] = [];
  for (const q of API_QUERIES) {
    const times: number[] = [];
    let bytes = 0;
    for (let i = 0; i < requests; i++) {
      const r = await get(q);
      times.push(r.ms);
      bytes = r.bytes;
    }
    queries.push({ query: q, bytes, ms: summarizeLatencies(times) });
  }
  return { firstRequestMs, queries };
}

/** Time from `action` until `done` holds in the page (polled by the browser itself, every frame). */
async function timed(page: Page, action: () => Promise<unknown>, done: string, arg: unknown, timeoutMs = 60_000): Promise<number> {
  const t0 = performance.now();
  await action();
  await page.waitForFunction(done, arg, { timeout: timeoutMs, polling: 'raf' });
  return performance.now() - t0;
}

const ROWS_AND_COUNT = `(n) => document.querySelectorAll('table.fleet tbody tr').length === 50
  && document.querySelector('[data-count="nodes"]')?.textContent === n`;
const FIRST_ROW_IS_NOT = `(name) => { const r = document.querySelector('table.fleet tbody tr'); return r && r.getAttribute('data-node') !== name; }`;

async function timePage(browser: Browser, cloud: CloudcoreChild, opts: Options): Promise<Report['page']> {
  const context = await browser.newContext({ viewport: { width: 1400, height: 900 } });
  await context.addInitScript((token) => sessionStorage.setItem('edgefleet.token', token), cloud.adminToken);
  const page = await context.newPage();
  const total = opts.nodes.toLocaleString('en');
  const loads: number[] = [];
  for (let i = 0; i < opts.runs; i++) {
    // From a blank page each time: the same URL again would only be a same-document hash change.
    await page.goto('about:blank');
    loads.push(await timed(page, () => page.goto(`${cloud.url}/ui/#/`), ROWS_AND_COUNT, total));
    log(`page load ${i + 1}/${opts.runs}: ${loads.at(-1)!.toFixed(0)} ms`);
  }
  const sorts: number[] = [];
  const filters: number[] = [];
  const pages: number[] = [];
  for (let i = 0; i < opts.runs; i++) {
    await page.goto('about:blank');
    await page.goto(`${cloud.url}/ui/#/`);
    await page.waitForFunction(ROWS_AND_COUNT, total);
    const first = await page.locator('table.fleet tbody tr').first().getAttribute('data-node');
    sorts.push(await timed(page, () => page.getByRole('button', { name: 'Node' }).click(), FIRST_ROW_IS_NOT, first));
    const afterSort = await page.locator('table.fleet tbody tr').first().getAttribute('data-node');
    pages.push(await timed(page, () => page.getByRole('button', { name: 'Next' }).click(), FIRST_ROW_IS_NOT, afterSort));
    await page.getByLabel('Label selector').fill(i % 2 ? 'zone=north' : 'tier=gateway');
    await page.getByLabel('Status').selectOption('Offline');
    const before = await page.locator('[data-count="matched"]').innerText();
    filters.push(await timed(page, () => page.getByRole('button', { name: 'Apply' }).click(),
      `(before) => { const m = document.querySelector('[data-count="matched"]'); return m && m.textContent !== before; }`, before));
  }
  const heap = await page.evaluate(() => (performance as unknown as { memory?: { usedJSHeapSize: number } }).memory?.usedJSHeapSize ?? 0);
  const rowsShown = await page.locator('table.fleet tbody tr').count();
  await context.close();
  const [cold, ...warm] = loads;
  return {
    coldLoadMs: cold!, warmLoadMs: summarizeLatencies(warm.length ? warm : [cold!]),
    sortMs: summarizeLatencies(sorts), filterMs: summarizeLatencies(filters), nextPageMs: summarizeLatencies(pages),
    rowsShown, jsHeapUsedMiB: Math.round((heap / 1024 / 1024) * 10) / 10,
  };
}

function summary(r: Report): string {
  const ms = (s: LatencySummary) => `p50 ${s.p50.toFixed(0)} ms (min ${s.min.toFixed(0)}, max ${s.max.toFixed(0)})`;
  return [
    `dashboard with ${r.nodes.toLocaleString('en')} nodes, ${r.workloads.toLocaleString('en')} workloads, ${r.devices.toLocaleString('en')} devices (load ${r.machine.loadAvg1mStart} → ${r.machine.loadAvg1mEnd})`,
    `  GET /fleet first request (builds the index): ${r.api.firstRequestMs.toFixed(0)} ms`,
    ...r.api.queries.map((q) => `  GET /fleet?${q.query}: ${ms(q.ms)}, ${(q.bytes / 1024).toFixed(1)} KiB`),
    `  fleet page, cold load (sign-in → 50 rows + counts): ${r.page.coldLoadMs.toFixed(0)} ms`,
    `  fleet page, warm load: ${ms(r.page.warmLoadMs)}`,
    `  sort by name: ${ms(r.page.sortMs)}; next page: ${ms(r.page.nextPageMs)}; filter (label + status): ${ms(r.page.filterMs)}`,
    `  page JS heap after the run: ${r.page.jsHeapUsedMiB} MiB`,
  ].join('\n');
}

async function main(): Promise<void> {
  const opts = parseOptions(process.argv);
  if (!HAVE_CHROMIUM) {
    process.stderr.write('dashboard bench: /usr/bin/chromium is missing (apt-get install -y chromium)\n');
    process.exit(2);
  }
  const dir = mkdtempSync(join(tmpdir(), 'edgefleet-dashboard-bench-'));
  let cloud: CloudcoreChild | undefined;
  let browser: Browser | undefined;
  await runGuarded<Report>({
    timeoutSeconds: opts.timeoutSeconds,
    log,
    diagnostics: () => (cloud ? `cloudcore log tail:\n${cloud.logTail()}` : 'cloudcore not started'),
    release: async () => {
      await browser?.close().catch(() => undefined);
      browser = undefined;
      await cloud?.stop();
      rmSync(dir, { recursive: true, force: true });
    },
    summary,
    run: async () => {
      const load0 = loadavg()[0]!;
      const t0 = performance.now();
      log(`writing ${opts.nodes} nodes (+ workloads, devices) into a fresh store`);
      const fleet = await prefillFleet(join(dir, 'cloud'), { nodes: opts.nodes, workloads: true, devicesEvery: 5 });
      const prefillMs = performance.now() - t0;
      cloud = await startCloudcoreChild({ dataDir: join(dir, 'cloud'), logPath: join(dir, 'cloudcore.log'), offlineAfterSeconds: 90, readyTimeoutMs: 120_000 });
      log(`cloudcore up at ${cloud.url}; timing GET /fleet`);
      const apiTimes = await timeApi(cloud, opts.apiRequests);
      browser = await launchChromium();
      log('timing the fleet page in chromium');
      const page = await timePage(browser, cloud, opts);
      return {
        nodes: opts.nodes, workloads: fleet.workloads, devices: fleet.devices,
        machine: { cpus: cpus().length, loadAvg1mStart: Math.round(load0 * 100) / 100, loadAvg1mEnd: Math.round(loadavg()[0]! * 100) / 100, node: process.version },
        prefillMs: Math.round(prefillMs), api: apiTimes, page,
      };
    },
  });
}

await main();
