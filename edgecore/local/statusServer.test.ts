import { request } from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { FailureThrottle } from './failureThrottle.js';
import { StatusServer } from './statusServer.js';

/** Real HTTP on 127.0.0.1 against the status server (the agent's snapshot replaced by a fixed one). */

interface Answer { status: number; headers: Record<string, string | string[] | undefined>; body: string }

function get(base: string, path: string, headers: Record<string, string> = {}, method = 'GET', localAddress?: string): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request(new URL(path, base), { method, headers, ...(localAddress ? { localAddress } : {}) }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => { body += c; });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

const basic = (password: string) => ({ authorization: `Basic ${Buffer.from(`me:${password}`).toString('base64')}` });

describe('status server', () => {
  const servers: StatusServer[] = [];
  afterEach(async () => { await Promise.all(servers.splice(0).map((s) => s.close())); });

  async function start(opts: ConstructorParameters<typeof StatusServer>[0], host = '127.0.0.1'): Promise<string> {
    const server = new StatusServer(opts);
    servers.push(server);
    return server.listen(host, 0);
  }

  it('serves the page, its assets with a strict CSP, /status and /metrics; only reads', async () => {
    const url = await start({ snapshot: async () => ({ node: 'edge-1' }), metrics: async () => 'edgefleet_x 1\n' });
    const page = await get(url, '/');
    expect(page.status).toBe(200);
    expect(page.headers['content-type']).toContain('text/html');
    expect(page.headers['content-security-policy']).toContain("script-src 'self'");
    expect(page.body).toContain('<script src="/assets/status.js" defer></script>');
    expect(page.body).not.toMatch(/<script>|onclick=|style="/); // nothing inline: the CSP forbids it
    const js = await get(url, '/assets/status.js');
    expect(js.headers['content-type']).toContain('text/javascript');
    expect(js.body).toContain("fetch('/status'");
    expect((await get(url, '/assets/status.css')).status).toBe(200);
    expect(JSON.parse((await get(url, '/status')).body)).toEqual({ node: 'edge-1' });
    const metrics = await get(url, '/metrics');
    expect(metrics.headers['content-type']).toContain('text/plain; version=0.0.4');
    expect(metrics.body).toBe('edgefleet_x 1\n');
    expect((await get(url, '/status', {}, 'POST')).status).toBe(405);
    expect((await get(url, '/assets/../../config.ts')).status).toBe(404);
    expect((await get(url, '/nope')).status).toBe(404);
  });

  it('with a password: page, status and metrics need Basic auth; healthz and own-credential routes do not', async () => {
    const server = new StatusServer({ snapshot: () => ({ ok: 1 }), metrics: async () => '', password: 'correct-horse', realm: 'edgecore edge-1' });
    servers.push(server);
    server.addRoute((path) => (path === '/mapper/v1/devices' ? { status: 401, body: { error: 'mapper credential' } } : undefined));
    const url = await server.listen('127.0.0.1', 0);
    for (const path of ['/', '/status', '/metrics', '/assets/status.js']) {
      const denied = await get(url, path);
      expect(denied.status, path).toBe(401);
      expect(denied.headers['www-authenticate']).toBe('Basic realm="edgecore edge-1", charset="UTF-8"');
      expect((await get(url, path, basic('wrong-horse'))).status, path).toBe(401);
      expect((await get(url, path, basic('correct-horse'))).status, path).toBe(200);
    }
    expect((await get(url, '/healthz')).status).toBe(200);
    expect(JSON.parse((await get(url, '/mapper/v1/devices')).body)).toEqual({ error: 'mapper credential' });
  });

  it('a client that keeps sending wrong passwords is refused (429) for a while; others and a mistyping engineer are not', async () => {
    let now = 0;
    const server = new StatusServer({ snapshot: () => ({ ok: 1 }), password: 'correct-horse', authThrottle: new FailureThrottle({ maxFailures: 3, windowMs: 60_000, now: () => now }) });
    servers.push(server);
    const url = await server.listen('127.0.0.1', 0);
    // Requests without credentials (the browser asking for the prompt) are not guesses.
    for (let i = 0; i < 5; i++) expect((await get(url, '/status', {}, 'GET', '127.0.0.2')).status).toBe(401);
    // Two typos, then the right password: in, and the record is cleared.
    for (let i = 0; i < 2; i++) expect((await get(url, '/status', basic('wrong-horse'), 'GET', '127.0.0.2')).status).toBe(401);
    expect((await get(url, '/status', basic('correct-horse'), 'GET', '127.0.0.2')).status).toBe(200);
    // A guesser from another address: three wrong passwords, then even the right one is refused.
    for (let i = 0; i < 3; i++) expect((await get(url, '/status', basic(`guess-${i}-xx`), 'GET', '127.0.0.3')).status).toBe(401);
    const refused = await get(url, '/status', basic('correct-horse'), 'GET', '127.0.0.3');
    expect(refused.status).toBe(429);
    expect(refused.headers['retry-after']).toBe('60');
    expect(JSON.parse(refused.body).error).toMatch(/too many wrong local passwords from 127\.0\.0\.3; try again in 60 s/);
    // The engineer at 127.0.0.2 is not affected.
    expect((await get(url, '/status', basic('correct-horse'), 'GET', '127.0.0.2')).status).toBe(200);
    // A window later the guesser's failures have aged out.
    now += 60_000;
    expect((await get(url, '/status', basic('correct-horse'), 'GET', '127.0.0.3')).status).toBe(200);
  });

  it('without a password it will not listen on a non-loopback address (refused before binding)', async () => {
    const server = new StatusServer({ snapshot: () => ({}) });
    await expect(server.listen('0.0.0.0', 0)).rejects.toThrow(/not a loopback address, without a password: set --status-password-file/);
    await expect(server.listen('::', 0)).rejects.toThrow(/not a loopback address/);
    // 127.0.0.2 is loopback too: allowed without a password.
    const url = await start({ snapshot: () => ({ ok: true }) }, '127.0.0.2');
    expect(url).toMatch(/^http:\/\/127\.0\.0\.2:\d+$/);
    expect((await get(url, '/status')).status).toBe(200);
  });

  it('bound to loopback without a password, it answers only to loopback Host names (DNS rebinding)', async () => {
    const url = await start({ snapshot: () => ({ ok: true }) });
    expect((await get(url, '/status', { host: 'attacker.example' })).status).toBe(421);
    expect((await get(url, '/status', { host: `localhost:${new URL(url).port}` })).status).toBe(200);
  });

  it('extra routes (the mapper device list) sit behind the same Host check and failure throttle', async () => {
    const server = new StatusServer({ snapshot: () => ({ ok: true }), authThrottle: new FailureThrottle({ maxFailures: 3, windowMs: 60_000 }) });
    servers.push(server);
    server.addRoute((path, _url, req) => {
      if (path !== '/mapper/v1/devices') return undefined;
      return req.headers.authorization === basic('mapper-secret').authorization ? { status: 200, body: { devices: [] } } : { status: 401, body: { error: 'mapper credential' } };
    });
    const url = await server.listen('127.0.0.1', 0);
    expect((await get(url, '/mapper/v1/devices', { host: 'attacker.example', ...basic('mapper-secret') })).status).toBe(421);
    for (let i = 0; i < 3; i++) expect((await get(url, '/mapper/v1/devices', basic(`guess-${i}`), 'GET', '127.0.0.3')).status).toBe(401);
    const refused = await get(url, '/mapper/v1/devices', basic('mapper-secret'), 'GET', '127.0.0.3');
    expect(refused.status).toBe(429);
    expect(refused.headers['retry-after']).toBe('60');
    // The page is refused to that address too (one throttle); another address is served.
    expect((await get(url, '/status', {}, 'GET', '127.0.0.3')).status).toBe(429);
    expect((await get(url, '/mapper/v1/devices', basic('mapper-secret'), 'GET', '127.0.0.4')).status).toBe(200);
  });
});
