import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { api, Fleet, runBin, runToEnd, type Cloud } from '../helpers/fleet.js';
import { waitFor } from '../helpers/wait.js';

/** The three binaries: --help, settings from flags/env/YAML validated with a clear error, and edgectl against a real cloudcore. */
describe('binaries', () => {
  const fleet = new Fleet();
  let cloud: Cloud;
  beforeAll(async () => { cloud = await fleet.startCloud(); });
  afterAll(() => fleet.cleanup());

  const run = runToEnd;

  it.each(['cloudcore', 'edgecore', 'edgectl'] as const)('%s --help describes its options and exits 0', async (bin) => {
    const r = await run(bin, ['--help']);
    expect(r.code).toBe(0);
    expect(r.out).toContain('Usage:');
  });

  it('a bad flag value exits non-zero naming the setting', async () => {
    const r = await run('cloudcore', ['--port', '99999', '--data-dir', fleet.tempDir()]);
    expect(r.code).not.toBe(0);
    expect(r.err).toContain('invalid setting "port" (from flag --port)');
  });

  it('a bad env value names the env variable', async () => {
    const r = await run('edgecore', ['--node', 'edge-x', '--data-dir', fleet.tempDir()], { EF_EDGE_CLOUD_URL: 'ftp://nope' });
    expect(r.code).not.toBe(0);
    expect(r.err).toContain('invalid setting "cloudUrl" (from env EF_EDGE_CLOUD_URL)');
  });

  it('a YAML config file is read, and an unknown key in it is refused', async () => {
    const dir = fleet.tempDir();
    writeFileSync(join(dir, 'bad.yaml'), 'node: edge-y\ncloudUrl: http://127.0.0.1:1\nstatusPrt: 5\n');
    const bad = await run('edgecore', ['--config', join(dir, 'bad.yaml'), '--data-dir', dir]);
    expect(bad.code).not.toBe(0);
    expect(bad.err).toContain('unknown setting "statusPrt"');
    writeFileSync(join(dir, 'cloud.yaml'), `port: 0\ndataDir: ${join(dir, 'c')}\nlogLevel: info\n`);
    const proc = runBin('cloudcore', ['--config', join(dir, 'cloud.yaml')]);
    await proc.waitForLog('cloudcore ready');
    await proc.stop();
  });

  it('edgectl drives a real cloudcore: token, label, apply, get, delete, with tables and -o json', async () => {
    const env = { EF_SERVER: cloud.url, EF_TOKEN: cloud.token };
    const tok = await run('edgectl', ['token', 'create', 'edge-9'], env);
    expect(tok.code, tok.err).toBe(0);
    expect(tok.out).toMatch(/^[0-9a-f]+\.[0-9a-f]+$/);
    expect((await run('edgectl', ['label', 'node', 'edge-9', 'zone=north'], env)).code).toBe(0);
    const nodes = await run('edgectl', ['get', 'nodes', '-o', 'json'], env);
    const parsed = JSON.parse(nodes.out) as { metadata: { name: string; labels?: Record<string, string> } }[] | { items: { metadata: { name: string; labels?: Record<string, string> } }[] };
    const items = Array.isArray(parsed) ? parsed : parsed.items;
    expect(items.find((n) => n.metadata.name === 'edge-9')?.metadata.labels).toEqual({ zone: 'north' });

    const dir = fleet.tempDir();
    writeFileSync(join(dir, 'app.yaml'), [
      'kind: App', 'metadata:', '  name: hello', 'spec:', '  selector:', '    matchLabels: { zone: north }',
      '  template:', '    runtime: process', '    command: /bin/sleep', '    args: ["600"]', '',
    ].join('\n'));
    const applied = await run('edgectl', ['apply', '-f', join(dir, 'app.yaml')], env);
    expect(applied.code, applied.err).toBe(0);
    expect(applied.out).toContain('app/hello created');
    expect((await run('edgectl', ['apply', '-f', join(dir, 'app.yaml')], env)).out).toContain('app/hello unchanged');
    // edge-9 has not joined yet: nothing is bound to it until its edge redeems the token and links.
    expect((await run('edgectl', ['get', 'apps'], env)).out).toMatch(/hello\s+1\s+0\/0/);
    await fleet.startEdge({ node: 'edge-9', cloudUrl: cloud.url, joinToken: tok.out.trim() });
    await waitFor('hello bound to edge-9', async () => (await api(cloud).call<{ items: unknown[] }>('GET', '/workloads?app=hello')).body.items.length === 1);
    const table = await run('edgectl', ['get', 'apps'], env);
    expect(table.out).toMatch(/NAME/);
    expect(table.out).toContain('hello');
    const one = await run('edgectl', ['get', 'app', 'hello'], env);
    expect(one.out).toContain('edge-9');

    writeFileSync(join(dir, 'bad.yaml'), 'kind: App\nmetadata: { name: bad }\nspec: { template: { runtime: process } }\n');
    const bad = await run('edgectl', ['apply', '-f', join(dir, 'bad.yaml')], env);
    expect(bad.code).toBe(1);
    expect(bad.err).toContain('spec.template.command');

    expect((await run('edgectl', ['delete', 'app', 'hello'], env)).code).toBe(0);
    const gone = await run('edgectl', ['get', 'app', 'hello'], env);
    expect(gone.code).toBe(1);
    expect(gone.err).toContain('error:');
  });

  it('edgectl says clearly when cloudcore is unreachable or the token is wrong', async () => {
    const down = await run('edgectl', ['get', 'nodes'], { EF_SERVER: 'http://127.0.0.1:1', EF_TOKEN: 'x' });
    expect(down.code).toBe(1);
    expect(down.err).toContain('cannot reach cloudcore');
    const denied = await run('edgectl', ['get', 'nodes'], { EF_SERVER: cloud.url, EF_TOKEN: 'wrong' });
    expect(denied.code).toBe(1);
    expect(denied.err).toMatch(/error: .*token/i);
  });
});
