import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { contentSecurityPolicy, loadAssets, staticDir, type Asset } from './assets.js';
import { errorBody } from '../http/apiError.js';

/**
 * The operator dashboard at `/ui/` on cloudcore's own port (docs/dashboard.md). The files are
 * public; every piece of data comes from `/api/v1` with the operator's bearer token, which the
 * page asks for and keeps in sessionStorage. No build chain: plain ES modules, preact + htm
 * and uPlot served from node_modules, nothing from a CDN (sites may be air-gapped).
 */

export const DASHBOARD_PATH = '/ui/';

export interface DashboardOptions {
  /** Where the static files are; defaults to `static/` of the package. */
  dir?: string;
}

export async function dashboardPlugin(app: FastifyInstance, opts: DashboardOptions = {}): Promise<void> {
  const assets = loadAssets(opts.dir ?? staticDir(import.meta.dirname));
  const index = assets.get('index.html');
  if (!index) throw new Error('dashboard: index.html missing');
  const csp = contentSecurityPolicy(index.body.toString('utf8'));

  const send = (request: FastifyRequest, reply: FastifyReply, file: Asset) => {
    reply
      .header('content-type', file.contentType)
      .header('etag', file.etag)
      // Revalidate every time (cheap with the ETag): a cloudcore upgrade must not leave old modules cached.
      .header('cache-control', 'no-cache')
      .header('x-content-type-options', 'nosniff')
      .header('referrer-policy', 'no-referrer');
    if (file === index) reply.header('content-security-policy', csp).header('x-frame-options', 'DENY');
    if (request.headers['if-none-match'] === file.etag) return reply.code(304).send();
    return reply.send(file.body);
  };

  app.get('/', async (_request, reply) => reply.redirect(DASHBOARD_PATH));
  app.get('/ui', async (_request, reply) => reply.redirect(DASHBOARD_PATH));
  app.get(DASHBOARD_PATH, async (request, reply) => send(request, reply, index));
  app.get(`${DASHBOARD_PATH}*`, async (request, reply) => {
    const path = (request.params as { '*': string })['*'];
    const file = assets.get(path);
    if (!file) return reply.code(404).send(errorBody(404, `no dashboard file "${path}"`));
    return send(request, reply, file);
  });
}
