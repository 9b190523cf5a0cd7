import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { boolSetting, listSetting, logLevelSetting, portSetting, resolveSettings, settingsFromYaml } from '../protocol/index.js';
import {
  DEFAULT_DEVICE_CERT_LIFETIME_SECONDS, DEFAULT_NODE_CERT_GRACE_SECONDS, DEFAULT_NODE_CERT_LIFETIME_SECONDS, DEFAULT_SERVER_CERT_LIFETIME_SECONDS,
  MIN_CERT_LIFETIME_SECONDS,
} from '../protocol/certificatePolicy.js';

export const CloudSettingsSchema = z.strictObject({
  dataDir: z.string().min(1).default('./.data/cloudcore'),
  host: z.string().min(1).default('127.0.0.1'),
  port: portSetting.default(8080),
  logLevel: logLevelSetting.default('info'),
  /** A node silent for this long is Offline (its workloads stay bound). */
  offlineAfterSeconds: z.coerce.number().positive().max(86_400).default(90),
  /** How often the rollout controller re-checks time-driven gates (minReadySeconds, offline window), ms. */
  rolloutTickMs: z.coerce.number().int().min(10).max(60_000).default(1000),
  /**
   * Edge links settling at once (upgrade to snapshot acked or resume started); past it an edge
   * gets 503 with a Retry-After of 1–3 s and tries again then (admission control after an outage).
   */
  maxSettlingSessions: z.coerce.number().int().min(1).max(100_000).default(1000),
  /** Store events kept for watch/resume; older revisions force a snapshot. */
  maxEvents: z.coerce.number().int().min(100).default(100_000),
  /** Change-log entries about Event objects kept, in a window of their own (events never compact desired state). */
  maxEventObjectChanges: z.coerce.number().int().min(100).default(10_000),
  /**
   * The operator's own server certificate chain and key (PEM). Without them cloudcore serves HTTPS
   * with a certificate its CA issues for advertiseAddress (and rotates itself).
   */
  tlsCert: z.string().min(1).optional(),
  tlsKey: z.string().min(1).optional(),
  /** Names and addresses edges and operators use to reach cloudcore: the SANs of its own server certificate. */
  advertiseAddress: listSetting.default([]),
  /** The operator's CA (certificate and key, PEM) instead of the one cloudcore makes in `<dataDir>/pki/`. */
  caCert: z.string().min(1).optional(),
  caKey: z.string().min(1).optional(),
  /** More CA certificates trusted for node certificates and served in the CA bundle (the old CA during a CA rotation). */
  caExtraTrust: z.string().min(1).optional(),
  /** Life of a node's client certificate; the edge renews it at two thirds. At least MIN_CERT_LIFETIME_SECONDS (30). */
  nodeCertLifetimeSeconds: z.coerce.number().int().min(MIN_CERT_LIFETIME_SECONDS).max(10 * 365 * 86_400).default(DEFAULT_NODE_CERT_LIFETIME_SECONDS),
  /** How long after expiry a node may still renew with its old certificate (an edge that was offline); later it needs a new join token. */
  nodeCertGraceSeconds: z.coerce.number().int().min(0).max(365 * 86_400).default(DEFAULT_NODE_CERT_GRACE_SECONDS),
  /** Life of the server certificate cloudcore issues itself; rotated at two thirds without a restart. At least 30 s, as node certificates. */
  serverCertLifetimeSeconds: z.coerce.number().int().min(MIN_CERT_LIFETIME_SECONDS).max(10 * 365 * 86_400).default(DEFAULT_SERVER_CERT_LIFETIME_SECONDS),
  /** Default life of a device certificate (`edgectl device certificate`). */
  deviceCertLifetimeSeconds: z.coerce.number().int().min(60).max(10 * 365 * 86_400).default(DEFAULT_DEVICE_CERT_LIFETIME_SECONDS),
  /**
   * Serve plain HTTP instead of HTTPS: no certificates, bearer node credentials, unpinned tokens.
   * Logged as a warning on loopback and as an error elsewhere, where it carries tokens, credentials
   * and secret values in clear.
   */
  insecurePlainHttp: boolSetting.default(false),
  /** Key file that seals Secret values in the store (default `<dataDir>/secret-encryption.key`, made on first start). */
  secretKeyFile: z.string().min(1).optional(),
  /** The audit log (`audit.log` in dataDir) is rotated at this size; keeps auditLogFiles rotated files besides. */
  auditLogMaxBytes: z.coerce.number().int().min(4096).default(10 * 1024 * 1024),
  auditLogFiles: z.coerce.number().int().min(1).max(1000).default(5),
  /** Time to receive a whole request (headers and body), seconds; a body that never arrives is answered 408 and closed. */
  requestTimeoutSeconds: z.coerce.number().positive().max(3600).default(10),
  /** Time to receive a request's headers, seconds (at most requestTimeoutSeconds). */
  headersTimeoutSeconds: z.coerce.number().positive().max(3600).default(5),
  /** An idle keep-alive connection is closed after this, seconds. */
  keepAliveTimeoutSeconds: z.coerce.number().positive().max(3600).default(5),
  /** Open TCP connections from one source address (API, streams and edge links alike); more are destroyed at accept. */
  maxConnectionsPerAddress: z.coerce.number().int().min(1).max(1_000_000).default(256),
  /** Watch and log streams open at once from one source address; more get 429. */
  maxStreamsPerAddress: z.coerce.number().int().min(1).max(100_000).default(32),
  /** Events one node may have stored per second (token bucket refill); more are dropped and counted. */
  eventsPerSecondPerNode: z.coerce.number().positive().max(100_000).default(20),
  /** Events one node may send in one burst above its rate. */
  eventBurstPerNode: z.coerce.number().int().min(1).max(1_000_000).default(200),
  /** Release directories (`<version>/`) served under `/dist` (default `<dataDir>/dist`; docs/install.md). */
  distDir: z.string().min(1).optional(),
  /** The release public key (PEM, Ed25519) a release's SHA256SUMS.sig must verify under (default `<distDir>/release-key.pub`). */
  releasePublicKey: z.string().min(1).optional(),
  /**
   * Where the store lives: `sqlite` (one file in dataDir, one cloudcore) or `etcd` (an etcd v3
   * cluster shared by several cloudcore replicas; docs/scale-out.md).
   */
  store: z.enum(['sqlite', 'etcd']).default('sqlite'),
  /** The etcd cluster's client URLs (store etcd), e.g. http://10.0.0.1:2379,http://10.0.0.2:2379. */
  etcdEndpoints: listSetting.pipe(z.array(z.url({ protocol: /^https?$/, error: 'must be an http(s) URL of an etcd member, e.g. http://127.0.0.1:2379' }))).default([]),
  /** Key prefix of this fleet in etcd (several fleets may share one cluster under different prefixes). */
  etcdPrefix: z.string().regex(/^\/([A-Za-z0-9._-]+\/)*$/, 'must start and end with "/" and hold only letters, digits, ".", "_", "-" between, e.g. /edgefleet/').default('/edgefleet/'),
  /** CA certificate (PEM) etcd's server certificates are checked against (https endpoints). */
  etcdCa: z.string().min(1).optional(),
  /** Client certificate and key (PEM) cloudcore presents to etcd, when etcd requires client certificates. */
  etcdCert: z.string().min(1).optional(),
  etcdKey: z.string().min(1).optional(),
  /** Deadline of each etcd call; a cluster that does not answer in time (no quorum) gets 503s, seconds. */
  etcdTimeoutSeconds: z.coerce.number().positive().max(120).default(5),
  /** This replica's name among the replicas of one fleet (default: host name and a random suffix). */
  replicaId: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/, 'must be 1-63 letters, digits, ".", "_" or "-", starting with a letter or digit').optional(),
  /** TTL of the leader's lease: a dead leader is replaced after at most this long, seconds. */
  leaderLeaseSeconds: z.coerce.number().int().min(2).max(120).default(5),
  /** TTL of a replica's lease: a dead replica's session claims and registry entry vanish after this long, seconds. */
  replicaLeaseSeconds: z.coerce.number().int().min(2).max(300).default(10),
  /**
   * With store etcd: every live link's whole desired set is sent again this often (±25 %), so a
   * watch event etcd lost never leaves an edge wrong for long; 0 turns it off. Seconds.
   */
  resyncSweepSeconds: z.coerce.number().int().min(0).max(86_400).default(900),
}).superRefine((s, ctx) => {
  if (s.headersTimeoutSeconds > s.requestTimeoutSeconds) {
    ctx.addIssue({ code: 'custom', path: ['headersTimeoutSeconds'], message: `must not exceed requestTimeoutSeconds (${s.requestTimeoutSeconds})` });
  }
  if ((s.tlsCert === undefined) !== (s.tlsKey === undefined)) {
    ctx.addIssue({ code: 'custom', path: [s.tlsCert === undefined ? 'tlsCert' : 'tlsKey'], message: 'HTTPS needs tlsCert and tlsKey together' });
  }
  if ((s.caCert === undefined) !== (s.caKey === undefined)) {
    ctx.addIssue({ code: 'custom', path: [s.caCert === undefined ? 'caCert' : 'caKey'], message: 'an operator CA needs caCert and caKey together' });
  }
  if (s.store === 'etcd') {
    if (s.etcdEndpoints.length === 0) ctx.addIssue({ code: 'custom', path: ['etcdEndpoints'], message: 'store etcd needs the etcd cluster\'s client URLs, e.g. --etcd-endpoints http://127.0.0.1:2379' });
    if (s.secretKeyFile === undefined) {
      ctx.addIssue({ code: 'custom', path: ['secretKeyFile'], message: 'store etcd needs --secret-key-file: every replica of the fleet must read the same key file (it seals Secrets and the shared CA and tokens in etcd)' });
    }
    if (s.etcdEndpoints.some((u) => u.startsWith('https:')) && s.etcdCa === undefined) {
      ctx.addIssue({ code: 'custom', path: ['etcdCa'], message: 'https etcd endpoints need --etcd-ca, the CA that issued the members\' certificates' });
    }
    if (s.advertiseAddress.length === 0 && ['0.0.0.0', '::', ''].includes(s.host)) {
      ctx.addIssue({ code: 'custom', path: ['advertiseAddress'], message: `store etcd with host ${s.host || '""'} needs --advertise-address: the other replicas reach this one there` });
    }
    if (s.leaderLeaseSeconds >= s.offlineAfterSeconds) {
      ctx.addIssue({ code: 'custom', path: ['leaderLeaseSeconds'], message: `must be shorter than offlineAfterSeconds (${s.offlineAfterSeconds})` });
    }
  } else {
    for (const key of ['etcdCa', 'etcdCert', 'etcdKey'] as const) {
      if (s[key] !== undefined) ctx.addIssue({ code: 'custom', path: [key], message: 'is an etcd setting: set store to etcd, or drop it' });
    }
    if (s.etcdEndpoints.length > 0) ctx.addIssue({ code: 'custom', path: ['etcdEndpoints'], message: 'is an etcd setting: set store to etcd (--store etcd), or drop it' });
  }
  if ((s.etcdCert === undefined) !== (s.etcdKey === undefined)) {
    ctx.addIssue({ code: 'custom', path: [s.etcdCert === undefined ? 'etcdCert' : 'etcdKey'], message: 'an etcd client certificate needs etcdCert and etcdKey together' });
  }
  if (s.insecurePlainHttp && s.tlsCert !== undefined) {
    ctx.addIssue({ code: 'custom', path: ['insecurePlainHttp'], message: 'plain HTTP and a TLS certificate exclude each other: drop one' });
  }
});
export type CloudSettings = z.infer<typeof CloudSettingsSchema>;

export function loadCloudSettings(flags: Record<string, unknown>, env: NodeJS.ProcessEnv): CloudSettings {
  const { config, ...rest } = flags;
  const file = typeof config === 'string' ? settingsFromYaml(readFileSync(config, 'utf8'), config) : undefined;
  return resolveSettings(CloudSettingsSchema, 'EF_CLOUD_', { file, env, flags: rest });
}
