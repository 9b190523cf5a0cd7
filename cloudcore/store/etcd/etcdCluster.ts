import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { connect as tlsConnect } from 'node:tls';
import type { IStatusResponse } from 'etcd3';
import { newEtcdClient, parseEtcdEndpoints, readEtcdCredentials, type EtcdCredentials, type EtcdTlsFiles } from './etcdClient.js';
import { DEFAULT_CALL_TIMEOUT_MS } from './etcdStore.js';

/**
 * Startup validation of the etcd settings, before cloudcore serves: every endpoint answers, as
 * etcd, over the transport the settings say, and all of them are members of ONE cluster. Each
 * failure is an Error naming the setting to fix (`--etcd-endpoints`, `--etcd-ca`,
 * `--etcd-cert`/`--etcd-key`) and the endpoint. A transport probe (GET /version over http(s))
 * comes first because its errors say precisely what is wrong with TLS, which a gRPC
 * "UNAVAILABLE" does not.
 */

export interface EtcdClusterCheckOptions {
  endpoints: string[];
  tls?: EtcdTlsFiles;
  callTimeoutMs?: number;
}

export interface EtcdClusterInfo {
  /** etcd's cluster id, in hex as etcdctl shows it. */
  clusterId: string;
  /** Members of the cluster (all of them, not only the endpoints given). */
  members: number;
  /** etcd version of the first endpoint. */
  version: string;
  /** Whether the first endpoint sees a leader (false: no quorum right now; writes would answer 503). */
  hasLeader: boolean;
}

export async function checkEtcdCluster(opts: EtcdClusterCheckOptions): Promise<EtcdClusterInfo> {
  const timeoutMs = opts.callTimeoutMs ?? DEFAULT_CALL_TIMEOUT_MS;
  const { urls, secure } = parseEtcdEndpoints(opts.endpoints);
  const credentials = await readEtcdCredentials(opts.tls, secure);
  for (const url of urls) await probeTransport(url, credentials, opts.tls, timeoutMs);

  const statuses: { url: URL; status: IStatusResponse }[] = [];
  for (const url of urls) statuses.push({ url, status: await statusOf(url, credentials, timeoutMs) });
  const first = statuses[0]!;
  const clusterId = first.status.header.cluster_id;
  const members = await memberIdsOf(first.url, credentials, timeoutMs);
  for (const { url, status } of statuses) {
    if (status.header.cluster_id !== clusterId) {
      throw new Error(`--etcd-endpoints: ${origin(url)} belongs to etcd cluster ${hex(status.header.cluster_id)}, not to cluster ${hex(clusterId)} of ${origin(first.url)}: every endpoint must be a member of one cluster`);
    }
    if (!members.includes(status.header.member_id)) {
      throw new Error(`--etcd-endpoints: ${origin(url)} (member ${hex(status.header.member_id)}) is not a member of cluster ${hex(clusterId)} (members: ${members.map(hex).join(', ')})`);
    }
  }
  return { clusterId: hex(clusterId), members: members.length, version: first.status.version, hasLeader: first.status.leader !== '0' };
}

async function statusOf(url: URL, credentials: EtcdCredentials | undefined, timeoutMs: number): Promise<IStatusResponse> {
  const client = newEtcdClient([origin(url)], credentials, timeoutMs);
  try {
    return await client.maintenance.status({ deadline: Date.now() + timeoutMs });
  } catch (error) {
    throw new Error(`--etcd-endpoints: etcd at ${origin(url)} did not answer its status over gRPC within ${seconds(timeoutMs)}: ${(error as Error).message}`);
  } finally {
    client.close();
  }
}

async function memberIdsOf(url: URL, credentials: EtcdCredentials | undefined, timeoutMs: number): Promise<string[]> {
  const client = newEtcdClient([origin(url)], credentials, timeoutMs);
  try {
    return (await client.cluster.memberList({}, { deadline: Date.now() + timeoutMs })).members.map((m) => m.ID);
  } catch (error) {
    throw new Error(`--etcd-endpoints: etcd at ${origin(url)} did not list its cluster's members within ${seconds(timeoutMs)}: ${(error as Error).message}`);
  } finally {
    client.close();
  }
}

const CA_PROBLEMS = new Set([
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'SELF_SIGNED_CERT_IN_CHAIN', 'DEPTH_ZERO_SELF_SIGNED_CERT', 'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY', 'CERT_SIGNATURE_FAILURE', 'CERT_UNTRUSTED', 'CERT_HAS_EXPIRED', 'CERT_NOT_YET_VALID',
]);

