import { afterEach, describe, expect, it } from 'vitest';
import { DeviceSchema, deviceTopics, type Device, type MqttGrant } from '../../../protocol/index.js';
import { grantedQos, hubTestContext, makeDevice, waitFor } from '../../../test/helpers/devices/deviceHubFixtures.js';
import { connectArgs, killClients, mosquittoClientsAvailable, runClient } from '../../../test/helpers/devices/mosquittoClients.js';
import { watch } from '../../../test/helpers/devices/mosquittoWatch.js';

/**
 * App identities and device grants on the real broker (DeviceHub, aedes), driven by Debian's
 * mosquitto_pub / mosquitto_sub. Skipped when those are missing.
 */

const skip = !mosquittoClientsAvailable;
const itWithMosquitto = it.skipIf(skip);
const ctx = hubTestContext({ pump: 'pump-secret', plc: 'plc-secret', app: 'app-secret', app2: 'app-secret-2' });
afterEach(async () => { await killClients(); });

const ALERT_GRANT: MqttGrant = { publish: ['apps/alerts/#'], subscribe: ['ef/devices/+/telemetry', 'apps/alerts/#'] };
const pump = deviceTopics('pump-1');

/** A device speaking plain MQTT with a grant on app topics. */
function plcDevice(hash: string, grant?: MqttGrant): Device {
  const base = makeDevice('plc-1', { credentialHash: hash });
  return DeviceSchema.parse({ ...base, spec: { ...base.spec, ...(grant ? { mqtt: grant } : {}) } });
}

async function startHub() {
  const started = await ctx.kit.startHub();
  started.hub.setDevices([makeDevice('pump-1', { credentialHash: ctx.hash.pump }), plcDevice(ctx.hash.plc, { publish: ['apps/plc/out'], subscribe: ['apps/alerts/#'] })]);
  started.hub.setAppCredential('app-alerter', { hash: ctx.hash.app, workload: 'alerter', grant: ALERT_GRANT });
  return started;
}

const appLogin = (port: number, clientId = 'app-alerter', password = 'app-secret') => connectArgs(port, clientId, 'app-alerter', password);
const pumpLogin = (port: number) => connectArgs(port, 'pump-1', 'pump-1', 'pump-secret');
const plcLogin = (port: number, clientId = 'plc-1') => connectArgs(port, clientId, 'plc-1', 'plc-secret');
const pub = (args: string[], topic: string, message: string, extra: string[] = []) => runClient('mosquitto_pub', [...args, '-q', '1', '-t', topic, '-m', message, ...extra]).done;

