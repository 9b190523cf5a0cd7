import type { FastifyInstance, FastifyReply } from 'fastify';
import { DIST_PATHS, DistIndexSchema, ReleaseVersionSchema } from '../../protocol/index.js';
import { ApiError } from '../http/apiError.js';
import { errorBody } from '../http/apiError.js';
import { StreamLimitError, type StreamSlots } from '../limits/streamSlots.js';
import type { ReleaseCatalog } from './catalog.js';
import { cloudUrlFromHost, InstallerError, renderInstaller } from './installer.js';
import { parseRange } from './range.js';

/**
 * The public release routes (no auth: a node that is being installed has no identity yet, and
 * what is served is signed): `GET /dist/index.json`, `GET /dist/<version>/<file>` with one byte
 * range (resumable downloads) and `GET /install.sh`. Like the other public routes they are
 * bounded by the per-address connection cap at accept; a download is also a long response, so
 * it holds one of its address's stream slots while it runs (429 past maxStreamsPerAddress).
 */
export interface DistPluginOptions {
  catalog: ReleaseCatalog;
  streamSlots: StreamSlots;
  /** deploy/install.sh as shipped, with its marks to fill in. */
  installerTemplate: string;
  scheme: 'http' | 'https';
}

/** A file name in a URL: one path segment of the characters release files use. */
const FILE_NAME = /^[A-Za-z0-9][A-Za-z0-9._+-]{0,127}$/;

export async function distPlugin(app: FastifyInstance, opts: DistPluginOptions): Promise<void> {
  const { catalog, streamSlots } = opts;

  app.get(DIST_PATHS.index, async (_request, reply) => {
    await catalog.refresh();
    return reply.header('cache-control', 'no-cache').type('application/json').send(JSON.stringify(DistIndexSchema.parse(catalog.index())));
  });

  app.get<{ Params: { version: string; file: string } }>('/dist/:version/:file', async (request, reply) => {
    const { version, file } = request.params;
    if (!ReleaseVersionSchema.safeParse(version).success) throw new ApiError(400, `"${version.slice(0, 80)}" is not a release version`, 'version');
    if (!FILE_NAME.test(file) || file.includes('..')) throw new ApiError(400, `"${file.slice(0, 80)}" is not a release file name`, 'file');
    await catalog.refresh();
    let opened = await catalog.openFile(version, file);
    if (opened === 'changed') {
      // Replaced on disk since it was checked: check the directory again now, then serve what verifies.
      await catalog.refresh(true);
      opened = await catalog.openFile(version, file);
    }
    if (opened === 'unknown') throw new ApiError(404, `release ${version} has no file "${file}" (GET ${DIST_PATHS.index} lists what is served)`);
    if (opened === 'changed') throw new ApiError(503, `${file} of release ${version} changed on disk while it was being checked; try again`);
    const { file: served, handle } = opened;
    const etag = `"${served.sha256}"`;
    // If-Range with another ETag: the client's partial copy is of another file, so it gets the whole one.
    const ifRange = request.headers['if-range'];
    const range = ifRange !== undefined && ifRange !== etag ? { kind: 'whole' as const } : parseRange(request.headers.range, served.size);
    reply.header('etag', etag).header('accept-ranges', 'bytes').header('cache-control', 'no-cache').header('x-content-type-options', 'nosniff')
      .type(file.endsWith('.tar.gz') ? 'application/gzip' : 'text/plain; charset=utf-8');
    if (range.kind === 'refused') {
      await handle.close();
      return reply.code(416).header('content-range', `bytes */${served.size}`).type('application/json').send(errorBody(416, range.reason));
    }
    if (request.headers['if-none-match'] === etag && range.kind === 'whole') {
      await handle.close();
      return reply.code(304).send();
    }
    try {
      streamSlots.take(request.ip, reply.raw);
    } catch (err) {
      await handle.close();
      if (err instanceof StreamLimitError) throw new ApiError(429, err.message.replace('watch/log streams', 'streams and downloads'));
      throw err;
    }
    if (range.kind === 'part') {
      reply.code(206).header('content-range', `bytes ${range.start}-${range.end}/${served.size}`).header('content-length', range.end - range.start + 1);
      return reply.send(handle.createReadStream({ start: range.start, end: range.end }));
    }
    reply.header('content-length', served.size);
    return reply.send(handle.createReadStream());
  });

  app.get(DIST_PATHS.installer, async (request, reply: FastifyReply) => {
    await catalog.refresh();
    const newest = catalog.verified()[0];
    const key = catalog.releaseKeyPem;
    if (!key) throw new ApiError(503, 'cloudcore has no release public key (--release-public-key): it cannot hand out an installer that verifies anything');
    if (!newest) throw new ApiError(503, `no verified release in the dist dir (--dist-dir): nothing to install (GET ${DIST_PATHS.index})`);
    try {
      const script = renderInstaller(opts.installerTemplate, { cloudUrl: cloudUrlFromHost(opts.scheme, request.headers.host), version: newest.version, releaseKeyPem: key });
      return reply.header('cache-control', 'no-cache').header('x-content-type-options', 'nosniff').type('text/x-shellscript; charset=utf-8').send(script);
    } catch (err) {
      if (err instanceof InstallerError) throw new ApiError(400, err.message);
      throw err;
    }
  });
}
