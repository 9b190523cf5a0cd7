import { createServer, connect, type Server, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';

/**
 * A loopback TCP proxy the test can cut: `cut()` drops every open connection and refuses new
 * ones (the edge sees a dead cloud), `restore()` lets traffic through again. This is how the
 * partition tests break the link without touching either process. `stall()` is the silent
 * partition: nothing is closed (no FIN, no RST), bytes just stop moving both ways and new
 * connections hang; `restore()` delivers what was held, as TCP retransmission would.
 */
export class TcpProxy {
  private server: Server | undefined;
  private readonly sockets = new Set<Socket>();
  private readonly pairs = new Set<[Socket, Socket]>();
  /** Connections accepted during a stall, joined to their upstream on restore. */
  private readonly held: (() => void)[] = [];
  private open = true;
  private stalled = false;
  port = 0;
  /** Connections accepted so far (a client that reconnects shows here). */
  accepted = 0;

  constructor(private targetPort: number, private readonly targetHost = '127.0.0.1') {}

  async start(): Promise<string> {
    this.server = createServer((client) => {
      this.accepted++;
      if (!this.open) { client.destroy(); return; }
      if (this.stalled) {
        client.pause();
        this.sockets.add(client);
        client.on('close', () => this.sockets.delete(client));
        client.on('error', () => client.destroy());
        this.held.push(() => { if (!client.destroyed) this.join(client); });
        return;
      }
      this.join(client);
    });
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', () => resolve()));
    this.port = (this.server.address() as AddressInfo).port;
    return `http://127.0.0.1:${this.port}`;
  }

  private join(client: Socket): void {
    const upstream = connect(this.targetPort, this.targetHost);
    for (const s of [client, upstream]) {
      this.sockets.add(s);
      s.on('close', () => this.sockets.delete(s));
      s.on('error', () => s.destroy());
    }
    client.pipe(upstream).on('close', () => client.destroy());
    upstream.pipe(client).on('close', () => upstream.destroy());
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
    const pair: [Socket, Socket] = [client, upstream];
    this.pairs.add(pair);
    client.on('close', () => this.pairs.delete(pair));
  }

  /** Re-targets the proxy (e.g. cloudcore restarted on another port). */
  retarget(port: number): void { this.targetPort = port; }

  cut(): void {
    this.open = false;
    for (const s of this.sockets) s.destroy();
  }

  restore(): void {
    this.open = true;
    if (!this.stalled) return;
    this.stalled = false;
    for (const [client, upstream] of this.pairs) { client.pipe(upstream); upstream.pipe(client); }
    for (const join of this.held.splice(0)) join();
  }

  /** Silent partition: bytes stop both ways, nothing is closed, new connections hang. */
  stall(): void {
    this.stalled = true;
    for (const [client, upstream] of this.pairs) {
      client.unpipe(upstream);
      upstream.unpipe(client);
      client.pause();
      upstream.pause();
    }
  }

  async close(): Promise<void> {
    this.cut();
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }
}
