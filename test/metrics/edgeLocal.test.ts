import { writeFileSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { run } from '../../edgectl/program.js';
import { EdgeStatusSchema } from '../../protocol/edgeStatus.js';
import { api, Fleet, markerApp, runBin, type Cloud, type Edge } from '../helpers/fleet.js';
import { waitFor } from '../helpers/wait.js';

/**
 * The edge's local status API for field engineers, on a real edgecore: the local password
 * (HTTP Basic over real HTTP on 127.0.0.1), the refusal to bind beyond loopback without one,
 * and `edgectl local status` reading it with the cloud gone.
 */
describe('edge local status: password and edgectl local status', () => {
  const fleet = new Fleet();
  let cloud: Cloud;
  let edge: Edge;
  let passwordFile: string;
  const PASSWORD = 'field-engineer-7';

  const edgectl = async (args: string[], env: Record<string, string | undefined> = {}) => {
    let out = '';
    let err = '';
    const code = await run(args, { stdout: (s) => { out += s; }, stderr: (s) => { err += s; }, env, homeDir: fleet.root });
    return { code, out, err };
  };
  const basic = (password: string) => ({ authorization: `Basic ${Buffer.from(`engineer:${password}`).toString('base64')}` });

  beforeAll(async () => {
    cloud = await fleet.startCloud();
    passwordFile = join(fleet.root, 'status.password');
    writeFileSync(passwordFile, `${PASSWORD}\n`, { mode: 0o600 });
    edge = await fleet.startEdge({ node: 'edge-pw', cloudUrl: cloud.url, joinToken: await api(cloud).token('edge-pw'), extra: ['--status-password-file', passwordFile] });
    await api(cloud).call('POST', '/apps', markerApp('guarded', join(fleet.root, 'guarded.marker')));
    await waitFor('guarded running', async () => {
      const res = await fetch(`${edge.statusUrl}/status`, { headers: basic(PASSWORD) });
      const s = EdgeStatusSchema.parse(await res.json());
      return s.workloads.find((w) => w.name === 'guarded')?.status?.state === 'Running';
    });
  });
  afterAll(() => fleet.cleanup());

  it('with a password file, page, /status and /metrics need it (Basic auth); /healthz does not', async () => {
    for (const path of ['/', '/status', '/metrics', '/assets/status.js']) {
      const anonymous = await fetch(`${edge.statusUrl}${path}`);
      expect(anonymous.status, path).toBe(401);
      expect(anonymous.headers.get('www-authenticate')).toBe('Basic realm="edgecore edge-pw", charset="UTF-8"');
      expect((await fetch(`${edge.statusUrl}${path}`, { headers: basic('not-the-password') })).status, path).toBe(401);
      expect((await fetch(`${edge.statusUrl}${path}`, { headers: basic(PASSWORD) })).status, path).toBe(200);
    }
    expect((await fetch(`${edge.statusUrl}/healthz`)).status).toBe(200);
  });

  it('/status never shows template env values or the node credential', async () => {
    const text = await (await fetch(`${edge.statusUrl}/status`, { headers: basic(PASSWORD) })).text();
    expect(text).not.toContain('EF_VERSION'); // the app's env key (markerApp sets it)
    expect(text).not.toContain(PASSWORD);
  });

  it('edgectl local status: refused without the password, tables with it, -o json is the raw answer', async () => {
    const denied = await edgectl(['local', 'status', '--url', edge.statusUrl]);
    expect(denied.code).toBe(1);
    expect(denied.err).toBe(`error: edgecore at ${edge.statusUrl} needs its local status password: pass --password-file\n`);

    const table = await edgectl(['local', 'status', '--password-file', passwordFile], { EF_LOCAL_URL: edge.statusUrl });
    expect(table.code, table.err).toBe(0);
    expect(table.out).toMatch(/Node:\s+edge-pw/);
    expect(table.out).toMatch(/Cloud link:\s+connected for \S+ to http:\/\/127\.0\.0\.1:/);
    expect(table.out).toMatch(/guarded\s+process\s+Running\s+0\s/);
    expect(table.out).toMatch(/Queued for cloud:\s+\d+ waiting, 0 dropped/);

    const json = await edgectl(['local', 'status', '--url', edge.statusUrl, '--password-file', passwordFile, '-o', 'json']);
    const parsed = EdgeStatusSchema.parse(JSON.parse(json.out));
    expect(parsed.node).toBe('edge-pw');
    expect(parsed.workloads.map((w) => w.name)).toContain('guarded');
  });

  it('edgectl local status with the cloud gone: the link is shown down, workloads still listed (the real binary)', async () => {
    await cloud.proc.stop();
    await waitFor('edge notices', async () => {
      const s = EdgeStatusSchema.parse(await (await fetch(`${edge.statusUrl}/status`, { headers: basic(PASSWORD) })).json());
      return s.link.state !== 'connected' && (s.link.downForSeconds ?? 0) >= 1;
    });
    const proc = runBin('edgectl', ['local', 'status', '--url', edge.statusUrl, '--password-file', passwordFile]);
    expect(await proc.exited).toBe(0);
    await new Promise((r) => setTimeout(r, 50)); // let readline drain
    const out = proc.lines.map((l) => l.msg ?? JSON.stringify(l)).join('\n');
    expect(out).toMatch(/Cloud link:\s+DOWN for \d+s \((connecting|disconnected)\)/);
    expect(out).toMatch(/Down since:\s+\d{4}-\d\d-\d\dT/);
    expect(out).toMatch(/guarded\s+process\s+Running/);
  });

  it('edgectl local status says clearly when nothing answers', async () => {
    // A port that was free a moment ago: nothing listens there.
    const probe = createServer();
    await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', () => resolve()));
    const port = (probe.address() as AddressInfo).port;
    await new Promise<void>((resolve) => probe.close(() => resolve()));
    const r = await edgectl(['local', 'status', '--url', `http://127.0.0.1:${port}`]);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(new RegExp(`^error: cannot reach edgecore at http://127\\.0\\.0\\.1:${port}: .*ECONNREFUSED.*--status-port`));
    const bad = await edgectl(['local', 'status', '--url', 'ftp://x']);
    expect(bad.err).toContain('invalid setting "url" (from flag --url)');
  });

  it('edgecore refuses to start on a non-loopback status address without a password, naming the flag', async () => {
    for (const host of ['0.0.0.0', '::', '192.0.2.10']) {
      const proc = runBin('edgecore', ['--node', 'edge-lan', '--cloud-url', 'http://127.0.0.1:1', '--data-dir', fleet.tempDir(), '--status-host', host, '--status-port', '0', '--mqtt-port', '0']);
      expect(await proc.exited, host).toBe(2);
      await new Promise((r) => setTimeout(r, 50));
      expect(proc.stderr.join('\n'), host).toContain(`edgecore: invalid setting "statusPasswordFile": the status page would be reachable from the network on ${host}; set --status-password-file`);
    }
  });

  it('a password file that is too short stops edgecore before it starts anything', async () => {
    const short = join(fleet.root, 'short.password');
    writeFileSync(short, 'abc\n');
    const proc = runBin('edgecore', ['--node', 'edge-short', '--cloud-url', 'http://127.0.0.1:1', '--data-dir', fleet.tempDir(), '--status-password-file', short, '--status-port', '0', '--mqtt-port', '0']);
    expect(await proc.exited).toBe(1);
    await new Promise((r) => setTimeout(r, 50));
    const fatal = proc.lines.find((l) => l.msg === 'edgecore failed to start');
    expect(String(fatal?.err)).toContain(`status password in ${short} is too short`);
  });
});
