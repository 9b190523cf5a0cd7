import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { EdgeStatusSchema } from '../../protocol/index.js';
import { api, Fleet, type Cloud, type Edge } from '../helpers/fleet.js';
import { connectArgs, killClients, mosquittoClientsAvailable, runClient } from '../helpers/devices/mosquittoClients.js';
import { watch } from '../helpers/devices/mosquittoWatch.js';
import { sleep, waitFor } from '../helpers/wait.js';

/**
 * Issue 24, test 1: a workload run by edgecore with a grant reads a device's telemetry and
 * publishes an alert on its app topic, using only the env and file edgecore gave it (a shell
 * script driving Debian's mosquitto_sub/mosquitto_pub); the same credential is refused outside
 * its grant; a device is refused on app topics it has no grant for; a workload without a grant
 * has no credential; the credential rotates when the grant changes and goes with the workload.
 * And `--mqtt-general-purpose` reaching the broker through edgecore's settings. Real cloudcore,
 * edgecore, workload processes and broker.
 */

/** Reads telemetry of every device and republishes each sample, retained, as `apps/alerts/<device>`. */
const ALERTER = `set -eu
hostport=\${EF_MQTT_URL#mqtt://}
host=\${hostport%:*}; port=\${hostport##*:}
pw=$(cat "$EF_MQTT_PASSWORD_FILE")
stdbuf -oL mosquitto_sub -V mqttv311 -h "$host" -p "$port" -u "$EF_MQTT_USERNAME" -P "$pw" -i "$EF_MQTT_USERNAME-in" -q 1 -t 'ef/devices/+/telemetry' -F '%t %p' |
while read -r topic payload; do
  device=\${topic#ef/devices/}; device=\${device%/telemetry}
  mosquitto_pub -V mqttv311 -h "$host" -p "$port" -u "$EF_MQTT_USERNAME" -P "$pw" -i "$EF_MQTT_USERNAME-out" -q 1 -r -t "apps/alerts/$device" -m "$payload"
done`;

const GRANT = { publish: ['apps/alerts/#'], subscribe: ['ef/devices/+/telemetry'] };
const alerterApp = (grant: unknown) => ({ kind: 'App', metadata: { name: 'alerter' }, spec: { template: { runtime: 'process', command: '/bin/sh', args: ['-c', ALERTER], mqtt: grant } } });

