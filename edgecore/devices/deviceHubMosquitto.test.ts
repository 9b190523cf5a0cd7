import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { deviceTopics } from '../../protocol/index.js';
import { hashPassword } from './broker/deviceCredentials.js';
import { HubTestKit, makeDevice, waitFor } from '../../test/helpers/devices/deviceHubFixtures.js';
import { connectArgs, killClients, mosquittoClientsAvailable, runClient } from '../../test/helpers/devices/mosquittoClients.js';

/**
 * DeviceHub driven by Debian's mosquitto_pub / mosquitto_sub (package mosquitto-clients), a
 * client implementation that shares no code with the broker. Skipped when the binaries are missing.
 */

const skip = !mosquittoClientsAvailable;
if (skip) console.warn('deviceHubMosquitto.test.ts skipped: mosquitto_pub/mosquitto_sub not found (apt-get install mosquitto-clients)');

let kit: HubTestKit;
let pumpHash: string;
let fanHash: string;

beforeAll(async () => {
  [pumpHash, fanHash] = await Promise.all([hashPassword('pump-secret'), hashPassword('fan-secret')]);
});
beforeEach(() => { kit = new HubTestKit(); });
afterEach(async () => {
  await killClients();
  await kit.cleanup();
});

const pump = deviceTopics('pump-1');
const fan = deviceTopics('fan-1');

async function startHub() {
  const started = await kit.startHub();
  started.hub.setDevices([
    makeDevice('pump-1', { credentialHash: pumpHash, desired: { setpoint: 22.5, mode: 'eco' }, desiredVersion: 7 }),
    makeDevice('fan-1', { credentialHash: fanHash }),
  ]);
  return started;
}

const pumpLogin = (port: number, clientId = 'pump-1') => connectArgs(port, clientId, 'pump-1', 'pump-secret');

const itWithMosquitto = it.skipIf(skip);

