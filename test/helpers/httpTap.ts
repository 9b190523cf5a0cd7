import { connect, createServer, type AddressInfo, type Server, type Socket } from 'node:net';

/**
 * A loopback TCP proxy in front of a plain-HTTP cloudcore that reads what passes: the request
 * heads the client sends (to see a Range request), the bytes each answer carries back, and can
 * cut the connection after N bytes of an answer to a path, or flip one byte of it in transit.
 * This is the field link that breaks mid-download, or corrupts, without touching either process.
 */
export interface TappedRequest { line: string; range: string | null }

export class HttpTap {
  private server: Server | undefined;
  private readonly sockets = new Set<Socket>();
  readonly requests: TappedRequest[] = [];
  /** Bytes sent back to the client on connections whose last request was for `watchPath`. */
  watchedBytes = 0;
  port = 0;
  /** Cut the next answer to `watchPath` after this many bytes (once). */
  cutAfter: number | null = null;
  /** Flip the byte at this offset of the next answer to `watchPath` (once, counted from its first byte). */
  corruptAt: number | null = null;
  /**
   * Cut the first connection, whatever it carries, that brings the client more than this many
   * bytes (once): under TLS, where paths cannot be read, only a download is that big.
   */
  cutAnyAfter: number | null = null;
  /** Bytes the connection cut by `cutAnyAfter` had brought. */
  cutAt: number | null = null;
  /** While true, new connections are closed at once (the cloud is unreachable). */
  refuse = false;

  constructor(private readonly targetPort: number, private readonly watchPath: string) {}

  async start(): Promise<string> {
    this.server = createServer((client) => this.join(client));
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', () => resolve()));
    this.port = (this.server.address() as AddressInfo).port;
    return `http://127.0.0.1:${this.port}`;
  }

  /** Drops every open connection (and, with `refuse`, keeps the cloud away). */
  dropAll(): void { for (const s of this.sockets) s.destroy(); }

  private join(client: Socket): void {
    if (this.refuse) { client.destroy(); return; }
    const upstream = connect(this.targetPort, '127.0.0.1');
    for (const s of [client, upstream]) {
      this.sockets.add(s);
      s.on('close', () => this.sockets.delete(s));
      s.on('error', () => s.destroy());
    }
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => { if (!client.writableEnded) client.destroy(); });
    let head = '';
    let watched = false;
    let answered = 0;
    client.on('data', (chunk: Buffer) => {
      head += chunk.toString('latin1');
      for (let end = head.indexOf('\r\n\r\n'); end >= 0; end = head.indexOf('\r\n\r\n')) {
        const lines = head.slice(0, end).split('\r\n');
        head = head.slice(end + 4);
        const range = lines.slice(1).find((l) => /^range:/i.test(l))?.replace(/^range:\s*/i, '') ?? null;
        this.requests.push({ line: lines[0]!, range });
        watched = lines[0]!.split(' ')[1] === this.watchPath;
        answered = 0;
      }
      upstream.write(chunk);
    });
    let carried = 0;
    upstream.on('data', (chunk: Buffer) => {
      carried += chunk.length;
      if (this.cutAnyAfter !== null && carried > this.cutAnyAfter) {
        this.cutAnyAfter = null;
        this.cutAt = carried;
        upstream.destroy();
        client.destroy();
        return;
      }
      if (!watched) { client.write(chunk); return; }
      let out = chunk;
      if (this.corruptAt !== null && answered <= this.corruptAt && this.corruptAt < answered + chunk.length) {
        out = Buffer.from(chunk);
        out[this.corruptAt - answered] ^= 0xff;
        this.corruptAt = null;
      }
      if (this.cutAfter !== null && answered + out.length > this.cutAfter) {
        const keep = this.cutAfter - answered;
        this.cutAfter = null;
        this.watchedBytes += keep;
        // FIN after the kept bytes (not RST): the client gets exactly what is counted, then a body cut short.
        upstream.destroy();
        client.end(out.subarray(0, keep));
        return;
      }
      answered += out.length;
      this.watchedBytes += out.length;
      client.write(out);
    });
  }

  async stop(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }
}
