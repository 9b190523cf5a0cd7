import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, existsSync, mkdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { mapperOnPath } from './mapperOnPath.js';
import { edgeSummaryLines } from './quickstartText.js';
import { createServer } from 'node:net';
import { createInterface } from 'node:readline';
import { request as httpsRequest } from 'node:https';

/**
 * `npm start`: a complete local fleet on the embedded default. cloudcore with SQLite, two
 * edgecores (edge-1, edge-2) joined with tokens, and a demo app running on both. State lives
 * in .data/quickstart and is reused on the next start (nodes keep their certificates). cloudcore
 * serves HTTPS from its own CA, as it does by default; the edges join with pinned tokens.
 * Ctrl-C stops everything cleanly.
 */

const ROOT = resolve(import.meta.dirname, '..', '..');
const DATA = join(ROOT, '.data', 'quickstart');
const LOGS = join(DATA, 'logs');
const BIN = join(DATA, 'bin');
/** cloudcore serves HTTPS from its own CA, made on its first start. */
const CLOUD_CA = join(DATA, 'cloudcore', 'pki', 'ca.crt');
const children: { name: string; proc: ChildProcess; exited: Promise<void> }[] = [];

function start(name: string, bin: string, args: string[], env: NodeJS.ProcessEnv = process.env): Promise<Record<string, unknown>> {
  const proc = spawn(process.execPath, [join(ROOT, 'dist', bin, 'main.js'), ...args], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
  const log = createWriteStream(join(LOGS, `${name}.log`), { flags: 'a' });
  proc.stderr!.pipe(log);
  const exited = new Promise<void>((res) => proc.on('exit', () => res()));
  children.push({ name, proc, exited });
  return new Promise((resolveReady, reject) => {
    const timer = setTimeout(() => reject(new Error(`${name} did not start within 30 s; see ${join(LOGS, `${name}.log`)}`)), 30_000);
    proc.on('exit', (code) => reject(new Error(`${name} exited with code ${code}; see ${join(LOGS, `${name}.log`)}`)));
    createInterface({ input: proc.stdout! }).on('line', (line) => {
      log.write(line + '\n');
      try {
        const entry = JSON.parse(line) as Record<string, unknown>;
        if (entry.msg === `${bin} ready`) { clearTimeout(timer); resolveReady(entry); }
      } catch { /* not JSON: just logged */ }
    });
  });
}

/** The operator API over HTTPS, trusting the quick start's own cloud CA (global fetch cannot be given one). */
function call(url: string, token: string, method: string, path: string, body?: unknown): Promise<{ status: number; body: Record<string, unknown> }> {
  const payload = body === undefined ? undefined : JSON.stringify(body);
  return new Promise((resolveAnswer, reject) => {
    const req = httpsRequest(`${url}/api/v1${path}`, {
      method, ca: readFileSync(CLOUD_CA, 'utf8'),
      headers: { authorization: `Bearer ${token}`, ...(payload ? { 'content-type': 'application/json' } : {}) },
    }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolveAnswer({ status: res.statusCode ?? 0, body: JSON.parse(Buffer.concat(chunks).toString('utf8') || '{}') as Record<string, unknown> }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(payload);
  });
}

const DEMO_APP = {
  kind: 'App',
  metadata: { name: 'demo', labels: { purpose: 'quickstart' } },
  spec: {
    selector: {},
    template: {
      runtime: 'process', command: '/bin/sh',
      args: ['-c', 'while true; do echo "demo on $(hostname) says hello at $(date -u +%H:%M:%S)"; sleep 5; done'],
      env: {}, restartPolicy: 'Always',
    },
  },
};

/** The usual port if it is free, else 0 (any free port): a local mosquitto on 1883 must not break the demo. */
function portOr(preferred: number): Promise<number> {
  return new Promise((resolve) => {
    const probe = createServer();
    probe.once('error', () => resolve(0));
    probe.listen(preferred, '127.0.0.1', () => probe.close(() => resolve(preferred)));
  });
}

async function main(): Promise<void> {
  mkdirSync(LOGS, { recursive: true });
  const port = process.env.PORT ?? String(await portOr(8080));
  const cloud = await start('cloudcore', 'cloudcore', ['--data-dir', join(DATA, 'cloudcore'), '--port', port]);
  const url = String(cloud.url);
  const token = readFileSync(join(DATA, 'cloudcore', 'admin.token'), 'utf8').trim();

  const edgeEnv = mapperOnPath(BIN, ROOT);
  const statusUrls: string[] = [];
  for (const [i, node] of ['edge-1', 'edge-2'].entries()) {
    const dataDir = join(DATA, node);
    const args = ['--node', node, '--cloud-url', url, '--data-dir', dataDir,
      '--status-port', String(await portOr(10351 + i)), '--mqtt-port', String(await portOr(1883 + i))];
    let env = edgeEnv;
    // A node without its certificate joins with a pinned token (also an edge from before
    // certificates, which holds only node.credential: it takes a certificate then).
    if (!existsSync(join(dataDir, 'pki', 'node.crt'))) {
      const minted = await call(url, token, 'POST', '/tokens', { node, ttlSeconds: 600 });
      if (minted.status !== 201) throw new Error(`could not create a join token for ${node}: ${JSON.stringify(minted.body)}`);
      // By env, not a flag: a flag would sit in the process list for other local users to read.
      env = { ...edgeEnv, EF_EDGE_JOIN_TOKEN: String(minted.body.token) };
      await call(url, token, 'PATCH', `/nodes/${node}`, { metadata: { labels: { site: 'quickstart', zone: i === 0 ? 'a' : 'b' } } });
    }
    const edge = await start(node, 'edgecore', args, env);
    statusUrls.push(...edgeSummaryLines(node, String(edge.statusUrl), String(edge.mqttUrl)));
  }

  const existing = await call(url, token, 'GET', '/apps/demo');
  if (existing.status === 404) await call(url, token, 'POST', '/apps', DEMO_APP);

  const deadline = Date.now() + 30_000;
  for (;;) {
    const app = await call(url, token, 'GET', '/apps/demo');
    const nodes = ((app.body.status as { nodes?: { state: string }[] } | undefined)?.nodes ?? []);
    if (nodes.length === 2 && nodes.every((n) => n.state === 'Running')) break;
    if (Date.now() > deadline) throw new Error('demo app did not reach Running on both nodes within 30 s; see the logs');
    await new Promise((r) => setTimeout(r, 250));
  }

  process.stdout.write([
    '',
    'EdgeFleet local fleet is up: cloudcore + edge-1 + edge-2, demo app Running on both.',
    '',
    `  dashboard    ${url}/ui/  (sign in with the admin token; your browser does not know the fleet's own CA:`,
    `               accept its warning, or import ${CLOUD_CA})`,
    `  CA pin       ${String(cloud.caPin)}  (in every join token; edgectl config set-cluster --ca-pin)`,
    `  API URL      ${url}/api/v1`,
    `  admin token  ${token}`,
    ...statusUrls,
    `  logs         ${LOGS}`,
    '',
    'Try:',
    `  export EF_SERVER=${url} EF_TOKEN=${token} EF_CERTIFICATE_AUTHORITY=${CLOUD_CA}`,
    '  npx edgectl get nodes',
    '  npx edgectl get app demo',
    '  npx edgectl apply -f docs/examples/devices.yaml          # two simulated devices on edge-1',
    '  npx edgectl apply -f docs/examples/virtual-mapper.yaml   # their mapper, as an app',
    '  npx edgectl get device lamp-1',
    ...closedCheckoutNote(),
    '',
    'Ctrl-C stops everything.',
    '',
  ].join('\n'));
}

/**
 * Run as root, edgecore runs each process workload as a user of its own, and the mapper example
 * runs this checkout's mapper: a checkout under a dir closed to others (/root) is out of its reach.
 */
function closedCheckoutNote(): string[] {
  if (process.getuid?.() !== 0) return [];
  for (let dir = BIN; dir !== dirname(dir); dir = dirname(dir)) {
    if ((statSync(dir).mode & 0o001) === 0) {
      return ['', `Note: workloads run as their own users (edgecore is root) and cannot pass through ${dir} (no o+x),`,
        `  so the mapper example cannot start this checkout's mapper: chmod o+x ${dir}, or move the checkout.`];
    }
  }
  return [];
}

async function shutdown(code: number): Promise<never> {
  // Edges first, so they stop their workloads while the cloud is still there to hear it.
  for (const group of [children.filter((c) => c.name !== 'cloudcore'), children.filter((c) => c.name === 'cloudcore')]) {
    for (const c of group) c.proc.kill('SIGTERM');
    await Promise.all(group.map((c) => c.exited));
  }
  process.exit(code);
}

process.on('SIGINT', () => { process.stdout.write('\nstopping the fleet…\n'); void shutdown(0); });
process.on('SIGTERM', () => void shutdown(0));
main().catch((err: Error) => {
  process.stderr.write(`quickstart failed: ${err.message}\n`);
  void shutdown(1);
});
