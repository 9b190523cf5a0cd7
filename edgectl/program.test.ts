import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import YAML from 'yaml';
import { run } from './program.js';
import { startApiDouble, type ApiDouble } from '../test/helpers/edgectl/api-double.js';
import { makeApp, makeEvent, makeNode, makeWorkload, NOW } from '../test/helpers/edgectl/fixtures.js';

const TOKEN = 'admin-secret';

let api: ApiDouble;
let dir: string;

interface Result { code: number; out: string; err: string }

/** Runs edgectl against the double with a clean environment and an empty home directory. */
async function cli(args: string[], env: Record<string, string> = { EF_SERVER: api.url, EF_TOKEN: TOKEN }): Promise<Result> {
  let out = '';
  let err = '';
  const code = await run(args, {
    stdout: (s) => { out += s; }, stderr: (s) => { err += s; }, env, homeDir: dir, now: () => NOW,
  });
  return { code, out, err };
}

function file(name: string, text: string): string {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
}

const appYaml = (name: string, command = '/usr/bin/node') =>
  `kind: App\nmetadata:\n  name: ${name}\nspec:\n  selector:\n    matchLabels: { zone: a }\n  template:\n    runtime: process\n    command: ${command}\n`;

beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), 'edgectl-test-'));
  api = await startApiDouble({
    nodes: [
      makeNode('edge-1', { labels: { zone: 'a' }, version: '0.1.0' }),
      makeNode('edge-2', { labels: { zone: 'b' }, phase: 'Pending' }),
    ],
    apps: [makeApp('web', {
      generation: 2,
      matchLabels: { zone: 'a' },
      status: { nodes: [
        { node: 'edge-1', state: 'Running', restarts: 0, generation: 2 },
        { node: 'edge-3', state: 'CrashLoop', restarts: 7, generation: 1, lastError: 'exit code 1' },
      ] },
    })],
    workloads: [makeWorkload('web', 'edge-1', 'Running', 2), makeWorkload('api', 'edge-2', 'CrashLoop')],
    events: [makeEvent('edge-1', 'Started', 'web started', 10), makeEvent('edge-2', 'BackOff', 'api crashed', 5)],
  }, TOKEN);
});

