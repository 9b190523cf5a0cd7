import { mkdtempSync, rmSync } from 'node:fs';
import { createServer as createHttpServer, type Server as HttpServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { createServer as createNetServer, type Server as NetServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { EngineClient, EngineError, EngineUnavailableError, splitImageReference } from './engineClient.js';

/*
 * Transport and error handling against stand-in engines on real unix sockets. Behaviour
 * against a real engine is tested in test/container/ (Podman).
 */

let dir: string;
const servers: (HttpServer | NetServer)[] = [];

beforeEach(() => { dir = mkdtempSync(join(tmpdir(), 'ef-engine-client-')); });
afterEach(async () => {
  for (const server of servers.splice(0)) await new Promise((r) => server.close(() => r(undefined)));
  rmSync(dir, { recursive: true, force: true });
});

async function httpEngine(handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<string> {
  const socketPath = join(dir, `engine-${servers.length}.sock`);
  const server = createHttpServer(handler);
  servers.push(server);
  await new Promise<void>((r) => server.listen(socketPath, r));
  return socketPath;
}

describe('EngineClient transport', () => {
  it('reports a missing socket as EngineUnavailableError', async () => {
    const client = new EngineClient({ socketPath: join(dir, 'nothing.sock') });
    const err = await client.ping().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(EngineUnavailableError);
    expect((err as EngineUnavailableError).code).toBe('ENOENT');
    expect((err as Error).message).toContain('cannot reach the container engine at');
  });

  it('times out an engine that accepts but never answers', async () => {
    const socketPath = join(dir, 'silent.sock');
    const held: Socket[] = [];
    const server = createNetServer((socket) => { held.push(socket); });
    servers.push(server);
    await new Promise<void>((r) => server.listen(socketPath, r));
    const client = new EngineClient({ socketPath, timeoutMs: 200 });
    const err = await client.ping().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(EngineUnavailableError);
    expect((err as EngineUnavailableError).code).toBe('ETIMEDOUT');
    for (const socket of held) socket.destroy(); // so the server can close
  });

  it('turns an error status into EngineError with the engine message, and 404 into null where absence is normal', async () => {
    const socketPath = await httpEngine((req, res) => {
      res.statusCode = req.url?.includes('/containers/create') ? 409 : 404;
      res.setHeader('Content-Type', 'application/json');
      res.end(JSON.stringify({ message: req.url?.includes('create') ? 'name is already in use' : 'no such thing' }));
    });
    const client = new EngineClient({ socketPath });
    expect(await client.inspectContainer('x')).toBeNull();
    expect(await client.inspectImage('localhost/a:1')).toBeNull();
    expect(await client.removeContainer('x')).toBe(false);
    const err = await client.createContainer('dup', { Image: 'a' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(EngineError);
    expect((err as EngineError).statusCode).toBe(409);
    expect((err as Error).message).toBe('create container dup: name is already in use');
  });

  it('surfaces a pull failure reported inside a 200 progress stream, and sends repository and tag apart', async () => {
    const seen: string[] = [];
    const socketPath = await httpEngine((req, res) => {
      seen.push(req.url ?? '');
      res.write('{"status":"Trying to pull"}\n{"error":"manifest un');
      setTimeout(() => res.end('known","errorDetail":{"message":"manifest unknown"}}\n'), 20);
    });
    const client = new EngineClient({ socketPath });
    await expect(client.pullImage('registry.local:5000/team/app:1.2')).rejects.toThrow('pull registry.local:5000/team/app:1.2: manifest unknown');
    expect(seen[0]).toBe('/v1.41/images/create?fromImage=registry.local%3A5000%2Fteam%2Fapp&tag=1.2');
  });

  it('rejects an answer that does not have the shape we rely on', async () => {
    const socketPath = await httpEngine((_req, res) => { res.end(JSON.stringify({ Id: 'x', State: { Running: 'yes' } })); });
    await expect(new EngineClient({ socketPath }).inspectContainer('x')).rejects.toThrow(/unexpected answer from the engine/);
  });

  it('stops waiting when aborted', async () => {
    const socketPath = await httpEngine(() => {});
    const abort = new AbortController();
    const pull = new EngineClient({ socketPath }).pullImage('a:1', { signal: abort.signal });
    setTimeout(() => abort.abort(), 50);
    await expect(pull).rejects.toThrow(/aborted/);
  });
});

describe('splitImageReference', () => {
  it.each([
    ['app', 'app', 'latest'],
    ['app:1', 'app', '1'],
    ['registry.local:5000/team/app', 'registry.local:5000/team/app', 'latest'],
    ['registry.local:5000/team/app:1.2', 'registry.local:5000/team/app', '1.2'],
    [`app@sha256:${'a'.repeat(64)}`, 'app', `sha256:${'a'.repeat(64)}`],
  ])('%s', (ref, repository, tag) => {
    expect(splitImageReference(ref)).toEqual({ repository, tag });
  });
});
