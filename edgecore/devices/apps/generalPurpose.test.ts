import { afterEach, describe, expect, it } from 'vitest';
import { deviceTopics } from '../../../protocol/index.js';
import { hubTestContext, makeDevice, waitFor } from '../../../test/helpers/devices/deviceHubFixtures.js';
import { connectArgs, killClients, mosquittoClientsAvailable, runClient } from '../../../test/helpers/devices/mosquittoClients.js';
import { watch } from '../../../test/helpers/devices/mosquittoWatch.js';

/**
 * The broker in general-purpose mode (`--mqtt-general-purpose`), driven by Debian's
 * mosquitto_pub / mosquitto_sub: the behaviours the Paho interoperability suite checks
 * (scripts/pahoInterop.ts; the suite itself is not on a fresh machine) — retained messages,
 * overlapping subscriptions, wills, queued QoS 1 messages delivered on reconnect, unsubscribe,
 * `$` topics — and that its clients stay out of `ef/` and `apps/`. Skipped without mosquitto clients.
 */

const itWithMosquitto = it.skipIf(!mosquittoClientsAvailable);
const ctx = hubTestContext({ pump: 'pump-secret' });
afterEach(async () => { await killClients(); });

async function startHub(generalPurpose = true) {
  const started = await ctx.kit.startHub({ generalPurpose });
  started.hub.setDevices([makeDevice('pump-1', { credentialHash: ctx.hash.pump })]);
  return started;
}

const anon = (port: number, clientId: string) => connectArgs(port, clientId);
const pub = (port: number, clientId: string, topic: string, message: string, extra: string[] = []) =>
  runClient('mosquitto_pub', [...anon(port, clientId), '-q', '1', '-t', topic, '-m', message, ...extra]).done;