afterEach(async () => {
  await api.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('get', () => {
  it('lists nodes as a table with the bearer token', async () => {
    const r = await cli(['get', 'nodes']);
    expect(r).toMatchObject({ code: 0, err: '' });
    const lines = r.out.trimEnd().split('\n');
    expect(lines[0]!.split(/\s{2,}/)).toEqual(['NAME', 'STATUS', 'AGE', 'LAST-SEEN', 'VERSION', 'LABELS']);
    expect(lines[1]!.split(/\s{2,}/)).toEqual(['edge-1', 'Ready', '3h', '1m', '0.1.0', 'zone=a']);
    expect(lines[2]!.split(/\s{2,}/)).toEqual(['edge-2', 'Pending', '3h', '<never>', '<none>', 'zone=b']);
    expect(api.requests[0]).toMatchObject({ method: 'GET', path: '/api/v1/nodes', authorization: `Bearer ${TOKEN}` });
  });

  it('passes -l as labelSelector and prints json or yaml verbatim', async () => {
    const json = await cli(['get', 'nodes', '-l', 'zone in (a)', '-o', 'json']);
    expect(json.code).toBe(0);
    expect(api.requests[0]!.query).toEqual({ labelSelector: 'zone in (a)' });
    const parsed = JSON.parse(json.out) as { items: Array<{ metadata: { name: string } }>; resourceVersion: number };
    expect(parsed.items.map((n) => n.metadata.name)).toEqual(['edge-1']);
    const yaml = await cli(['get', 'nodes', '--output', 'yaml']);
    expect((YAML.parse(yaml.out) as { items: unknown[] }).items).toHaveLength(2);
  });

  it('refuses a bad selector or output format before sending anything', async () => {
    const badSelector = await cli(['get', 'nodes', '-l', 'zone in (a']);
    expect(badSelector.code).toBe(1);
    expect(badSelector.err).toMatch(/^error: .*label selector/);
    const badOutput = await cli(['get', 'apps', '-o', 'xml']);
    expect(badOutput).toMatchObject({ code: 1, out: '' });
    expect(badOutput.err).toContain('error: invalid output format "xml"');
    expect(api.requests).toHaveLength(0);
  });

  it('shows one node with its workloads, and a 404 as an error', async () => {
    const r = await cli(['get', 'node', 'edge-1']);
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/^Name:\s+edge-1$/m);
    expect(r.out).toMatch(/^Status:\s+Ready for 3h$/m);
    expect(r.out).toMatch(/^OS\/Arch:\s+linux\/x64$/m);
    expect(r.out).toMatch(/^web\.edge-1\s+edge-1\s+web\s+Running/m);
    expect(api.requests[1]!.query).toEqual({ node: 'edge-1' });
    const missing = await cli(['get', 'node', 'nope']);
    expect(missing).toEqual({ code: 1, out: '', err: 'error: node "nope" not found\n' });
  });

  it('lists apps with ready/total from status, falling back to workloads when status is absent', async () => {
    const r = await cli(['get', 'apps']);
    expect(r.code).toBe(0);
    expect(r.out.split('\n')[1]!.split(/\s{2,}/)).toEqual(['web', '2', '1/2', 'zone=a']);
    expect(api.requests.map((q) => q.path)).toEqual(['/api/v1/apps']);

    api.state.apps = [makeApp('api')];
    api.requests.length = 0;
    const fallback = await cli(['get', 'apps']);
    expect(fallback.out.split('\n')[1]!.split(/\s{2,}/)).toEqual(['api', '1', '0/1', '<all nodes>']);
    expect(api.requests.map((q) => q.path)).toEqual(['/api/v1/apps', '/api/v1/workloads']);
  });

  it('shows one app with a per-node table', async () => {
    const r = await cli(['get', 'app', 'web']);
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/^Selector:\s+zone=a$/m);
    expect(r.out).toMatch(/^NODE\s+STATE\s+RESTARTS\s+GENERATION\s+LAST ERROR$/m);
    expect(r.out).toMatch(/^edge-3\s+CrashLoop\s+7\s+1\s+exit code 1$/m);
    const json = await cli(['get', 'app', 'web', '-o', 'json']);
    expect((JSON.parse(json.out) as { status: { nodes: unknown[] } }).status.nodes).toHaveLength(2);
  });

  it('filters workloads and events by node', async () => {
    const w = await cli(['get', 'workloads', '--node', 'edge-2']);
    expect(w.code).toBe(0);
    expect(api.requests[0]!.query).toEqual({ node: 'edge-2' });
    expect(w.out).toMatch(/^api\.edge-2\s+edge-2\s+api\s+CrashLoop\s+4\s+1\s+2m ago\s+exit code 1 \| at line 3$/m);
    expect(w.out).not.toContain('web.edge-1');

    const e = await cli(['get', 'events', '--node', 'edge-2', '--limit', '5']);
    expect(e.code).toBe(0);
    expect(api.requests[1]!.query).toEqual({ node: 'edge-2', limit: '5' });
    expect(e.out).toMatch(/^5m\s+edge-2\s+Warning\s+BackOff\s+api crashed$/m);
  });
});

