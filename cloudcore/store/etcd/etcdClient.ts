import { readFile } from 'node:fs/promises';
import { circuitBreaker, ConsecutiveBreaker, handleWhen, type IDefaultPolicyContext, type IPolicy } from 'cockatiel';
import { Etcd3, GRPCDeadlineExceededError, isRecoverableError, type IOptions } from 'etcd3';

/**
 * The etcd3 client as EdgeFleet opens it, and the parse of its settings. Every message names the
 * setting an operator fixes (`--etcd-endpoints`, `--etcd-ca`, `--etcd-cert`/`--etcd-key`).
 */

/** PEM files for TLS to etcd: the CA that signed the members' certificates, and an optional client certificate. */
export interface EtcdTlsFiles {
  caFile?: string;
  certFile?: string;
  keyFile?: string;
}

export interface EtcdCredentials {
  rootCertificate: Buffer;
  privateKey?: Buffer;
  certChain?: Buffer;
}

/** Parses `--etcd-endpoints` entries: http(s)://host:port, one scheme for all (one TLS setting serves every member). */
export function parseEtcdEndpoints(endpoints: readonly string[]): { urls: URL[]; secure: boolean } {
  if (endpoints.length === 0) throw new Error('--etcd-endpoints is empty: give the client URLs of the etcd members, e.g. http://127.0.0.1:2379');
  const urls = endpoints.map((raw) => {
    let url: URL;
    try {
      url = new URL(raw.trim());
    } catch {
      throw new Error(`--etcd-endpoints: ${JSON.stringify(raw)} is not a URL (expected http://host:port or https://host:port)`);
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') {
      throw new Error(`--etcd-endpoints: ${raw} must start with http:// or https://`);
    }
    if (url.port === '' || (url.pathname !== '/' && url.pathname !== '') || url.search || url.username) {
      throw new Error(`--etcd-endpoints: ${raw} must be scheme://host:port, with the port and nothing after it`);
    }
    return url;
  });
  const secure = urls[0]!.protocol === 'https:';
  const mixed = urls.find((u) => (u.protocol === 'https:') !== secure);
  if (mixed) throw new Error(`--etcd-endpoints mixes http:// and https:// (${mixed.href}): every member must be reached the same way`);
  return { urls, secure };
}

export async function readEtcdCredentials(tls: EtcdTlsFiles | undefined, secure: boolean): Promise<EtcdCredentials | undefined> {
  if (!tls || (!tls.caFile && !tls.certFile && !tls.keyFile)) return undefined;
  if (Boolean(tls.certFile) !== Boolean(tls.keyFile)) {
    throw new Error(`--etcd-cert and --etcd-key go together: ${tls.certFile ? '--etcd-key' : '--etcd-cert'} is missing`);
  }
  if (!secure) throw new Error('--etcd-ca/--etcd-cert/--etcd-key are set but --etcd-endpoints are http://: use https:// endpoints for TLS');
  if (!tls.caFile) throw new Error('--etcd-cert/--etcd-key need --etcd-ca (the CA that signed the etcd members\' certificates)');
  const read = async (file: string, setting: string) => {
    try {
      return await readFile(file);
    } catch (error) {
      throw new Error(`${setting} ${file}: ${(error as Error).message}`);
    }
  };
  return {
    rootCertificate: await read(tls.caFile, '--etcd-ca'),
    privateKey: tls.keyFile ? await read(tls.keyFile, '--etcd-key') : undefined,
    certChain: tls.certFile ? await read(tls.certFile, '--etcd-cert') : undefined,
  };
}

/**
 * `attemptTimeoutMs` bounds each attempt on one member: etcd3 tries members in turn (and retries
 * the round), so an attempt stuck on a member that just died must not eat the whole deadline the
 * caller has (EtcdCalls puts that one around the call).
 */