describe.skipIf(!mosquittoClientsAvailable)('a workload with an MQTT grant, run by edgecore', () => {
  const fleet = new Fleet();
  let cloud: Cloud;
  let edge: Edge;
  let port: number;
  const passwords: Record<string, string> = {};

  const environOf = (pid: number): Record<string, string> => Object.fromEntries(readFileSync(`/proc/${pid}/environ`, 'utf8')
    .split('\0').filter(Boolean).map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]));
  const nodeFile = () => join(edge.dataDir, 'apps', 'alerter.password');
  const login = (device: string, clientId = device) => connectArgs(port, clientId, device, passwords[device]!);
  const appLogin = (password: string, clientId = 'app-alerter-test') => connectArgs(port, clientId, 'app-alerter', password);
  /** The broker's part of the edge's /status, parsed with the protocol's schema (appGrants included). */
  const broker = async () => EdgeStatusSchema.parse(await (await fetch(`${edge.statusUrl}/status`)).json()).mqtt!;
  const running = (name: string) => waitFor(`${name} running`, () => fleet.runningWorkload(edge, name), 30_000);

  /** Publishes telemetry until the panel has an alert with it (the script's subscription has no visible moment of readiness). */
  async function alertFor(value: number, panel: ReturnType<typeof watch>): Promise<void> {
    const payload = `{"values":{"temperature":${value}}}`;
    await waitFor(`an alert with ${value}`, async () => {
      if (panel.messages().some((m) => m.topic === 'apps/alerts/thermo-1' && m.payload === payload)) return true;
      expect((await runClient('mosquitto_pub', [...login('thermo-1'), '-q', '1', '-t', 'ef/devices/thermo-1/telemetry', '-m', payload]).done).code).toBe(0);
      await sleep(300);
      return false;
    }, 30_000, 50);
  }

  beforeAll(async () => {
    cloud = await fleet.startCloud();
    edge = await fleet.startEdge({ node: 'edge-1', cloudUrl: cloud.url, joinToken: await api(cloud).token('edge-1') });
    port = Number(new URL(String(edge.proc.lines.find((l) => l.msg === 'edgecore ready')!.mqttUrl)).port);
    expect((await api(cloud).call('POST', '/devicemodels', { metadata: { name: 'thermometer' }, spec: { protocol: 'mqtt', properties: [
      { name: 'temperature', type: 'float', accessMode: 'ReadOnly' },
    ] } })).status).toBe(201);
    for (const [name, mqtt] of [['thermo-1', undefined], ['panel', { subscribe: ['apps/alerts/#'] }]] as const) {
      const created = await api(cloud).call<{ credentials: { password: string } }>('POST', '/devices', { metadata: { name }, spec: {
        model: 'thermometer', nodeName: 'edge-1', protocol: { name: 'mqtt' }, ...(mqtt ? { mqtt } : {}),
      } });
      expect(created.status).toBe(201);
      passwords[name] = created.body.credentials.password;
    }
    expect((await api(cloud).call('POST', '/apps', alerterApp(GRANT))).status).toBe(201);
    expect((await api(cloud).call('POST', '/apps', { kind: 'App', metadata: { name: 'plain' }, spec: { template: { runtime: 'process', command: '/bin/sleep', args: ['600'] } } })).status).toBe(201);
    await waitFor('devices on the edge', async () => (await broker()).devices.length === 2, 30_000);
  });
  afterEach(async () => { await killClients(); });
  afterAll(async () => { await fleet.cleanup(); });

  it('reads a device\'s telemetry and publishes its alert on its app topic, with the env and file edgecore gave it', async () => {
    const w = await running('alerter');
    const env = environOf(w.status!.pid!);
    expect(env).toMatchObject({ EF_MQTT_USERNAME: 'app-alerter', EF_MQTT_URL: `mqtt://127.0.0.1:${port}` });
    // Where edgecore is root the workload runs as its own user, with its own read-only copy of the node's root-only file.
    expect(env.EF_MQTT_PASSWORD_FILE).toBe(process.getuid?.() === 0 ? join(edge.dataDir, 'workload-data', 'alerter', 'mqtt', 'password') : nodeFile());
    expect(readFileSync(env.EF_MQTT_PASSWORD_FILE!, 'utf8')).toBe(readFileSync(nodeFile(), 'utf8'));
    expect(Object.values(env)).not.toContain(readFileSync(nodeFile(), 'utf8').trim());

    const panel = watch([...login('panel'), '-q', '1'], ['apps/alerts/#']);
    expect(await panel.subscribed()).toEqual([1]);
    await alertFor(41.5, panel);
    const status = await broker();
    expect(status.appGrants).toEqual([expect.objectContaining({ workload: 'alerter', username: 'app-alerter', ...GRANT })]);
    const counters = status.appGrants![0]!;
    expect(counters.published).toBeGreaterThanOrEqual(1);
    expect(counters.delivered).toBeGreaterThanOrEqual(1);
  });

  it('refuses the same credential outside its grant, and a device on app topics it has no grant for', async () => {
    const password = readFileSync(nodeFile(), 'utf8').trim();
    const desired = watch([...appLogin(password), '-E'], ['ef/devices/+/twin/desired']);
    expect(await desired.subscribed()).toEqual([128]);
    await desired.stop();
    // A refused publish closes the connection (as for devices): mosquitto_pub fails.
    expect((await runClient('mosquitto_pub', [...appLogin(password), '-q', '1', '-t', 'apps/other', '-m', 'x']).done).code).not.toBe(0);
    expect((await runClient('mosquitto_pub', [...appLogin(password), '-q', '1', '-t', 'ef/devices/thermo-1/twin/desired', '-m', '{}']).done).code).not.toBe(0);
    expect((await runClient('mosquitto_pub', [...login('thermo-1'), '-q', '1', '-t', 'apps/alerts/thermo-1', '-m', 'fake']).done).code).not.toBe(0);
    const denied = watch([...login('thermo-1'), '-E'], ['apps/#']);
    expect(await denied.subscribed()).toEqual([128]);
    await denied.stop();
    expect((await broker()).appGrants![0]!.refused).toBeGreaterThanOrEqual(3);
  });

  it('gives a workload without a grant no credential at all', async () => {
    const w = await running('plain');
    expect(Object.keys(environOf(w.status!.pid!)).filter((k) => k.startsWith('EF_MQTT'))).toEqual([]);
    expect(existsSync(join(edge.dataDir, 'apps', 'plain.password'))).toBe(false);
    expect(existsSync(join(edge.dataDir, 'workload-data', 'plain', 'mqtt'))).toBe(false);
    expect((await broker()).appGrants?.map((g) => g.workload)).toEqual(['alerter']);
  });

  it('rotates the credential when the grant changes (the old one stops working) and removes it with the workload', async () => {
    const before = readFileSync(nodeFile(), 'utf8').trim();
    const pidBefore = (await running('alerter')).status!.pid!;
    const widened = { ...GRANT, publish: [...GRANT.publish, 'apps/status/alerter'] };
    expect((await api(cloud).call('PUT', '/apps/alerter', alerterApp(widened))).status).toBe(200);
    await waitFor('a new password', () => readFileSync(nodeFile(), 'utf8').trim() !== before, 30_000);
    expect((await runClient('mosquitto_pub', [...appLogin(before), '-q', '1', '-t', 'apps/alerts/x', '-m', 'x']).done).stderr).toMatch(/bad user name or password/i);
    const w = await waitFor('alerter restarted', async () => {
      const found = await fleet.runningWorkload(edge, 'alerter');
      return found && found.status!.pid !== pidBefore ? found : undefined;
    }, 30_000);
    expect(environOf(w.status!.pid!).EF_MQTT_USERNAME).toBe('app-alerter');
    const panel = watch([...login('panel', 'panel-2'), '-q', '1'], ['apps/alerts/#']);
    await panel.subscribed();
    await alertFor(42.5, panel);
    await panel.stop();

    const after = readFileSync(nodeFile(), 'utf8').trim();
    expect((await api(cloud).call('DELETE', '/apps/alerter')).status).toBe(200);
    await waitFor('credential files gone', () => !existsSync(nodeFile()), 30_000);
    expect((await runClient('mosquitto_pub', [...appLogin(after), '-q', '1', '-t', 'apps/alerts/x', '-m', 'x']).done).stderr).toMatch(/bad user name or password/i);
    expect((await broker()).appGrants).toEqual([]);
  });
});