describe('apply', () => {
  it('creates, leaves identical apps alone, and replaces changed ones without resourceVersion', async () => {
    const path = file('apps.yaml', `${appYaml('one')}---\n${appYaml('two')}`);
    const first = await cli(['apply', '-f', path]);
    expect(first).toEqual({ code: 0, out: 'app/one created\napp/two created\n', err: '' });

    const again = await cli(['apply', '-f', path]);
    expect(again.out).toBe('app/one unchanged\napp/two unchanged\n');

    api.requests.length = 0;
    writeFileSync(path, `${appYaml('one', '/bin/other')}\n---\n${appYaml('two')}`.replace('name: one', 'name: one\n  resourceVersion: 1'));
    const changed = await cli(['apply', '-f', path]);
    expect(changed.out).toBe('app/one configured\napp/two unchanged\n');
    const put = api.requests.find((q) => q.method === 'PUT')!;
    expect(put.path).toBe('/api/v1/apps/one');
    expect(put.body).toMatchObject({ kind: 'App', metadata: { name: 'one' }, spec: { template: { command: '/bin/other' } } });
    expect((put.body as { metadata: Record<string, unknown> }).metadata).not.toHaveProperty('resourceVersion');
    expect(api.state.apps.find((a) => a.metadata.name === 'one')!.metadata.generation).toBe(2);
  });

  it('accepts JSON files', async () => {
    const path = file('app.json', JSON.stringify(YAML.parse(appYaml('json-app'))));
    expect((await cli(['apply', '-f', path])).out).toBe('app/json-app created\n');
  });

  it('refuses an invalid document locally, naming the document and field, sending nothing', async () => {
    const path = file('bad.yaml', `${appYaml('ok')}---\n${appYaml('bad').replace('runtime: process', 'runtime: docker')}`);
    const r = await cli(['apply', '-f', path]);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/^error: .*bad\.yaml: document 2: field spec\.template\.runtime/);
    expect(api.requests).toHaveLength(0);
    const missing = await cli(['apply', '-f', join(dir, 'absent.yaml')]);
    expect(missing.err).toMatch(/^error: cannot read .*absent\.yaml/);
    const noFlag = await cli(['apply']);
    expect(noFlag.code).toBe(1);
    expect(noFlag.err).toContain("required option '-f, --filename <file>' not specified");
  });
});

describe('delete, token, label', () => {
  it('deletes apps and nodes', async () => {
    expect((await cli(['delete', 'app', 'web'])).out).toBe('app/web deleted\n');
    expect((await cli(['delete', 'node', 'edge-2'])).out).toBe('node/edge-2 deleted\n');
    expect(api.requests.map((q) => `${q.method} ${q.path}`)).toEqual(['DELETE /api/v1/apps/web', 'DELETE /api/v1/nodes/edge-2']);
    expect(await cli(['delete', 'app', 'web'])).toMatchObject({ code: 1, err: 'error: app "web" not found\n' });
  });

  it('creates a join token: the token alone by default, the whole answer with -o json', async () => {
    const r = await cli(['token', 'create', 'edge-9', '--ttl', '30m']);
    expect(r).toEqual({ code: 0, out: 'join.edge-9.secret\n', err: '' });
    expect(api.requests[0]).toMatchObject({ method: 'POST', path: '/api/v1/tokens', body: { node: 'edge-9', ttlSeconds: 1800 } });
    const json = await cli(['token', 'create', 'edge-9', '-o', 'json']);
    expect(JSON.parse(json.out)).toEqual({ token: 'join.edge-9.secret', node: 'edge-9', expiresAt: '2025-01-01T13:00:00.000Z' });
    expect(api.requests[1]!.body).toEqual({ node: 'edge-9', ttlSeconds: 3600 });
    const bad = await cli(['token', 'create', 'edge-9', '--ttl', '90d']);
    expect(bad).toMatchObject({ code: 1, err: 'error: invalid --ttl "90d": must be more than 0 and at most 30d\n' });
    expect(api.requests).toHaveLength(2);
  });

  it('labels a node with a merge patch where key- sends null', async () => {
    const r = await cli(['label', 'node', 'edge-1', 'tier=edge', 'zone-']);
    expect(r).toEqual({ code: 0, out: 'node/edge-1 labeled\n', err: '' });
    expect(api.requests[0]).toMatchObject({ method: 'PATCH', path: '/api/v1/nodes/edge-1', body: { metadata: { labels: { tier: 'edge', zone: null } } } });
    expect(api.state.nodes[0]!.metadata.labels).toEqual({ tier: 'edge' });
    const bad = await cli(['label', 'node', 'edge-1', 'Bad Key=x']);
    expect(bad.code).toBe(1);
    expect(api.requests).toHaveLength(1);
  });
});