export function newEtcdClient(endpoints: readonly string[], credentials: EtcdCredentials | undefined, attemptTimeoutMs: number): Etcd3 {
  const options: IOptions = {
    hosts: [...endpoints],
    dialTimeout: attemptTimeoutMs,
    defaultCallOptions: (context) => (context.isStream ? {} : { deadline: Date.now() + attemptTimeoutMs }),
    faultHandling: { watchBackoff: new WatchStreamBackoff(WATCH_RECONNECT_FIRST_MS), host: () => new MemberPolicy() },
  };
  if (credentials) options.credentials = credentials;
  // gRPC's default 4 MiB answer limit is one Node list of ~10,000 nodes with status: a fleet's
  // lists must fit (etcd itself sends any size; requests stay bounded by --max-request-bytes).
  options.grpcOptions = { 'grpc.max_receive_message_length': MAX_ANSWER_BYTES };
  const client = new Etcd3(options);
  ignoreStrayWatchResponses(client);
  return client;
}

const MAX_ANSWER_BYTES = 512 * 1024 * 1024;

/**
 * etcd3 1.1.2 throws, inside its watch stream's data handler, when an event arrives for a watch it
 * has just cancelled ("Failed to find watcher for IWatchResponse"): an uncaught exception that
 * ended a replica taking over 5,000 links (bench:fanout). Such an event belongs to nobody, so it
 * is dropped; any other error is thrown as before.
 */
function ignoreStrayWatchResponses(client: Etcd3): void {
  const manager = (client as unknown as { watchManager?: { handleResponse?: (res: unknown) => void } }).watchManager;
  const original = manager?.handleResponse;
  if (!manager || typeof original !== 'function') return;
  manager.handleResponse = (res: unknown) => {
    try {
      original.call(manager, res);
    } catch (err) {
      if (err instanceof Error && err.message.includes('Failed to find watcher')) return;
      throw err;
    }
  };
}

const WATCH_RECONNECT_FIRST_MS = 100;
const WATCH_RECONNECT_MAX_MS = 1000;

/**
 * How soon etcd3 opens the shared watch stream again after it broke: doubling from 100 ms, at
 * most 1 s apart. etcd3's default grows to 30 s, so a stream that broke while two members were
 * down came back long after quorum did, past a watch's outage allowance (seen as a flaky test).
 * A retry only opens a stream to some member: cheap enough to do every second.
 */
class WatchStreamBackoff {
  constructor(readonly duration: number) {}

  next(): WatchStreamBackoff {
    return new WatchStreamBackoff(Math.min(this.duration * 2, WATCH_RECONNECT_MAX_MS));
  }
}

/** Thrown for an attempt that ran past its deadline: a slow answer, not a sick member (see MemberPolicy). */
export class AttemptTimedOutError extends Error {}

/**
 * etcd3's per-member policy, with one change: an attempt that ran past its deadline does not
 * count against the member. etcd3 answers every "recoverable" error of a member by closing all
 * of its gRPC channels (the shared watch stream with them) and opens its circuit breaker after 3
 * in a row. Under load, answers slower than the attempt deadline are normal, and that reaction
 * turned them into a spiral: every watch re-opened and replayed, every member shut for 5 s,
 * leases lost (30,000 nodes over 3 replicas: "the circuit breaker is open" on all three). A
 * refused or dropped connection still trips the breaker, as etcd3 meant.
 */
class MemberPolicy implements IPolicy<IDefaultPolicyContext> {
  declare readonly _altReturn: never;
  private readonly breaker = circuitBreaker(handleWhen((error) => isRecoverableError(error) && !(error instanceof GRPCDeadlineExceededError)), {
    halfOpenAfter: 5_000, breaker: new ConsecutiveBreaker(3),
  });
  readonly onSuccess = this.breaker.onSuccess;
  readonly onFailure = this.breaker.onFailure;

  async execute<T>(fn: (context: IDefaultPolicyContext) => PromiseLike<T> | T, signal?: AbortSignal): Promise<T> {
    try {
      return await this.breaker.execute(fn, signal);
    } catch (error) {
      // Not recoverable in etcd3's eyes, so it keeps the member's channels; the message keeps
      // DEADLINE_EXCEEDED for callers that retry on it.
      if (error instanceof GRPCDeadlineExceededError) throw new AttemptTimedOutError(error.message);
      throw error;
    }
  }
}
