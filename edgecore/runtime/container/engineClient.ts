import { createReadStream } from 'node:fs';
import { request, type IncomingMessage } from 'node:http';
import type { Readable } from 'node:stream';
import { z } from 'zod';
import type { ExecResult } from '../runtime.js';
import {
  CappedBuffer, FrameLineSplitter, framesToLines, JsonLinesDecoder, progressError, StreamDemuxer, type StreamFrame,
} from './engineStream.js';
import {
  ContainerInspectSchema, ContainerSummarySchema, EngineVersionSchema, ErrorBodySchema, ExecInspectSchema, IdResponseSchema, ImageInspectSchema,
  type ContainerCreateBody, type ContainerInspect, type ContainerSummary, type EngineVersion, type ImageInspect,
} from './engineTypes.js';

export * from './engineTypes.js';

/**
 * A small typed client of the Docker Engine API (v1.41, also served by Podman's compat API)
 * over a unix socket. Only the calls the container runtime and `edgectl exec` need. Responses
 * we rely on are checked with zod; fields we do not read are dropped.
 *
 * Two error kinds, because the runtime reacts differently: `EngineError` (the engine answered
 * and refused: missing image, bad request, name conflict) and `EngineUnavailableError` (no
 * answer: the engine is down, restarting, or too slow).
 */

export const ENGINE_API_VERSION = '1.41';
const DEFAULT_TIMEOUT_MS = 30_000;
const DEFAULT_PULL_TIMEOUT_MS = 15 * 60_000;

export class EngineError extends Error {
  constructor(message: string, readonly statusCode: number) {
    super(message);
    this.name = 'EngineError';
  }
}

export class EngineUnavailableError extends Error {
  constructor(message: string, readonly code: string | undefined) {
    super(message);
    this.name = 'EngineUnavailableError';
  }
}

interface RequestOptions {
  query?: Record<string, string | number | boolean | undefined>;
  json?: unknown;
  body?: Readable;
  contentType?: string;
  timeoutMs?: number;
  signal?: AbortSignal;
  /** Streams the body of a successful response here instead of buffering it. */
  onChunk?: (chunk: Buffer) => void;
}

interface EngineResponse { statusCode: number; body: Buffer }

export interface EngineClientOptions {
  socketPath: string;
  /** Per-call timeout (pulls and loads use `pullTimeoutMs`). Default 30 s. */
  timeoutMs?: number;
  pullTimeoutMs?: number;
}

export class EngineClient {
  readonly socketPath: string;
  private readonly timeoutMs: number;
  private readonly pullTimeoutMs: number;

  constructor(opts: EngineClientOptions) {
    this.socketPath = opts.socketPath;
    this.timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    this.pullTimeoutMs = opts.pullTimeoutMs ?? DEFAULT_PULL_TIMEOUT_MS;
  }

  async ping(): Promise<void> {
    const res = await this.call('GET', '/_ping');
    expectStatus(res, [200], 'ping');
  }

  async version(): Promise<EngineVersion> {
    return parse(EngineVersionSchema, await this.call('GET', '/version'), 'version');
  }

  /** The image, or null when the engine does not have it. */
  async inspectImage(ref: string): Promise<ImageInspect | null> {
    const res = await this.call('GET', `/images/${encodeURI(ref)}/json`);
    if (res.statusCode === 404) return null;
    return parse(ImageInspectSchema, res, `inspect image ${ref}`);
  }

  /** Pulls `ref`, waiting until the engine is done; a failure reported mid-stream throws. */
  async pullImage(ref: string, opts: { signal?: AbortSignal; onProgress?: (message: unknown) => void } = {}): Promise<void> {
    const { repository, tag } = splitImageReference(ref);
    const decoder = new JsonLinesDecoder();
    let failure: string | null = null;
    const seen = (messages: unknown[]): void => {
      for (const message of messages) {
        failure ??= progressError(message);
        opts.onProgress?.(message);
      }
    };
    const res = await this.call('POST', '/images/create', {
      query: { fromImage: repository, tag },
      timeoutMs: this.pullTimeoutMs,
      signal: opts.signal,
      onChunk: (chunk) => seen(decoder.push(chunk)),
    });
    expectStatus(res, [200], `pull ${ref}`);
    seen(decoder.flush());
    if (failure !== null) throw new EngineError(`pull ${ref}: ${failure}`, 500);
  }

