import { existsSync, readFileSync } from 'node:fs';
import { request } from 'node:http';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { api, Fleet, type Cloud, type Edge } from '../helpers/fleet.js';
import { waitFor } from '../helpers/wait.js';

/** GET on the edge's local API from a chosen 127.0.0.x address (the throttle counts per address). */
function get(url: string, headers: Record<string, string>, localAddress: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { headers, localAddress }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => { body += c; });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

const bearer = (password: string) => ({ authorization: `Bearer ${password}` });

/**
 * Issue 20: the edge's local API and a widened broker, against a real edgecore started with
 * `--mqtt-allow-anonymous true` (on loopback: tests stay off the network).
 */
describe('edge local API and broker exposure', () => {
  const fleet = new Fleet();
  let cloud: Cloud;
  let edge: Edge;

  beforeAll(async () => {
    cloud = await fleet.startCloud();
    edge = await fleet.startEdge({ node: 'edge-1', cloudUrl: cloud.url, joinToken: await api(cloud).token('edge-1'), extra: ['--mqtt-allow-anonymous', 'true'] });
    await api(cloud).call('POST', '/devicemodels', { metadata: { name: 'm' }, spec: { protocol: 'virtual', properties: [{ name: 'level', type: 'int' }] } });
    await api(cloud).call('POST', '/devices', { metadata: { name: 'lamp' }, spec: { model: 'm', nodeName: 'edge-1', protocol: { name: 'virtual' } } });
    await waitFor('mapper credential', () => existsSync(join(edge.dataDir, 'mappers', 'virtual.password')));
  });
  afterAll(() => fleet.cleanup());

  it('--mqtt-allow-anonymous starts with a loud WARN in the log and a warning on the status page', async () => {
    const logged = edge.proc.lines.filter((l) => String(l.msg).startsWith('DEVICE BROKER EXPOSED: anonymous MQTT clients are allowed'));
    expect(logged).toHaveLength(1);
    expect(logged[0]!.level).toBe(40);
    const status = await (await fetch(`${edge.statusUrl}/status`)).json() as { mqtt: { warnings?: string[] } };
    expect(status.mqtt.warnings).toEqual([expect.stringMatching(/^anonymous MQTT clients are allowed \(--mqtt-allow-anonymous\)/)]);
    expect(await (await fetch(`${edge.statusUrl}/`)).text()).toContain('id="mqtt-exposure"');
  });

  it('the mapper device list is behind the Host check and the failure throttle; another address is still served', async () => {
    const password = readFileSync(join(edge.dataDir, 'mappers', 'virtual.password'), 'utf8').trim();
    const url = `${edge.statusUrl}/mapper/v1/devices?protocol=virtual`;
    expect((await get(url, { host: 'attacker.example', ...bearer(password) }, '127.0.0.9')).status).toBe(421);
    // Bounded: 10 wrong passwords (the throttle's limit), then the right one is refused unchecked.
    for (let i = 0; i < 10; i++) expect((await get(url, bearer(`guess-${i}`), '127.0.0.8')).status).toBe(401);
    const refused = await get(url, bearer(password), '127.0.0.8');
    expect(refused.status).toBe(429);
    expect(JSON.parse(refused.body).error).toMatch(/too many wrong local passwords from 127\.0\.0\.8/);
    const served = await get(url, bearer(password), '127.0.0.9');
    expect(served.status).toBe(200);
    expect(JSON.parse(served.body).devices.map((d: { name: string }) => d.name)).toEqual(['lamp']);
    expect(edge.proc.exitCode).toBeUndefined();
  });
});
