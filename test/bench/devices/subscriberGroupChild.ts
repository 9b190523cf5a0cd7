/**
 * Several MQTT subscribers in one process (issue 24's local apps): each its own connection and
 * client id, optionally logging in with an app credential read from its password file as a
 * workload does with EF_MQTT_USERNAME / EF_MQTT_PASSWORD_FILE. Every message any of them gets is
 * timed from the send time in its payload, into one recorder: the figure is "publish by a device
 * → receipt by an app", over all apps. Several processes of a few clients each, not one per app:
 * ten node processes would crowd the two shared cores more than the brokers.
 */
import { readFileSync } from 'node:fs';
import { connect, type MqttClient } from 'mqtt';
import { z } from 'zod';
import { sentTimeOf } from './benchDevices.js';
import { serveRpc } from './childRpc.js';
import { LatencyRecorder, microsSince } from './latencyRecorder.js';

const ClientSchema = z.object({ clientId: z.string().min(1), username: z.string().min(1).optional(), passwordFile: z.string().min(1).optional() });

const RequestSchema = z.discriminatedUnion('cmd', [
  z.object({
    cmd: z.literal('start'), port: z.number().int(), clients: z.array(ClientSchema).min(1), topics: z.array(z.string()).min(1),
    qos: z.union([z.literal(0), z.literal(1)]), t0Ms: z.number(),
  }),
  z.object({ cmd: z.literal('window'), fromUs: z.number(), toUs: z.number() }),
  z.object({ cmd: z.literal('records'), fromUs: z.number(), toUs: z.number() }),
  z.object({ cmd: z.literal('stats') }),
  z.object({ cmd: z.literal('total') }),
  z.object({ cmd: z.literal('close') }),
]);

const clients: MqttClient[] = [];
const recorder = new LatencyRecorder();
let unreadable = 0;
let disconnects = 0;

async function connectOne(port: number, spec: z.infer<typeof ClientSchema>, topics: string[], qos: 0 | 1, t0Ms: number): Promise<void> {
  const password = spec.passwordFile === undefined ? undefined : readFileSync(spec.passwordFile, 'utf8').trim();
  const c = connect(`mqtt://127.0.0.1:${port}`, {
    clientId: spec.clientId, protocolVersion: 4, clean: true, reconnectPeriod: 0, connectTimeout: 30_000, keepalive: 60,
    ...(spec.username !== undefined ? { username: spec.username } : {}), ...(password !== undefined ? { password } : {}),
  });
  clients.push(c);
  await new Promise<void>((resolve, reject) => {
    c.once('connect', () => resolve());
    c.once('error', (err) => reject(new Error(`${spec.clientId}: ${err.message}`)));
  });
  c.on('close', () => { disconnects++; });
  c.on('message', (_topic: string, payload: Buffer) => {
    const sentUs = sentTimeOf(payload);
    if (sentUs === undefined) unreadable++;
    else recorder.add(sentUs, microsSince(t0Ms));
  });
  const granted = await c.subscribeAsync(topics, { qos });
  if (granted.some((g) => g.qos === 128)) throw new Error(`${spec.clientId}: subscription to ${topics.join(', ')} refused`);
}

serveRpc(async (raw) => {
  const request = RequestSchema.parse(raw);
  switch (request.cmd) {
    case 'start':
      for (const spec of request.clients) await connectOne(request.port, spec, request.topics, request.qos, request.t0Ms);
      return null;
    case 'total':
      return recorder.total;
    case 'window':
      return recorder.window(request.fromUs, request.toUs);
    case 'records':
      return recorder.between(request.fromUs, request.toUs);
    case 'stats':
      return { received: recorder.total, unreadable, disconnects, clients: clients.length };
    case 'close':
      await Promise.all(clients.splice(0).map((c) => c.endAsync()));
      return null;
  }
});