  /** Loads a `docker save` / `podman save` tarball; returns the engine's "Loaded image" lines. */
  async loadImage(archivePath: string, opts: { signal?: AbortSignal } = {}): Promise<string[]> {
    const decoder = new JsonLinesDecoder();
    const messages: unknown[] = [];
    const res = await this.call('POST', '/images/load', {
      query: { quiet: 1 },
      body: createReadStream(archivePath),
      contentType: 'application/x-tar',
      timeoutMs: this.pullTimeoutMs,
      signal: opts.signal,
      onChunk: (chunk) => messages.push(...decoder.push(chunk)),
    });
    expectStatus(res, [200], `load ${archivePath}`);
    messages.push(...decoder.flush());
    const failure = messages.map(progressError).find((m) => m !== null);
    if (failure) throw new EngineError(`load ${archivePath}: ${failure}`, 500);
    return messages.flatMap((m) => {
      const text = m !== null && typeof m === 'object' ? (m as Record<string, unknown>).stream : undefined;
      return typeof text === 'string' && text.trim() !== '' ? [text.trim()] : [];
    });
  }

  async createContainer(name: string, body: ContainerCreateBody): Promise<string> {
    const res = await this.call('POST', '/containers/create', { query: { name }, json: body });
    return parse(IdResponseSchema, res, `create container ${name}`, [201, 200]).Id;
  }

  /** Starts a created or exited container; starting a running one is a no-op (304). */
  async startContainer(id: string): Promise<void> {
    expectStatus(await this.call('POST', `/containers/${encodeURIComponent(id)}/start`), [204, 304], `start ${id}`);
  }

  /** SIGTERM (or the image's stop signal), SIGKILL after `graceSeconds`. */
  async stopContainer(id: string, graceSeconds: number): Promise<void> {
    const res = await this.call('POST', `/containers/${encodeURIComponent(id)}/stop`, {
      query: { t: graceSeconds },
      timeoutMs: this.timeoutMs + graceSeconds * 1000,
    });
    expectStatus(res, [204, 304], `stop ${id}`);
  }

  async killContainer(id: string, signal = 'SIGKILL'): Promise<void> {
    expectStatus(await this.call('POST', `/containers/${encodeURIComponent(id)}/kill`, { query: { signal } }), [204], `kill ${id}`);
  }

  /** Removes the container (killing it if `force`); false when it was already gone. */
  async removeContainer(id: string, opts: { force?: boolean } = {}): Promise<boolean> {
    const res = await this.call('DELETE', `/containers/${encodeURIComponent(id)}`, { query: { force: opts.force ?? false, v: true } });
    if (res.statusCode === 404) return false;
    expectStatus(res, [204, 200], `remove ${id}`);
    return true;
  }

  /** The container, or null when there is none with that id or name. */
  async inspectContainer(id: string): Promise<ContainerInspect | null> {
    const res = await this.call('GET', `/containers/${encodeURIComponent(id)}/json`);
    if (res.statusCode === 404) return null;
    return parse(ContainerInspectSchema, res, `inspect ${id}`);
  }

  /** Containers, running or not, carrying every `key=value` (or bare `key`) label given. */
  async listContainers(opts: { labels?: string[]; all?: boolean } = {}): Promise<ContainerSummary[]> {
    const filters = opts.labels && opts.labels.length > 0 ? JSON.stringify({ label: opts.labels }) : undefined;
    const res = await this.call('GET', '/containers/json', { query: { all: opts.all ?? true, filters } });
    return parse(z.array(ContainerSummarySchema), res, 'list containers');
  }

  /** The last `tail` lines of a container's stdout and stderr, interleaved as written. */
  async containerLogs(id: string, opts: { tail: number; tty?: boolean }): Promise<string[]> {
    const res = await this.call('GET', `/containers/${encodeURIComponent(id)}/logs`, {
      query: { stdout: 1, stderr: 1, tail: Math.max(0, Math.floor(opts.tail)) },
    });
    expectStatus(res, [200], `logs ${id}`);
    const frames: StreamFrame[] = opts.tty ? [{ stream: 'stdout', data: res.body }] : new StreamDemuxer().push(res.body);
    const lines = framesToLines(frames);
    return opts.tail <= 0 ? [] : lines.slice(-opts.tail);
  }

  async createExec(containerId: string, opts: { cmd: string[]; env?: string[]; workingDir?: string; user?: string }): Promise<string> {
    const res = await this.call('POST', `/containers/${encodeURIComponent(containerId)}/exec`, {
      json: { Cmd: opts.cmd, Env: opts.env, WorkingDir: opts.workingDir, User: opts.user, AttachStdout: true, AttachStderr: true, Tty: false },
    });
    return parse(IdResponseSchema, res, `exec in ${containerId}`, [201, 200]).Id;
  }