describe.skipIf(!mosquittoClientsAvailable)('edgecore --mqtt-general-purpose', () => {
  const fleet = new Fleet();
  afterAll(async () => { await fleet.cleanup(); });

  it('lets password-less clients use their own topic space, and says so as a broker exposure', async () => {
    const cloud = await fleet.startCloud();
    const edge = await fleet.startEdge({ node: 'edge-2', cloudUrl: cloud.url, joinToken: await api(cloud).token('edge-2'), extra: ['--mqtt-general-purpose', 'true'] });
    expect(edge.proc.lines.some((l) => String(l.msg).startsWith('DEVICE BROKER EXPOSED: general-purpose MQTT clients are allowed'))).toBe(true);
    const port = Number(new URL(String(edge.proc.lines.find((l) => l.msg === 'edgecore ready')!.mqttUrl)).port);
    const sub = watch([...connectArgs(port, 'plain-sub'), '-q', '1', '-C', '1'], ['plant/#']);
    await sub.subscribed();
    expect((await runClient('mosquitto_pub', [...connectArgs(port, 'plain-pub'), '-q', '1', '-t', 'plant/line-1', '-m', 'up']).done).code).toBe(0);
    expect((await sub.done).code).toBe(0);
    expect(sub.messages()).toEqual([{ retain: false, topic: 'plant/line-1', payload: 'up' }]);
    expect((await runClient('mosquitto_pub', [...connectArgs(port, 'plain-pub'), '-q', '1', '-t', 'apps/x', '-m', 'no']).done).code).not.toBe(0);
    const status = EdgeStatusSchema.parse(await (await fetch(`${edge.statusUrl}/status`)).json());
    expect(status.mqtt?.warnings?.some((w) => w.startsWith('general-purpose MQTT clients are allowed'))).toBe(true);
  });
});
