import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import type { Probe } from '../../../protocol/index.js';

/**
 * One check of each probe kind, each bounded by its timeout and cancellable by an AbortSignal:
 * - exec: the command exits 0. The runtime supplies the executor, so the process runtime runs
 *   it with the workload's env and working dir and the container runtime inside the container.
 * - httpGet: a GET answers with a status in 200–399 (redirects are not followed: a 3xx passes
 *   as it does in Kubernetes). HTTPS does not verify the certificate, as the kubelet does not:
 *   workloads commonly serve self-signed certificates.
 * - tcpSocket: a TCP connection is accepted.
 * A check never throws: every failure is a result with a reason fit for `lastError`.
 */

export interface ProbeCheckResult {
  success: boolean;
  /** Why the check failed, or what passed. */
  reason: string;
}

/** What an exec probe's executor returns; `ExecResult` of `runtime.ts` fits. */
export interface ProbeExecResult {
  exitCode: number | null;
  timedOut?: boolean;
  stdout?: string;
  stderr?: string;
}

/** Runs a probe command beside or inside the workload, killing it after `timeoutMs`. */
export type ProbeExecutor = (command: string[], timeoutMs: number) => Promise<ProbeExecResult>;

export interface ProbeEndpoint {
  host: string;
  port: number;
}

/**
 * Where a probe runs. `resolveEndpoint` maps a probe's host/port to where it can be reached
 * from edgecore (e.g. a container's address or published port); without it they are used as is.
 */
export interface ProbeTarget {
  exec: ProbeExecutor;
  resolveEndpoint?: (endpoint: ProbeEndpoint) => ProbeEndpoint | Promise<ProbeEndpoint>;
}

/** Exec probes get this much longer than their timeout for the executor to kill and report. */
const EXEC_REPORT_SLACK_MS = 2_000;
/** Output quoted in a failed exec probe's reason. */
const MAX_QUOTED_OUTPUT = 200;

/** Runs the one check `probe` defines against `target`. */
export async function runProbeCheck(probe: Probe, target: ProbeTarget, timeoutMs: number, signal?: AbortSignal): Promise<ProbeCheckResult> {
  try {
    if (probe.exec) return await execCheck(target.exec, probe.exec.command, timeoutMs, signal);
    if (probe.httpGet) {
      const { host, port } = await resolve(target, probe.httpGet);
      return await httpGetCheck({ ...probe.httpGet, host, port }, timeoutMs, signal);
    }
    if (probe.tcpSocket) return await tcpSocketCheck(await resolve(target, probe.tcpSocket), timeoutMs, signal);
    return failure('probe defines no check');
  } catch (err) {
    return failure(errorMessage(err));
  }
}

async function resolve(target: ProbeTarget, endpoint: ProbeEndpoint): Promise<ProbeEndpoint> {
  const plain = { host: endpoint.host, port: endpoint.port };
  return target.resolveEndpoint ? await target.resolveEndpoint(plain) : plain;
}

export async function execCheck(executor: ProbeExecutor, command: string[], timeoutMs: number, signal?: AbortSignal): Promise<ProbeCheckResult> {
  const shown = JSON.stringify(command);
  // The executor kills the command at `timeoutMs`; the deadline only guards against one that
  // never reports (e.g. a hung engine call), so a probe cannot stall forever.
  const result = await settleWithin(executor(command, timeoutMs), timeoutMs + EXEC_REPORT_SLACK_MS, signal);
  if (result === 'aborted') return failure('probe stopped');
  if (result === 'timeout' || result.timedOut) return failure(`command ${shown} timed out after ${timeoutMs} ms`);
  if (result.exitCode === 0) return { success: true, reason: `command ${shown} exited with code 0` };
  const ending = result.exitCode === null ? 'did not exit normally' : `exited with code ${result.exitCode}`;
  const output = quoteOutput(`${result.stdout ?? ''}\n${result.stderr ?? ''}`);
  return failure(`command ${shown} ${ending}${output === '' ? '' : `: ${output}`}`);
}

