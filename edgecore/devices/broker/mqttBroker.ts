import { createServer, type Server } from 'node:net';
import { createServer as createTlsServer, type Server as TlsServer } from 'node:tls';
import { Aedes, type AuthenticateError, type Client, type PublishPacket, type Subscription } from 'aedes';
import { CONNACK_SERVER_UNAVAILABLE, type AuthResult } from './clientAuth.js';
import type { SqlitePersistence } from '../persistence/index.js';

/** What the hub decides; the broker asks through aedes' hooks and events. */
export interface BrokerHooks {
  authenticate(client: Client, username: string | undefined, password: Buffer | undefined): Promise<AuthResult>;
  /**
   * Calls `done` with the error that refuses the publish (aedes then closes the connection), or
   * with null to accept it; aedes sends a QoS 1 PUBACK only after that, so the hub calls it
   * once what the message changed is committed.
   */
  authorizePublish(client: Client | null, packet: PublishPacket, done: (err: Error | null) => void): void;
  /** Returns the subscription, or null to refuse it (SUBACK 0x80). */
  authorizeSubscribe(client: Client, sub: Subscription): Subscription | null;
  /** Whether aedes may deliver the message to this subscriber (live and queued deliveries, retained ones too). */
  mayForward(client: Client, packet: PublishPacket): boolean;
  onReady(client: Client): void;
  onDisconnect(client: Client): void;
  /** Granted subscriptions of a SUBSCRIBE (refused ones left out). */
  onSubscribed(client: Client, subs: Subscription[]): void;
  warn(obj: object, msg: string): void;
}

export interface RunningBroker {
  broker: Aedes;
  server: Server;
  port: number;
  /** The optional MQTT-over-TLS listener (same broker, same auth and ACLs). */
  tlsServer?: TlsServer;
  tlsPort?: number;
}

export interface TlsListener {
  port: number;
  /** PEM certificate chain and private key. */
  cert: string;
  key: string;
}

/** Starts aedes on the persistence and a TCP listener for it. */
export async function startBroker(persistence: SqlitePersistence, host: string, port: number, hooks: BrokerHooks, tls?: TlsListener): Promise<RunningBroker> {
  const broker = await Aedes.createBroker({
    persistence,
    authenticate: (client, username, password, done) => {
      hooks.authenticate(client, username, password).then((result) => {
        if (result.ok) return done(null, true);
        hooks.warn({ clientId: client.id, username, reason: result.reason }, 'MQTT connection refused');
        done(Object.assign(new Error(result.reason), { returnCode: result.returnCode }) as AuthenticateError, false);
      }, (err: unknown) => {
        hooks.warn({ clientId: client.id, err: String(err) }, 'MQTT authentication failed');
        done(Object.assign(new Error('authentication failed'), { returnCode: CONNACK_SERVER_UNAVAILABLE }) as AuthenticateError, false);
      });
    },
    authorizePublish: (client, packet, done) => hooks.authorizePublish(client, packet, done),
    authorizeSubscribe: (client, sub, done) => done(null, hooks.authorizeSubscribe(client, sub)),
    authorizeForward: (client, packet) => (hooks.mayForward(client, packet) ? packet : null),
  });
  broker.on('clientReady', (client) => hooks.onReady(client));
  broker.on('clientDisconnect', (client) => hooks.onDisconnect(client));
  broker.on('subscribe', (subs, client) => hooks.onSubscribed(client, subs.filter((s) => (s.qos as number) !== 128)));

  const server = createServer((socket) => { socket.setNoDelay(true); broker.handle(socket); });
  const tlsServer = tls ? createTlsServer({ cert: tls.cert, key: tls.key }, (socket) => broker.handle(socket)) : undefined;
  try {
    await listen(server, port, host);
    if (tlsServer && tls) await listen(tlsServer, tls.port, host);
  } catch (err) {
    server.close();
    tlsServer?.close();
    await new Promise<void>((resolve) => broker.close(() => resolve()));
    throw err;
  }
  for (const s of [server, tlsServer]) s?.on('error', (err) => hooks.warn({ err: String(err) }, 'MQTT listener error'));
  return { broker, server, port: portOf(server), ...(tlsServer ? { tlsServer, tlsPort: portOf(tlsServer) } : {}) };
}

function listen(server: Server, port: number, host: string): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
}

function portOf(server: Server): number {
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('MQTT listener has no TCP address');
  return address.port;
}

/** Stops accepting, disconnects every client and waits for both. */
export async function stopBroker(running: RunningBroker): Promise<void> {
  const serverClosed = Promise.all([running.server, running.tlsServer].map((srv) =>
    srv ? new Promise<void>((resolve) => srv.close(() => resolve())) : Promise.resolve()));
  await new Promise<void>((resolve) => running.broker.close(() => resolve()));
  await serverClosed;
}