describe('general-purpose mode', () => {
  itWithMosquitto('is off by default: a client without a username is refused', async () => {
    const { port } = await startHub(false);
    expect((await pub(port, 'paho', 'TopicA', 'x')).stderr).toMatch(/not authori[sz]ed/i);
  });

  itWithMosquitto('keeps retained messages, clears them with an empty retained message, and matches overlapping subscriptions', async () => {
    const { port } = await startHub();
    expect((await pub(port, 'p1', 'TopicA/B', 'kept', ['-r'])).code).toBe(0);
    const retained = watch([...anon(port, 's1'), '-q', '1', '-C', '1'], ['TopicA/+']);
    expect((await retained.done).code).toBe(0);
    expect(retained.messages()).toEqual([{ retain: true, topic: 'TopicA/B', payload: 'kept' }]);
    expect((await pub(port, 'p1', 'TopicA/B', '', ['-r'])).code).toBe(0);

    const overlapping = watch([...anon(port, 's2'), '-q', '1'], ['TopicA/#', '#', '+/B']);
    expect(await overlapping.subscribed()).toEqual([1, 1, 1]);
    expect((await pub(port, 'p1', 'TopicA/B', 'once')).code).toBe(0);
    await waitFor(() => overlapping.messages().some((m) => m.payload === 'once'), 'the overlapping delivery');
    expect((await pub(port, 'p1', 'Other', 'last')).code).toBe(0);
    await waitFor(() => overlapping.messages().some((m) => m.payload === 'last'), 'a later message');
    await overlapping.stop();
    // MQTT 3.1.1 lets a server deliver once or once per matching subscription; nothing retained came back.
    const copies = overlapping.messages().filter((m) => m.payload === 'once');
    expect(copies.length).toBeGreaterThanOrEqual(1);
    expect(overlapping.messages().filter((m) => m.retain)).toEqual([]);
  });

  itWithMosquitto('publishes a will when a client goes without DISCONNECT', async () => {
    const { port } = await startHub();
    const wills = watch([...anon(port, 'will-watch'), '-q', '1', '-C', '1'], ['wills/#']);
    await wills.subscribed();
    const dying = watch([...anon(port, 'dying'), '--will-topic', 'wills/dying', '--will-payload', 'gone', '--will-qos', '1'], ['nothing/here']);
    await dying.subscribed();
    await dying.stop('SIGKILL'); // its socket closes without a DISCONNECT
    expect((await wills.done).code).toBe(0);
    expect(wills.messages()).toEqual([{ retain: false, topic: 'wills/dying', payload: 'gone' }]);
  });

  itWithMosquitto('queues QoS 1 messages for a persistent session and delivers them on reconnect; unsubscribing ends a subscription', async () => {
    const { port } = await startHub();
    const first = watch([...anon(port, 'durable'), '-q', '1', '-c'], ['Queue/#', 'Dropped/#']);
    await first.subscribed();
    await first.stop();
    expect((await pub(port, 'p2', 'Queue/a', 'while away')).code).toBe(0);
    const back = watch([...anon(port, 'durable'), '-q', '1', '-c', '-C', '1'], ['Queue/#']);
    expect((await back.done).code).toBe(0);
    expect(back.messages()).toEqual([{ retain: false, topic: 'Queue/a', payload: 'while away' }]);

    // -U unsubscribes the session from Dropped/# at connect; Queue/# stays.
    const third = watch([...anon(port, 'durable'), '-q', '1', '-c', '-U', 'Dropped/#'], ['Queue/#']);
    await third.subscribed();
    expect((await pub(port, 'p2', 'Dropped/a', 'not for it')).code).toBe(0);
    expect((await pub(port, 'p2', 'Queue/b', 'for it')).code).toBe(0);
    await waitFor(() => third.messages().some((m) => m.payload === 'for it'), 'the message on the kept subscription');
    await third.stop();
    expect(third.messages().map((m) => m.payload)).toEqual(['for it']);
  });

  itWithMosquitto('`$` topics are not matched by wildcards at the first level, only by a filter naming them', async () => {
    const { port } = await startHub();
    const wild = watch([...anon(port, 'wild'), '-q', '1'], ['#', '+/+']);
    const dollar = watch([...anon(port, 'dollar'), '-q', '1', '-C', '1'], ['$TopicA/#']);
    await Promise.all([wild.subscribed(), dollar.subscribed()]);
    expect((await pub(port, 'p3', '$TopicA/B', 'dollar')).code).toBe(0);
    expect((await dollar.done).code).toBe(0);
    expect((await pub(port, 'p3', 'TopicA/B', 'plain')).code).toBe(0);
    await waitFor(() => wild.messages().some((m) => m.payload === 'plain'), 'the plain message');
    await wild.stop();
    expect(wild.messages().map((m) => m.payload)).not.toContain('dollar');
    // Publishing as the broker is not for clients.
    expect((await pub(port, 'p3', '$SYS/broker/x', 'fake')).code).not.toBe(0);
  });

  itWithMosquitto('its clients stay out of ef/ and apps/: refused there, and `#` delivers nothing of them', async () => {
    const pump = deviceTopics('pump-1');
    const { hub, port } = await startHub();
    const all = watch([...anon(port, 'everything'), '-q', '1'], ['#']);
    for (const filter of ['ef/#', 'apps/#', pump.telemetry]) {
      const denied = watch([...anon(port, 'denied'), '-E'], [filter]);
      expect(await denied.subscribed(), filter).toEqual([128]);
      await denied.stop();
    }
    await all.subscribed();
    for (const topic of [pump.telemetry, 'apps/x']) expect((await pub(port, 'p4', topic, '{}')).code, topic).not.toBe(0);
    expect((await runClient('mosquitto_pub', [...connectArgs(port, 'pump-1', 'pump-1', 'pump-secret'), '-q', '1', '-t', pump.telemetry, '-m', '{"values":{"temperature":20}}']).done).code).toBe(0);
    await waitFor(() => hub.statusSnapshot().messages.sent > 0 || ctx.kit.telemetry('pump-1').length > 0, 'the telemetry taken in');
    expect((await pub(port, 'p4', 'after', 'x')).code).toBe(0);
    await waitFor(() => all.messages().some((m) => m.topic === 'after'), 'the general message');
    await all.stop();
    expect(all.messages().map((m) => m.topic)).toEqual(['after']);
    // A client id of a device, a mapper or an app is not a general client's.
    for (const id of ['pump-1', 'pump-1-x', 'mapper-virtual', 'app-x']) expect((await pub(port, id, 'x', 'y')).stderr, id).toMatch(/identifier rejected/i);
  });
});