export function httpGetCheck(
  get: { host: string; port: number; path: string; scheme: 'HTTP' | 'HTTPS' },
  timeoutMs: number,
  signal?: AbortSignal,
): Promise<ProbeCheckResult> {
  const url = `${get.scheme.toLowerCase()}://${formatHost(get.host)}:${get.port}${get.path}`;
  return new Promise((resolvePromise) => {
    const options: https.RequestOptions = {
      hostname: get.host, port: get.port, path: get.path, method: 'GET',
      // A fresh connection per check, closed after: no pooled socket outlives the check.
      agent: false,
      headers: { 'user-agent': 'edgefleet-probe/1', accept: '*/*', connection: 'close' },
    };
    const request = get.scheme === 'HTTPS'
      ? https.request({ ...options, rejectUnauthorized: false })
      : http.request(options);
    const finish = bounded(timeoutMs, signal, (result) => {
      request.destroy();
      resolvePromise(result);
    }, `HTTP GET ${url}`);
    request.on('response', (response) => {
      response.on('error', () => {}); // destroyed below on purpose
      response.resume();
      const status = response.statusCode ?? 0;
      finish(status >= 200 && status < 400
        ? { success: true, reason: `HTTP GET ${url}: status ${status}` }
        : failure(`HTTP GET ${url}: status ${status}`));
    });
    request.on('error', (err) => finish(failure(`HTTP GET ${url}: ${err.message}`)));
    request.end();
  });
}

export function tcpSocketCheck(endpoint: ProbeEndpoint, timeoutMs: number, signal?: AbortSignal): Promise<ProbeCheckResult> {
  const address = `${formatHost(endpoint.host)}:${endpoint.port}`;
  return new Promise((resolvePromise) => {
    const socket = net.connect({ host: endpoint.host, port: endpoint.port });
    const finish = bounded(timeoutMs, signal, (result) => {
      socket.destroy();
      resolvePromise(result);
    }, `TCP connect to ${address}`);
    socket.on('connect', () => finish({ success: true, reason: `TCP connect to ${address}: connected` }));
    socket.on('error', (err) => finish(failure(`TCP connect to ${address}: ${err.message}`)));
  });
}

/**
 * Wraps `done` so it runs once: with the first result, after `timeoutMs` with a timeout failure,
 * or on abort. The timer and abort listener are removed when it runs.
 */
function bounded(timeoutMs: number, signal: AbortSignal | undefined, done: (result: ProbeCheckResult) => void, what: string): (result: ProbeCheckResult) => void {
  let settled = false;
  const finish = (result: ProbeCheckResult): void => {
    if (settled) return;
    settled = true;
    clearTimeout(timer);
    signal?.removeEventListener('abort', onAbort);
    done(result);
  };
  const onAbort = (): void => finish(failure('probe stopped'));
  const timer = setTimeout(() => finish(failure(`${what}: timed out after ${timeoutMs} ms`)), timeoutMs);
  if (signal?.aborted) queueMicrotask(onAbort);
  else signal?.addEventListener('abort', onAbort, { once: true });
  return finish;
}

/** The promise's value, 'timeout' after `ms`, or 'aborted' when `signal` fires; a rejection throws. */
async function settleWithin<T>(promise: Promise<T>, ms: number, signal?: AbortSignal): Promise<T | 'timeout' | 'aborted'> {
  let timer: NodeJS.Timeout | undefined;
  let onAbort = (): void => {};
  const stop = new Promise<'timeout' | 'aborted'>((resolvePromise) => {
    timer = setTimeout(() => resolvePromise('timeout'), ms);
    onAbort = () => resolvePromise('aborted');
    if (signal?.aborted) onAbort();
    else signal?.addEventListener('abort', onAbort, { once: true });
  });
  try {
    return await Promise.race([promise, stop]);
  } finally {
    clearTimeout(timer);
    signal?.removeEventListener('abort', onAbort);
  }
}

function quoteOutput(text: string): string {
  const oneLine = text.replace(/\s+/g, ' ').trim();
  return oneLine.length > MAX_QUOTED_OUTPUT ? `${oneLine.slice(0, MAX_QUOTED_OUTPUT)}…` : oneLine;
}

function formatHost(host: string): string {
  return net.isIPv6(host) ? `[${host}]` : host;
}

function failure(reason: string): ProbeCheckResult {
  return { success: false, reason };
}

function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
