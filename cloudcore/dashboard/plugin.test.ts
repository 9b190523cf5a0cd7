import Fastify from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { registerErrorHandling } from '../api/index.js';
import { dashboardPlugin } from './plugin.js';

describe('dashboard plugin (real fastify on a port)', () => {
  const app = Fastify({ logger: false });
  let origin = '';
  beforeAll(async () => {
    registerErrorHandling(app);
    await app.register(dashboardPlugin);
    origin = await app.listen({ host: '127.0.0.1', port: 0 });
  });
  afterAll(async () => app.close());

  it('serves the page with a CSP that allows exactly its import map', async () => {
    const res = await fetch(`${origin}/ui/`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toContain('text/html');
    const csp = res.headers.get('content-security-policy') ?? '';
    expect(csp).toMatch(/script-src 'self' 'sha256-[A-Za-z0-9+/=]+'/);
    expect(csp).toContain("frame-ancestors 'none'");
    expect(await res.text()).toContain('<script type="importmap">');
  });

  it('serves our modules and the vendored preact, htm and uPlot, with ETags', async () => {
    for (const path of ['js/main.js', 'js/api.js', 'style.css', 'vendor/preact.mjs', 'vendor/preact-hooks.mjs', 'vendor/htm.mjs', 'vendor/uplot.mjs', 'vendor/uplot.css']) {
      const res = await fetch(`${origin}/ui/${path}`);
      expect(res.status, path).toBe(200);
      const etag = res.headers.get('etag')!;
      expect(etag).toBeTruthy();
      expect((await fetch(`${origin}/ui/${path}`, { headers: { 'if-none-match': etag } })).status).toBe(304);
    }
    expect((await fetch(`${origin}/ui/js/main.js`)).headers.get('content-type')).toContain('text/javascript');
  });

  it('serves nothing outside its list and redirects / to /ui/', async () => {
    expect((await fetch(`${origin}/ui/../package.json`)).status).toBe(404);
    expect((await fetch(`${origin}/ui/%2e%2e/%2e%2e/package.json`)).status).toBe(404);
    expect((await fetch(`${origin}/ui/nope.js`)).status).toBe(404);
    const root = await fetch(`${origin}/`, { redirect: 'manual' });
    expect(root.status).toBe(302);
    expect(root.headers.get('location')).toBe('/ui/');
  });
});
