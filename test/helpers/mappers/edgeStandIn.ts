import { createServer as createHttpServer, type Server as HttpServer } from 'node:http';
import { createServer as createNetServer, type Server as NetServer } from 'node:net';
import { Aedes } from 'aedes';
import { parseDeviceTopic } from '../../../protocol/index.js';

/**
 * A stand-in for the two edge surfaces a mapper talks to, for the mapper's own tests: a real
 * aedes MQTT broker on 127.0.0.1, and a tiny HTTP server answering edgecore's
 * `GET /mapper/v1/devices?protocol=…` (the real endpoint lives in edgecore, built separately).
 * Both check the mapper's credentials the way the contract says.
 */
export interface MqttConnectRecord {
  clientId: string;
  username: string | undefined;
  clean: boolean;
}

export interface PublishedMessage {
  device: string;
  rest: string;
  payload: unknown;
  at: number;
}

export interface EdgeStandIn {
  node: string;
  password: string;
  edgeUrl: string;
  mqttUrl: string;
  mqttPort: number;
  /** The device list the HTTP stand-in serves; tests change it to add/remove devices. */
  devices: Record<string, unknown>[];
  /** What mapper clients published, in order. */
  published: PublishedMessage[];
  connects: MqttConnectRecord[];
  listRequests: number;
  /** `properties` of every `twin/reported` of one device, in order. */
  reportsOf(device: string): Record<string, unknown>[];
  /** Publishes as the edge would (QoS 1). */
  publish(topic: string, payload: unknown, retain?: boolean): Promise<void>;
  /** Starts the broker listening (again) on mqttPort; `startEdgeStandIn({mqtt: false})` leaves it for later. */
  startMqtt(): Promise<void>;
  close(): Promise<void>;
}

function listen(server: HttpServer | NetServer, port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen({ port, host: '127.0.0.1' }, () => {
      const address = server.address();
      resolve(typeof address === 'object' && address ? address.port : 0);
    });
  });
}

function closeServer(server: HttpServer | NetServer): Promise<void> {
  return new Promise((resolve) => server.close(() => resolve()));
}

export async function startEdgeStandIn(opts: { node?: string; password?: string; mqttPort?: number; mqtt?: boolean } = {}): Promise<EdgeStandIn> {
  const node = opts.node ?? 'edge-1';
  const password = opts.password ?? 'mapper-secret';
  const broker = await Aedes.createBroker({
    authenticate: (client, username, pass, done) => {
      const ok = typeof username === 'string' && username.startsWith('mapper-') && pass?.toString('utf8') === password;
      if (ok) standIn.connects.push({ clientId: client.id, username, clean: client.clean });
      if (ok) done(null, true);
      else done(Object.assign(new Error('bad username or password'), { returnCode: 4 as const }), false);
    },
  });
  const standIn: EdgeStandIn = {
    node, password, edgeUrl: '', mqttUrl: '', mqttPort: opts.mqttPort ?? 0, devices: [], published: [], connects: [], listRequests: 0,
    reportsOf: (device) => standIn.published
      .filter((m) => m.device === device && m.rest === 'twin/reported')
      .map((m) => (m.payload as { properties: Record<string, unknown> }).properties),
    publish: (topic, payload, retain = false) => new Promise<void>((resolve, reject) => {
      broker.publish({ cmd: 'publish', topic, payload: Buffer.from(JSON.stringify(payload)), qos: 1, retain, dup: false }, (err) => (err ? reject(err) : resolve()));
    }),
    startMqtt: async () => {
      standIn.mqttPort = await listen(mqttServer, standIn.mqttPort);
      standIn.mqttUrl = `mqtt://127.0.0.1:${standIn.mqttPort}`;
    },
    close: async () => {
      mqttServer.close();
      await new Promise<void>((resolve) => broker.close(() => resolve()));
      http.closeAllConnections();
      await closeServer(http);
    },
  };
  broker.on('publish', (packet, client) => {
    if (!client) return; // the broker's own $SYS messages and our publishes
    const parsed = parseDeviceTopic(packet.topic);
    if (!parsed) return;
    let payload: unknown;
    try { payload = JSON.parse(packet.payload.toString()); } catch { payload = packet.payload.toString(); }
    standIn.published.push({ device: parsed.device, rest: parsed.rest, payload, at: Date.now() });
  });
  const mqttServer = createNetServer((socket) => broker.handle(socket));

  const http = createHttpServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    if (req.headers.authorization !== `Bearer ${password}`) {
      res.writeHead(401, { 'content-type': 'application/json' }).end('{"error":"unauthorized"}');
      return;
    }
    if (req.method !== 'GET' || url.pathname !== '/mapper/v1/devices') {
      res.writeHead(404).end();
      return;
    }
    standIn.listRequests += 1;
    const protocol = url.searchParams.get('protocol');
    const devices = standIn.devices.filter((d) => (d.protocol as { name?: string } | undefined)?.name === protocol);
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ node, devices }));
  });
  standIn.edgeUrl = `http://127.0.0.1:${await listen(http, 0)}`;
  if (opts.mqtt !== false) await standIn.startMqtt();
  else standIn.mqttUrl = `mqtt://127.0.0.1:${standIn.mqttPort}`;
  return standIn;
}