/** GET /version over the endpoint's own scheme, mapping each way it can fail to the setting at fault. */
async function probeTransport(url: URL, credentials: EtcdCredentials | undefined, tls: EtcdTlsFiles | undefined, timeoutMs: number): Promise<void> {
  const where = origin(url);
  let answer: { status: number; body: string };
  try {
    answer = await getVersion(url, credentials, timeoutMs);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? '';
    const message = (error as Error).message;
    if (url.protocol === 'https:') {
      if (CA_PROBLEMS.has(code)) {
        const ca = tls?.caFile ? `the CA in --etcd-ca ${tls.caFile}` : 'any CA this system trusts (no --etcd-ca given)';
        throw new Error(`--etcd-ca: the certificate of ${where} is not signed by ${ca} (${code}); set --etcd-ca to the CA that signed the etcd members' certificates`);
      }
      if (code === 'ERR_TLS_CERT_ALTNAME_INVALID') {
        throw new Error(`--etcd-endpoints: the certificate of ${where} does not name ${url.hostname} (${message}); use the name or address the certificate was issued for`);
      }
      if (/alert|certificate required|bad certificate/i.test(`${code} ${message}`)) {
        const given = tls?.certFile ? `the certificate in --etcd-cert ${tls.certFile}` : 'no client certificate (no --etcd-cert/--etcd-key given)';
        throw new Error(`--etcd-cert/--etcd-key: ${where} refused ${given}: ${message}; give a client certificate signed by the CA the etcd members trust`);
      }
      if (/wrong version number|packet length too long|EPROTO/i.test(`${code} ${message}`) || await servesPlainHttp(url, timeoutMs)) {
        throw new Error(`--etcd-endpoints: ${where} does not serve TLS (${message}); use http:// for it, or enable TLS on the member`);
      }
    }
    if (url.protocol === 'http:' && await servesTls(url, timeoutMs)) throw servesTlsError(url);
    throw new Error(`--etcd-endpoints: etcd at ${where} did not answer within ${seconds(timeoutMs)}: ${message}`);
  }
  if (url.protocol === 'http:' && /HTTP request to an HTTPS server/i.test(answer.body)) throw servesTlsError(url);
  let parsed: unknown;
  try {
    parsed = JSON.parse(answer.body);
  } catch {
    parsed = undefined;
  }
  if (answer.status !== 200 || typeof parsed !== 'object' || parsed === null || !('etcdserver' in parsed)) {
    throw new Error(`--etcd-endpoints: ${where} is not an etcd client URL (GET /version answered ${answer.status}: ${answer.body.slice(0, 120)})`);
  }
}

function getVersion(url: URL, credentials: EtcdCredentials | undefined, timeoutMs: number): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const target = new URL('/version', url);
    const options = { timeout: timeoutMs, ca: credentials?.rootCertificate, cert: credentials?.certChain, key: credentials?.privateKey };
    const req = (url.protocol === 'https:' ? httpsRequest : httpRequest)(target, url.protocol === 'https:' ? options : { timeout: timeoutMs }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => { if (body.length < 4096) body += chunk; });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`no answer within ${seconds(timeoutMs)}`)));
    req.on('error', reject);
    req.end();
  });
}

function servesTlsError(url: URL): Error {
  return new Error(`--etcd-endpoints: ${origin(url)} serves TLS; use https://${url.host} and set --etcd-ca to the CA that signed its certificate`);
}

/**
 * Whether a plain-http endpoint that hung up on us speaks TLS (etcd drops plain HTTP on a TLS
 * client port without a word). Only asks for a handshake; trusts nothing it is shown.
 */
function servesTls(url: URL, timeoutMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = tlsConnect({ host: url.hostname, port: Number(url.port), rejectUnauthorized: false, timeout: timeoutMs });
    const done = (answer: boolean) => { socket.destroy(); resolve(answer); };
    socket.once('secureConnect', () => done(true));
    // A TLS alert (such as "certificate required") is TLS talking too.
    socket.once('error', (error) => done(/alert/i.test(error.message)));
    socket.once('timeout', () => done(false));
  });
}

/** Whether an https endpoint that dropped the handshake answers plain http as etcd (a member without TLS). */
async function servesPlainHttp(url: URL, timeoutMs: number): Promise<boolean> {
  const plain = new URL(url.href);
  plain.protocol = 'http:';
  const answer = await getVersion(plain, undefined, timeoutMs).catch(() => undefined);
  return answer !== undefined && answer.body.includes('etcdserver');
}

function origin(url: URL): string {
  return `${url.protocol}//${url.host}`;
}

function hex(id: string): string {
  try {
    return BigInt(id).toString(16);
  } catch {
    return id;
  }
}

function seconds(ms: number): string {
  return ms % 1000 === 0 ? `${ms / 1000} s` : `${ms} ms`;
}
