import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * The field engineer's view of the node: `GET /status` as JSON, served from local state
 * only, so it answers with the cloud unreachable. Loopback by default. Secrets never appear:
 * the snapshot provider decides what is shown and leaves env values out.
 */
export type StatusSnapshot = () => Record<string, unknown>;

/** Extra read-only routes (e.g. the mapper device list): answer, or undefined for "not mine". */
export type LocalRoute = (path: string, url: URL, req: IncomingMessage) => { status: number; body: unknown } | undefined;

export class StatusServer {
  private server: Server | undefined;
  private readonly routes: LocalRoute[] = [];

  constructor(private readonly snapshot: StatusSnapshot) {}

  addRoute(route: LocalRoute): void { this.routes.push(route); }

  async listen(host: string, port: number): Promise<string> {
    const server = createServer((req, res) => {
      const url = new URL(req.url ?? '/', 'http://local');
      const path = url.pathname;
      if (req.method !== 'GET') return send(res, 405, { error: `method ${req.method} not allowed; the status API is read-only` });
      if (path === '/status') return send(res, 200, this.snapshot());
      if (path === '/healthz') return send(res, 200, { ok: true });
      for (const route of this.routes) {
        const answer = route(path, url, req);
        if (answer) return send(res, answer.status, answer.body);
      }
      return send(res, 404, { error: `no such path ${path}; try /status` });
    });
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => resolve());
    });
    const addr = server.address() as AddressInfo;
    const shownHost = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address;
    return `http://${shownHost}:${addr.port}`;
  }

  async close(): Promise<void> {
    const server = this.server;
    if (!server) return;
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}

function send(res: import('node:http').ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body, null, 2);
  res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store' });
  res.end(text);
}