describe('DeviceHub with mosquitto clients', () => {
  itWithMosquitto('a reported message from mosquitto_pub reaches upstream as the merged twin', async () => {
    const { hub, port } = await startHub();
    const first = await runClient('mosquitto_pub', [...pumpLogin(port), '-q', '1', '-t', pump.reported, '-m', '{"properties":{"temperature":19.25,"mode":"eco"}}']).done;
    expect(first).toMatchObject({ code: 0, stderr: '' });
    const second = await runClient('mosquitto_pub', [...pumpLogin(port), '-q', '1', '-t', pump.reported, '-m', '{"properties":{"setpoint":22.5}}']).done;
    expect(second.code).toBe(0);
    await waitFor(() => kit.twinReports('pump-1').some((b) => b.twin.version === 2), 'two reports upstream');
    const twin = kit.twinReports('pump-1').find((b) => b.twin.version === 2)!.twin;
    expect(twin.reported).toEqual({ temperature: 19.25, mode: 'eco', setpoint: 22.5 });
    expect(hub.statusSnapshot().devices.find((d) => d.name === 'pump-1')!.reportedVersion).toBe(2);
  });

  itWithMosquitto('mosquitto_sub receives the retained desired and the delta', async () => {
    const { port } = await startHub();
    const desired = await runClient('mosquitto_sub', [...pumpLogin(port, 'pump-1-desired'), '-q', '1', '-t', pump.desired, '-C', '1', '-W', '10', '-F', '%r %t %p']).done;
    expect(desired.code).toBe(0);
    const [retainFlag, topic, ...payload] = desired.stdout.trim().split(' ');
    expect(retainFlag).toBe('1');
    expect(topic).toBe(pump.desired);
    expect(JSON.parse(payload.join(' '))).toEqual({ properties: { setpoint: 22.5, mode: 'eco' }, version: 7 });

    const delta = await runClient('mosquitto_sub', [...pumpLogin(port), '-q', '1', '-t', pump.delta, '-C', '1', '-W', '10']).done;
    expect(delta.code).toBe(0);
    expect(JSON.parse(delta.stdout)).toEqual({ properties: { setpoint: 22.5, mode: 'eco' }, version: 7 });
  });

  itWithMosquitto('a wrong password and an anonymous client are refused', async () => {
    const { port } = await startHub();
    const wrong = await runClient('mosquitto_pub', [...connectArgs(port, 'pump-1', 'pump-1', 'nope'), '-t', pump.reported, '-m', '{}']).done;
    expect(wrong.code).not.toBe(0);
    expect(wrong.stderr).toMatch(/bad user name or password/i);
    const anonymous = await runClient('mosquitto_pub', [...connectArgs(port, 'anon'), '-t', pump.reported, '-m', '{}']).done;
    expect(anonymous.code).not.toBe(0);
    expect(anonymous.stderr).toMatch(/not authori[sz]ed/i);
  });

  itWithMosquitto('device A can neither subscribe to nor publish on device B topics', async () => {
    const { hub, port } = await startHub();
    const subscribe = await runClient('mosquitto_sub', [...pumpLogin(port), '-t', fan.desired, '-E', '-W', '10']).done;
    // With -E mosquitto_sub exits once the SUBACK is in; a refusal (granted 0x80) is reported on stderr.
    expect(subscribe.stderr).toMatch(/All subscription requests were denied/);
    expect(subscribe.stdout).toBe('');
    const publish = await runClient('mosquitto_pub', [...pumpLogin(port), '-q', '1', '-t', fan.reported, '-m', '{"properties":{"mode":"x"}}']).done;
    expect(publish.code).not.toBe(0);
    await waitFor(() => hub.statusSnapshot().messages.refused === 1, 'the refused publish counted');
    expect(hub.statusSnapshot().devices.find((d) => d.name === 'fan-1')!.reported).toEqual({});
  });

  itWithMosquitto('a malformed report gets an answer on the errors topic and leaves the twin alone', async () => {
    const { hub, port } = await startHub();
    const errors = runClient('mosquitto_sub', [...pumpLogin(port, 'pump-1-errors'), '-t', pump.errors, '-C', '1', '-W', '10']);
    // mosquitto_sub gives no sign when its subscription is in place: publish until it hears back
    // (a refused report changes nothing, so repeating it is harmless).
    let heard = false;
    void errors.done.then(() => { heard = true; });
    while (!heard) {
      const bad = await runClient('mosquitto_pub', [...pumpLogin(port), '-q', '1', '-t', pump.reported, '-m', '{"properties":{"setpoint":99}}']).done;
      expect(bad.code).toBe(0);
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
    const received = await errors.done;
    expect(received.code).toBe(0);
    expect(JSON.parse(received.stdout)).toMatchObject({ property: 'setpoint', topic: pump.reported, error: expect.stringMatching(/≤ 35/) });
    expect(hub.statusSnapshot().devices.find((d) => d.name === 'pump-1')!.reportedVersion).toBe(0);
  });

  itWithMosquitto('a refused report reaches no subscriber; an accepted one comes back to the device subscribed to it', async () => {
    const { port } = await startHub();
    const watch = runClient('mosquitto_sub', [...pumpLogin(port, 'pump-1-watch'), '-q', '1', '-t', pump.reported, '-t', pump.errors, '-v']);
    let out = '';
    watch.child.stdout!.on('data', (chunk: Buffer) => { out += chunk.toString(); });
    const lines = (topic: string) => out.split('\n').filter((line) => line.startsWith(`${topic} `));
    const publish = async (payload: string) => {
      expect((await runClient('mosquitto_pub', [...pumpLogin(port), '-q', '1', '-t', pump.reported, '-m', payload]).done).code).toBe(0);
    };
    const bad = '{"properties":{"setpoint":99}}';
    const good = '{"properties":{"setpoint":21}}';
    // No sign tells when mosquitto_sub's subscription is in place: refused reports until it hears one answered.
    while (lines(pump.errors).length === 0) {
      await publish(bad);
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
    await publish(good);
    const answered = lines(pump.errors).length;
    await publish(bad);
    await waitFor(() => lines(pump.errors).length > answered && lines(pump.reported).length > 0, 'the accepted report and the last refusal');
    watch.child.kill('SIGTERM');
    await watch.done;
    expect(lines(pump.reported)).toEqual([`${pump.reported} ${good}`]);
  });
});