describe('settings and errors', () => {
  it('prints API errors with their field', async () => {
    api.override = () => ({ status: 400, body: { error: 'must be lowercase', field: 'metadata.name' } });
    const r = await cli(['delete', 'app', 'web']);
    expect(r).toEqual({ code: 1, out: '', err: 'error: must be lowercase (field: metadata.name)\n' });
  });

  it('hints at --token when cloudcore answers 401 and none was given', async () => {
    const r = await cli(['get', 'nodes'], { EF_SERVER: api.url });
    expect(r).toEqual({ code: 1, out: '', err: 'error: missing bearer token (pass --token or set EF_TOKEN)\n' });
    expect(api.requests[0]!.authorization).toBeUndefined();
    const wrong = await cli(['get', 'nodes', '--token', 'nope'], { EF_SERVER: api.url });
    expect(wrong.err).toBe('error: unknown token\n');
  });

  it('reports answers that break the contract instead of printing them', async () => {
    api.override = () => ({ status: 200, body: { items: [{ kind: 'Node' }], resourceVersion: 1 } });
    const r = await cli(['get', 'nodes']);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/^error: unexpected answer from cloudcore \(GET \/api\/v1\/nodes\): items\.0\./);
    api.override = () => ({ status: 502, body: '<html>bad gateway</html>' });
    expect((await cli(['get', 'nodes'])).err).toMatch(/^error: 502 /);
  });

  it('says when cloudcore cannot be reached', async () => {
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    const r = await cli(['get', 'nodes', '--server', `http://127.0.0.1:${port}`]);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(new RegExp(`^error: cannot reach cloudcore at http://127\\.0\\.0\\.1:${port}: .*ECONNREFUSED`));
  });

  it('refuses a bad --server naming the setting', async () => {
    const r = await cli(['get', 'nodes', '--server', 'notaurl']);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/^error: invalid setting "server" \(from flag --server\)/);
    expect(api.requests).toHaveLength(0);
  });

  it('reads the default config file, an explicit --config, and lets env and flags override them', async () => {
    mkdirSync(join(dir, '.edgefleet'));
    writeFileSync(join(dir, '.edgefleet', 'config.yaml'), `server: ${api.url}\ntoken: ${TOKEN}\n`);
    expect((await cli(['get', 'nodes'], {})).code).toBe(0);
    expect((await cli(['get', 'nodes'], { EF_TOKEN: 'nope' })).err).toBe('error: unknown token\n');

    const other = file('other.yaml', `server: ${api.url}\ntoken: ${TOKEN}\n`);
    rmSync(join(dir, '.edgefleet'), { recursive: true });
    expect((await cli(['--config', other, 'get', 'apps'], {})).code).toBe(0);
    expect((await cli(['get', 'apps', '--config', join(dir, 'absent.yaml')], {})).err).toMatch(/^error: cannot read config file/);
    const typo = file('typo.yaml', 'sever: http://x\n');
    expect((await cli(['get', 'apps', '--config', typo], {})).err).toMatch(/^error: unknown setting "sever"/);
  });

  it('has --help on every command and a version command', async () => {
    const commands = [[], ['get'], ['get', 'nodes'], ['get', 'node'], ['get', 'apps'], ['get', 'app'], ['get', 'workloads'],
      ['get', 'events'], ['apply'], ['delete'], ['delete', 'app'], ['delete', 'node'], ['token'], ['token', 'create'],
      ['label'], ['label', 'node'], ['version']];
    for (const command of commands) {
      const r = await cli([...command, '--help']);
      expect(r.code, command.join(' ')).toBe(0);
      expect(r.out, command.join(' ')).toContain(`Usage: edgectl ${command.join(' ')}`.trimEnd());
    }
    expect(await cli(['version'])).toEqual({ code: 0, out: 'edgectl 0.1.0 (protocol v1)\n', err: '' });
    expect(await cli(['--version'])).toEqual({ code: 0, out: 'edgectl 0.1.0 (protocol v1)\n', err: '' });
    const unknown = await cli(['frobnicate']);
    expect(unknown.code).toBe(1);
    expect(unknown.err).toContain("error: unknown command 'frobnicate'");
    expect(api.requests).toHaveLength(0);
  });
});