describe('app identities on the edge broker', () => {
  itWithMosquitto('an app reads a device\'s telemetry and publishes on its app topic; a device with a grant reads it, retained', async () => {
    const { hub, port } = await startHub();
    const telemetry = watch([...appLogin(port, 'app-alerter-in'), '-q', '1', '-C', '1'], ['ef/devices/+/telemetry']);
    expect(await telemetry.subscribed()).toEqual([1]);
    expect((await pub(pumpLogin(port), pump.telemetry, '{"values":{"temperature":31.5}}')).code).toBe(0);
    expect((await telemetry.done).code).toBe(0);
    expect(telemetry.messages()).toEqual([{ retain: false, topic: pump.telemetry, payload: '{"values":{"temperature":31.5}}' }]);

    expect((await pub(appLogin(port), 'apps/alerts/pump-1', '{"alert":"hot"}', ['-r'])).code).toBe(0);
    // The device granted apps/alerts/# finds the alert retained, as MQTT keeps it.
    const plc = watch([...plcLogin(port), '-q', '1', '-C', '1'], ['apps/alerts/#']);
    expect((await plc.done).code).toBe(0);
    expect(plc.messages()).toEqual([{ retain: true, topic: 'apps/alerts/pump-1', payload: '{"alert":"hot"}' }]);
    expect(hub.statusSnapshot().appGrants).toEqual([{ workload: 'alerter', username: 'app-alerter', ...ALERT_GRANT, published: 1, delivered: 1, refused: 0 }]);
  });

  itWithMosquitto('outside its grant an app is refused: SUBACK 0x80 for subscriptions, the connection closed for publishes', async () => {
    const { hub, port } = await startHub();
    for (const filter of ['ef/devices/+/twin/desired', 'ef/devices/pump-1/#', '#', 'apps/#', 'other/topic', '$SYS/#']) {
      const denied = watch([...appLogin(port), '-E'], [filter]);
      expect(await denied.subscribed(), filter).toEqual([128]);
      await denied.stop();
    }
    for (const topic of ['apps/other', pump.desired, pump.telemetry, 'plain/topic']) {
      const refused = await pub(appLogin(port), topic, '{}');
      expect(refused.code, topic).not.toBe(0);
    }
    await waitFor(() => hub.statusSnapshot().appGrants[0]!.refused === 10, `ten refusals counted, not ${JSON.stringify(hub.statusSnapshot().appGrants)}`);
    expect(hub.statusSnapshot().devices.find((d) => d.name === 'pump-1')!.reported).toEqual({});
    // Client ids: its username or <username>-<suffix>, never a device's.
    expect((await pub(appLogin(port, 'pump-1'), 'apps/alerts/x', '{}')).stderr).toMatch(/identifier rejected/i);
    expect((await pub(appLogin(port, 'someone'), 'apps/alerts/x', '{}')).stderr).toMatch(/identifier rejected/i);
  });

  itWithMosquitto('a device is refused on app topics it has no grant for, and uses those it has', async () => {
    const { port } = await startHub();
    expect((await pub(pumpLogin(port), 'apps/alerts/x', '{}')).code).not.toBe(0);
    const denied = watch([...pumpLogin(port), '-E'], ['apps/#']);
    expect(await denied.subscribed()).toEqual([128]);
    await denied.stop();
    const app = watch([...appLogin(port), '-q', '1', '-C', '1'], ['apps/alerts/#']);
    await app.subscribed();
    expect((await pub(plcLogin(port), 'apps/plc/out', 'x')).code).toBe(0); // its grant, but nobody subscribed: dropped
    expect((await pub(plcLogin(port), 'apps/alerts/plc', 'x')).code).not.toBe(0); // subscribe-only for it
    expect((await pub(appLogin(port, 'app-alerter-pub'), 'apps/alerts/plc', 'ok')).code).toBe(0);
    expect((await app.done).code).toBe(0);
    expect(app.messages().map((m) => m.payload)).toEqual(['ok']);
  });

  itWithMosquitto('a rotated credential ends the live connection and the old password; a removed one too', async () => {
    const { hub, port } = await startHub();
    const live = watch([...appLogin(port), '-q', '1'], ['apps/alerts/#']);
    await live.subscribed();
    hub.setAppCredential('app-alerter', { hash: ctx.hash.app2, workload: 'alerter', grant: { ...ALERT_GRANT, publish: ['apps/alerts/new'] } });
    // mosquitto_sub reconnects with the old password, which is refused: it exits.
    const ended = await live.done;
    expect(ended.code).not.toBe(0);
    expect(ended.stderr + live.output()).toMatch(/not authori[sz]ed|bad user name or password/i);
    expect((await pub(appLogin(port), 'apps/alerts/new', 'x')).stderr).toMatch(/bad user name or password/i);
    expect((await pub(appLogin(port, 'app-alerter', 'app-secret-2'), 'apps/alerts/new', 'x')).code).toBe(0);
    expect((await pub(appLogin(port, 'app-alerter', 'app-secret-2'), 'apps/alerts/old', 'x')).code).not.toBe(0);

    const again = watch([...appLogin(port, 'app-alerter', 'app-secret-2'), '-q', '1'], ['apps/alerts/#']);
    await again.subscribed();
    hub.setAppCredential('app-alerter', undefined);
    expect((await again.done).code).not.toBe(0);
    expect((await pub(appLogin(port, 'app-alerter', 'app-secret-2'), 'apps/alerts/new', 'x')).stderr).toMatch(/bad user name or password/i);
    expect(hub.statusSnapshot().appGrants).toEqual([]);
  });

  it('a persistent session subscribed under an older grant gets nothing outside the new one, queued or live', async () => {
    const { hub, url } = await startHub();
    const first = await ctx.kit.connectClient(url, { clientId: 'app-alerter', username: 'app-alerter', password: 'app-secret', clean: false });
    expect(await grantedQos(first.client, 'apps/alerts/#')).toBe(1);
    await first.client.endAsync();
    hub.setAppCredential('app-alerter', { hash: ctx.hash.app2, workload: 'alerter', grant: { publish: ['apps/alerts/#'], subscribe: ['apps/alerts/kept/#'] } });
    const publisher = await ctx.kit.connectClient(url, { clientId: 'app-alerter-pub', username: 'app-alerter', password: 'app-secret-2' });
    await publisher.client.publishAsync('apps/alerts/gone', 'queued but no longer granted', { qos: 1 });
    await publisher.client.publishAsync('apps/alerts/kept/x', 'granted', { qos: 1 });
    const back = await ctx.kit.connectClient(url, { clientId: 'app-alerter', username: 'app-alerter', password: 'app-secret-2', clean: false });
    await waitFor(() => back.received.length >= 1, 'the granted queued message');
    // The session's wider subscription is not restored under the narrower grant: live messages need one inside it.
    expect(await grantedQos(back.client, 'apps/alerts/kept/#')).toBe(1);
    await publisher.client.publishAsync('apps/alerts/gone', 'live, not granted', { qos: 1 });
    await publisher.client.publishAsync('apps/alerts/kept/y', 'after', { qos: 1 });
    await waitFor(() => back.received.length >= 2, `the message after: ${JSON.stringify(back.received)}`);
    expect(back.received.map((m) => m.topic)).toEqual(['apps/alerts/kept/x', 'apps/alerts/kept/y']);
  });
});