  /** Runs a created exec to its end, handing its output frames to `onFrame` as they come. */
  async startExec(execId: string, opts: { onFrame: (frame: StreamFrame) => void; timeoutMs?: number; signal?: AbortSignal }): Promise<void> {
    const demuxer = new StreamDemuxer();
    const res = await this.call('POST', `/exec/${encodeURIComponent(execId)}/start`, {
      json: { Detach: false, Tty: false },
      timeoutMs: opts.timeoutMs,
      signal: opts.signal,
      onChunk: (chunk) => { for (const frame of demuxer.push(chunk)) opts.onFrame(frame); },
    });
    expectStatus(res, [200], `start exec ${execId}`);
  }

  async inspectExec(execId: string): Promise<{ running: boolean; exitCode: number | null; pid: number }> {
    const info = parse(ExecInspectSchema, await this.call('GET', `/exec/${encodeURIComponent(execId)}/json`), `inspect exec ${execId}`);
    return { running: info.Running, exitCode: info.ExitCode, pid: info.Pid ?? 0 };
  }

  /**
   * Runs `cmd` in a running container and waits for its exit code. Output beyond
   * `maxOutputBytes` per stream is cut. A command still running after `timeoutMs` is SIGKILLed
   * through its host pid when the engine reports one (the Docker API has no exec kill; this
   * works where edgecore shares the engine's pid namespace) and reported `timedOut`.
   */
  async runExec(containerId: string, cmd: string[], opts: { timeoutMs: number; maxOutputBytes: number }): Promise<ExecResult> {
    const execId = await this.createExec(containerId, { cmd });
    const out = new CappedBuffer(opts.maxOutputBytes);
    const err = new CappedBuffer(opts.maxOutputBytes);
    const abort = new AbortController();
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      void this.inspectExec(execId)
        .then((info) => { if (info.running && info.pid > 0) process.kill(info.pid, 'SIGKILL'); })
        .catch(() => {})
        .finally(() => abort.abort());
    }, opts.timeoutMs);
    try {
      await this.startExec(execId, {
        timeoutMs: opts.timeoutMs + 10_000,
        signal: abort.signal,
        onFrame: (frame) => (frame.stream === 'stderr' ? err : out).add(frame.data),
      });
    } catch (e) {
      if (!timedOut) throw e;
    } finally {
      clearTimeout(timer);
    }
    // The output stream can close a moment before the engine records the exit code.
    const deadline = Date.now() + 5_000;
    let info = await this.inspectExec(execId);
    while (info.running && !timedOut && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 50));
      info = await this.inspectExec(execId);
    }
    return { exitCode: info.running ? null : info.exitCode, stdout: out.text(), stderr: err.text(), timedOut };
  }

  /**
   * Streams a container's log lines (stdout and stderr) to `onLines` until the container stops,
   * the engine closes the stream, or `signal` aborts. `since` is in whole Unix seconds (the
   * precision Podman keeps); `tail: 0` starts with new lines only.
   */
  async followLogs(id: string, opts: { onLines: (lines: string[]) => void; since?: number; tail?: number; signal?: AbortSignal }): Promise<void> {
    const demuxer = new StreamDemuxer();
    const splitter = new FrameLineSplitter();
    const deliver = (lines: string[]): void => { if (lines.length > 0) opts.onLines(lines); };
    const res = await this.call('GET', `/containers/${encodeURIComponent(id)}/logs`, {
      query: { follow: 1, stdout: 1, stderr: 1, since: opts.since, tail: opts.tail ?? (opts.since === undefined ? 0 : undefined) },
      timeoutMs: 2 ** 31 - 1,
      signal: opts.signal,
      onChunk: (chunk) => deliver(splitter.push(demuxer.push(chunk))),
    });
    expectStatus(res, [200], `follow logs ${id}`);
    deliver(splitter.flush());
  }

  // ---- transport ----------------------------------------------------------------------------

  private call(method: string, path: string, opts: RequestOptions = {}): Promise<EngineResponse> {
    const query = new URLSearchParams();
    for (const [key, value] of Object.entries(opts.query ?? {})) if (value !== undefined) query.set(key, String(value));
    const qs = query.toString();
    const fullPath = `/v${ENGINE_API_VERSION}${path}${qs ? `?${qs}` : ''}`;
    const payload = opts.json === undefined ? undefined : Buffer.from(JSON.stringify(opts.json));
    const headers: Record<string, string> = { Host: 'engine' };
    if (payload) Object.assign(headers, { 'Content-Type': 'application/json', 'Content-Length': String(payload.length) });
    else if (opts.body) headers['Content-Type'] = opts.contentType ?? 'application/octet-stream';
    const timeoutMs = opts.timeoutMs ?? this.timeoutMs;
    const what = `${method} ${path}`;

    return new Promise<EngineResponse>((resolve, reject) => {
      let settled = false;
      const finish = (err: Error | null, res?: EngineResponse): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        opts.signal?.removeEventListener('abort', onAbort);
        if (err) reject(err);
        else if (res) resolve(res);
      };
      const req = request({ socketPath: this.socketPath, path: fullPath, method, headers }, (res: IncomingMessage) => {
        const status = res.statusCode ?? 0;
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => {
          if (opts.onChunk && status < 400) opts.onChunk(chunk);
          else chunks.push(chunk);
        });
        res.on('end', () => finish(null, { statusCode: status, body: Buffer.concat(chunks) }));
        res.on('error', (err) => finish(this.unavailable(what, err)));
        res.on('close', () => {
          // 'end' comes first when the body is complete; a close without it is a cut connection.
          if (!res.complete) finish(new EngineUnavailableError(`${what}: the engine closed the connection mid-response`, 'ECONNRESET'));
        });
      });
      const timer = setTimeout(() => {
        finish(new EngineUnavailableError(`${what}: container engine at ${this.socketPath} did not answer within ${timeoutMs} ms`, 'ETIMEDOUT'));
        req.destroy();
      }, timeoutMs);
      const onAbort = (): void => {
        finish(new Error(`${what}: aborted`));
        req.destroy();
      };
      if (opts.signal?.aborted) { onAbort(); return; }
      opts.signal?.addEventListener('abort', onAbort, { once: true });
      req.on('error', (err) => finish(this.unavailable(what, err)));
      if (payload) req.end(payload);
      else if (opts.body) {
        opts.body.on('error', (err) => { finish(new EngineError(`${what}: cannot read request body: ${err.message}`, 0)); req.destroy(); });
        opts.body.pipe(req);
      } else req.end();
    });
  }

  private unavailable(what: string, err: Error): EngineUnavailableError {
    const code = (err as NodeJS.ErrnoException).code;
    return new EngineUnavailableError(`${what}: cannot reach the container engine at ${this.socketPath}: ${err.message}`, code);
  }
}

