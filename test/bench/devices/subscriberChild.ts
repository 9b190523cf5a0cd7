/**
 * mosquitto's stand-in for the twin engine: one MQTT subscriber (own process) to every
 * device's reported and telemetry topics, recording each message's latency from the send time in its payload.
 * It only parses JSON (mosquitto persists nothing), so it is the cheaper consumer of the two.
 */
import { connect, type MqttClient } from 'mqtt';
import { z } from 'zod';
import { sentTimeOf } from './benchDevices.js';
import { serveRpc } from './childRpc.js';
import { LatencyRecorder, microsSince } from './latencyRecorder.js';

const RequestSchema = z.discriminatedUnion('cmd', [
  z.object({ cmd: z.literal('start'), port: z.number().int(), clientId: z.string(), topics: z.array(z.string()).min(1), qos: z.union([z.literal(0), z.literal(1)]), t0Ms: z.number() }),
  z.object({ cmd: z.literal('window'), fromUs: z.number(), toUs: z.number() }),
  z.object({ cmd: z.literal('stats') }),
  z.object({ cmd: z.literal('total') }),
  z.object({ cmd: z.literal('close') }),
]);

let client: MqttClient | null = null;
const recorder = new LatencyRecorder();
let unreadable = 0;
let disconnects = 0;

serveRpc(async (raw) => {
  const request = RequestSchema.parse(raw);
  switch (request.cmd) {
    case 'start': {
      const { t0Ms } = request;
      const c = connect(`mqtt://127.0.0.1:${request.port}`, {
        clientId: request.clientId, protocolVersion: 4, clean: true, reconnectPeriod: 0, connectTimeout: 30_000, keepalive: 60,
      });
      client = c;
      await new Promise<void>((resolve, reject) => {
        c.once('connect', () => resolve());
        c.once('error', reject);
      });
      c.on('close', () => { disconnects++; });
      c.on('message', (_topic: string, payload: Buffer) => {
        const sentUs = sentTimeOf(payload);
        if (sentUs === undefined) unreadable++;
        else recorder.add(sentUs, microsSince(t0Ms));
      });
      const granted = await c.subscribeAsync(request.topics, { qos: request.qos });
      if (granted.some((g) => g.qos === 128)) throw new Error(`subscription to ${request.topics.join(', ')} refused`);
      return null;
    }
    case 'total':
      return recorder.total;
    case 'window':
      return recorder.window(request.fromUs, request.toUs);
    case 'stats':
      return { received: recorder.total, unreadable, disconnects };
    case 'close':
      await client?.endAsync();
      client = null;
      return null;
  }
});
