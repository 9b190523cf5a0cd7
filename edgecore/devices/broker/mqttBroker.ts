import { createServer, type Server, type Socket } from 'node:net';
import { createServer as createTlsServer, type Server as TlsServer } from 'node:tls';
import { Aedes, type AuthenticateError, type Client, type PublishPacket, type Subscription } from 'aedes';
import { CONNACK_SERVER_UNAVAILABLE, type AuthResult } from './clientAuth.js';
import type { SqlitePersistence } from '../persistence/index.js';
import { LoginGate, PreLoginConnections, WarnLimiter, type LoginGateOptions } from './loginGate.js';
import { guardPacketSize, type PacketLimits } from './packetSizeGuard.js';

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
  /** Re-reads TlsListener.deviceCa into the TLS listener's context (new connections use it). */
  reloadTls(): void;
}

export interface TlsListener {
  port: number;
  /** PEM certificate chain and private key. */
  cert: string;
  key: string;
  /**
   * The CA bundle device client certificates must chain to (the cloud CA the node got at join,
   * or --mqtt-tls-client-ca); undefined while there is none. The listener asks every client for
   * a certificate but does not require one: passwords keep working.
   */
  deviceCa?: () => string | undefined;
}

/** The TLS listener's context: its own certificate, and the CA it checks client certificates with. */
function tlsContextOptions(tls: TlsListener): { cert: string; key: string; ca?: string } {
  const ca = tls.deviceCa?.();
  return { cert: tls.cert, key: tls.key, ...(ca !== undefined ? { ca } : {}) };
}

/** What bounds a connection before and after login (docs/mqtt.md, "Limits before login"). */
export interface BrokerLimits {
  packet: PacketLimits;
  /** A connection that has not sent its whole CONNECT by then is closed. */
  connectTimeoutMs: number;
  /** Connections from one address not logged in yet; more are closed at once. */
  maxPreLoginPerAddress: number;
  login: LoginGateOptions;
  /** Refused logins and over-size packets: one WARN per address per this interval. */
  warnIntervalMs: number;
}

/** The peer's IP address ('unknown' for a stream without one). */
export function addressOf(conn: Client['conn']): string {
  const address = (conn as Partial<Socket>).remoteAddress;
  return typeof address === 'string' ? address : 'unknown';
}

/** Starts aedes on the persistence and a TCP listener for it. */
export async function startBroker(persistence: SqlitePersistence, host: string, port: number, hooks: BrokerHooks, tls: TlsListener | undefined,
  limits: BrokerLimits): Promise<RunningBroker> {
  const gate = new LoginGate(limits.login);
  const preLogin = new PreLoginConnections(limits.maxPreLoginPerAddress);
  /** Per socket still counted in preLogin: uncounts it (once), at login or when it goes. */
  const loggedIn = new WeakMap<object, () => void>();
  const warnings = new WarnLimiter(limits.warnIntervalMs);
  /** Warns at most once per address and interval; `unlogged` counts what was left out since the last one. */
  const warnFor = (address: string, obj: object, msg: string): void => {
    const unlogged = warnings.shouldLog(address);
    if (unlogged !== null) hooks.warn({ address, ...obj, ...(unlogged > 0 ? { unlogged } : {}) }, msg);
  };
  /** Registered clients by id, to name a takeover (MQTT closes the older connection of an id). */
  const registered = new Map<string, Client>();
  const refuse = (returnCode: number, reason: string): AuthenticateError =>
    Object.assign(new Error(reason), { returnCode }) as AuthenticateError;
  type AuthenticateDone = (err: AuthenticateError | null, success: boolean | null) => void;
  /** The password check proper, once the gate let it through. */
  const check = (client: Client, address: string, username: string | undefined, password: Buffer | undefined, done: AuthenticateDone): void => {
    hooks.authenticate(client, username, password).then((result) => {
      gate.finish(address, result.ok);
      if (result.ok) {
        const older = registered.get(client.id);
        if (older !== undefined && older !== client) {
          hooks.warn({ clientId: client.id, username, address, olderAddress: addressOf(older.conn) }, 'MQTT session takeover: the older connection with this client id is closed');
        }
        loggedIn.get(client.conn)?.();
        return done(null, true);
      }
      warnFor(address, { clientId: client.id, username, reason: result.reason }, 'MQTT connection refused');
      done(refuse(result.returnCode, result.reason), false);
    }, (err: unknown) => {
      gate.finish(address, false);
      hooks.warn({ clientId: client.id, err: String(err) }, 'MQTT authentication failed');
      done(refuse(CONNACK_SERVER_UNAVAILABLE, 'authentication failed'), false);
    });
  };
  const broker = await Aedes.createBroker({
    persistence,
    connectTimeout: limits.connectTimeoutMs,
    authenticate: (client, username, password, done) => {
      const address = addressOf(client.conn);
      void gate.admit(address).then((admission) => {
        if (admission.ok) return check(client, address, username, password, done);
        warnFor(address, { clientId: client.id, username, reason: admission.reason }, 'MQTT connection refused');
        done(refuse(CONNACK_SERVER_UNAVAILABLE, admission.reason), false);
      });
    },
    authorizePublish: (client, packet, done) => hooks.authorizePublish(client, packet, done),
    authorizeSubscribe: (client, sub, done) => done(null, hooks.authorizeSubscribe(client, sub)),
    authorizeForward: (client, packet) => (hooks.mayForward(client, packet) ? packet : null),
  });
  broker.on('client', (client) => registered.set(client.id, client));
  broker.on('clientReady', (client) => hooks.onReady(client));
  broker.on('clientDisconnect', (client) => {
    if (registered.get(client.id) === client) registered.delete(client.id);
    hooks.onDisconnect(client);
  });
  broker.on('subscribe', (subs, client) => hooks.onSubscribed(client, subs.filter((s) => (s.qos as number) !== 128)));

  const handle = (socket: Socket): void => {
    const address = socket.remoteAddress ?? 'unknown';
    if (!preLogin.opened(address)) {
      warnFor(address, { reason: `${limits.maxPreLoginPerAddress} connections from ${address} have not logged in yet` }, 'MQTT connection refused');
      socket.destroy();
      return;
    }
    let counted = true;
    const uncount = (): void => {
      if (!counted) return;
      counted = false;
      preLogin.done(address);
    };
    loggedIn.set(socket, uncount);
    socket.once('close', uncount);
    broker.handle(socket);
    // After handle(): aedes reads on 'readable', so the guard sees exactly what it reads.
    guardPacketSize(socket, limits.packet, (reason) => warnFor(address, { reason }, 'MQTT connection closed: packet too large'));
  };
  const server = createServer((socket) => { socket.setNoDelay(true); handle(socket); });
  // rejectUnauthorized false: a client without a certificate (or with a bad one) still gets to
  // CONNECT, and the hub decides (and logs why) instead of the handshake failing unexplained.
  const tlsServer = tls ? createTlsServer({ ...tlsContextOptions(tls), requestCert: true, rejectUnauthorized: false }, handle) : undefined;
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
  const reloadTls = (): void => { if (tlsServer && tls) tlsServer.setSecureContext(tlsContextOptions(tls)); };
  return { broker, server, port: portOf(server), reloadTls, ...(tlsServer ? { tlsServer, tlsPort: portOf(tlsServer) } : {}) };
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