// ---- helpers ----------------------------------------------------------------------------------

/**
 * `registry:5000/team/app:1.2` → repository `registry:5000/team/app`, tag `1.2`;
 * `app@sha256:…` → tag is the digest (the API takes either in `tag`); no tag → `latest`
 * (an empty tag would make Docker pull every tag of the repository).
 */
export function splitImageReference(ref: string): { repository: string; tag: string } {
  const at = ref.indexOf('@');
  if (at >= 0) return { repository: ref.slice(0, at), tag: ref.slice(at + 1) };
  const lastSlash = ref.lastIndexOf('/');
  const colon = ref.lastIndexOf(':');
  if (colon > lastSlash) return { repository: ref.slice(0, colon), tag: ref.slice(colon + 1) };
  return { repository: ref, tag: 'latest' };
}

function engineMessage(res: EngineResponse): string {
  const text = res.body.toString('utf8');
  try {
    const parsed = ErrorBodySchema.safeParse(JSON.parse(text));
    if (parsed.success) return parsed.data.message;
  } catch {
    // not JSON: fall through to the raw text
  }
  return text.trim() || `HTTP ${res.statusCode}`;
}

function expectStatus(res: EngineResponse, ok: number[], what: string): void {
  if (!ok.includes(res.statusCode)) throw new EngineError(`${what}: ${engineMessage(res)}`, res.statusCode);
}

function parse<T>(schema: z.ZodType<T>, res: EngineResponse, what: string, ok: number[] = [200]): T {
  expectStatus(res, ok, what);
  let json: unknown;
  try {
    json = JSON.parse(res.body.toString('utf8'));
  } catch {
    throw new EngineError(`${what}: the engine answered with non-JSON: ${res.body.toString('utf8').slice(0, 200)}`, res.statusCode);
  }
  const result = schema.safeParse(json);
  if (!result.success) throw new EngineError(`${what}: unexpected answer from the engine: ${result.error.message}`, res.statusCode);
  return result.data;
}

export function isEngineUnavailable(err: unknown): err is EngineUnavailableError {
  return err instanceof EngineUnavailableError;
}
