import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { NameSchema, SettingsError, boolSetting, isLoopbackHost, logLevelSetting, portSetting, resolveSettings, settingsFromYaml } from '../protocol/index.js';
import { CloudUrlOrderSetting, CloudUrlsSetting } from './link/cloudUrls.js';
import { DEFAULT_MAX_PACKET_BYTES, DEFAULT_TELEMETRY_BATCH, DEFAULT_TWIN_UPSTREAM_INTERVAL_MS } from './devices/deviceHubOptions.js';
import { DEFAULT_MAX_QUEUED_PER_SESSION, DEFAULT_MAX_SESSIONS_PER_DEVICE } from './devices/broker/sessionQuota.js';

export const EdgeSettingsSchema = z.strictObject({
  node: NameSchema,
  /** One cloudcore URL, or the URLs of several replicas of one fleet (comma-separated, or a YAML list): see link/cloudUrls.ts. */
  cloudUrl: CloudUrlsSetting,
  /**
   * With several: `shuffled` (each edgecore its own random order: a fleet spreads over the
   * replicas, and over the others when one dies) or `listed` (the order given, the first
   * preferred; an edge that moved on stays where it is until that link fails).
   */
  cloudUrlOrder: CloudUrlOrderSetting.default('shuffled'),
  joinToken: z.string().min(1).optional(),
  /** File whose first line is the join token: keeps it out of the process list (/proc/<pid>/cmdline). */
  joinTokenFile: z.string().min(1).optional(),
  /**
   * Join over https with a token that does not pin the cloud's CA (`<id>.<secret>`): the cloud is
   * then verified only by the system's CAs and NODE_EXTRA_CA_CERTS (refused without it; warned with it).
   */
  allowUnpinnedToken: boolSetting.default(false),
  /** Link to cloudcore over plain http:// on a non-loopback host (refused without it; warned with it). */
  insecurePlainHttp: boolSetting.default(false),
  dataDir: z.string().min(1).default('./.data/edge'),
  statusHost: z.string().min(1).default('127.0.0.1'),
  statusPort: portSetting.default(10350),
  /** File whose first line is the status page's local password (HTTP Basic); required when statusHost is not loopback. */
  statusPasswordFile: z.string().min(1).optional(),
  /** The device broker (MQTT 3.1.1): loopback by default, as devices sit beside the node. */
  mqttHost: z.string().min(1).default('127.0.0.1'),
  mqttPort: portSetting.default(1883),
  mqttAllowAnonymous: boolSetting.default(false),
  /** Clients without a username may use the topic space outside ef/ and apps/ as a plain MQTT broker (docs/mqtt.md). Widening: warned. */
  mqttGeneralPurpose: boolSetting.default(false),
  /** Optional MQTT-over-TLS listener: port plus PEM certificate and key files (all three, or none). */
  mqttTlsPort: portSetting.optional(),
  mqttTlsCert: z.string().min(1).optional(),
  mqttTlsKey: z.string().min(1).optional(),
  /**
   * PEM bundle device client certificates on the TLS listener must chain to, instead of the cloud
   * CA bundle the node got at join (an operator's own device CA, or a node not joined over HTTPS).
   */
  mqttTlsClientCa: z.string().min(1).optional(),
  /** Largest MQTT packet a connection may send (its first, the CONNECT, at most 64 KiB); a bigger one closes the connection. */
  mqttMaxPacketBytes: z.coerce.number().int().min(1024).max(64 * 1024 * 1024).default(DEFAULT_MAX_PACKET_BYTES),
  /** Persistent sessions one device may keep on the broker (the oldest offline one makes room for a new one). */
  mqttMaxSessionsPerDevice: z.coerce.number().int().min(1).max(100).default(DEFAULT_MAX_SESSIONS_PER_DEVICE),
  /** Unsent messages a persistent session's queue keeps; the oldest are dropped (and counted) beyond it. */
  mqttMaxQueuedPerSession: z.coerce.number().int().min(1).max(1_000_000).default(DEFAULT_MAX_QUEUED_PER_SESSION),
  /** A device's reported changes go upstream at most once per this many ms (its twin is saved on every report). */
  twinUpstreamIntervalMs: z.coerce.number().int().min(0).max(60_000).default(DEFAULT_TWIN_UPSTREAM_INTERVAL_MS),
  /** A device's telemetry is batched into one outbox entry per this many ms (or 100 samples); journaled on disk meanwhile. */
  telemetryBatchMs: z.coerce.number().int().min(0).max(60_000).default(DEFAULT_TELEMETRY_BATCH.maxDelayMs),
  heartbeatSeconds: z.coerce.number().positive().max(3600).default(30),
  /**
   * A heartbeat the cloud has not answered (nor sent anything else) within this many seconds
   * ends the link: the sign of a silent partition (packets dropped, no FIN/RST).
   */
  pongTimeoutSeconds: z.coerce.number().positive().max(3600).default(15),
  /** How often CPU, memory and disk are sampled for the cloud dashboard (sent on the next heartbeat). */
  nodeStatsSeconds: z.coerce.number().min(0.1).max(3600).default(60),
  logMaxBytes: z.coerce.number().int().min(4096).default(1024 * 1024),
  logLevel: logLevelSetting.default('info'),
  /** Unix socket of a Docker-API container engine (Docker, or `podman system service`); unset: process workloads only. */
  containerEngine: z.string().min(1).optional(),
  /**
   * Who process workloads without runAsUser run as, when edgecore is root: `per-workload` (each
   * its own uid, group edgefleet-workload), a user name or uid they all share (warned), or
   * `root`, which lets workloads own the node (warned).
   */
  workloadUser: z.string().min(1).max(64).default('per-workload'),
  /** Comma-separated directories container hostPath volumes may name (and what is below them); empty: none. Widening: warned. */
  allowHostPaths: z.string().max(4096).default(''),
  /** Containers may use hostNetwork (device mapper containers always may). Widening: warned. */
  allowHostNetwork: boolSetting.default(false),
  /** Leave workloads running when edgecore stops (only runtimes that can adopt them honour it). */
  keepWorkloadsOnExit: boolSetting.default(false),
  /** After an agent upgrade, the new edgecore must be healthy (link, broker, workloads) within this many seconds, or the loader rolls it back. */
  upgradeHealthSeconds: z.coerce.number().positive().max(3600).default(120),
}).superRefine((s, ctx) => {
  for (const url of s.cloudUrl) {
    const cloud = new URL(url);
    if (cloud.protocol === 'http:' && !isLoopbackHost(cloud.hostname) && !s.insecurePlainHttp) {
      ctx.addIssue({ code: 'custom', path: ['cloudUrl'], message: `${url} is plain HTTP to a host that is not loopback: the join token, the node credential and `
        + 'secret values would cross the network in clear, and anyone on the path could send this node workloads; use https:// (docs/sync.md, "TLS"), or set insecurePlainHttp to accept that' });
    }
  }
  if (s.joinToken !== undefined && s.joinTokenFile !== undefined) {
    ctx.addIssue({ code: 'custom', path: ['joinTokenFile'], message: 'give the join token once: joinToken or joinTokenFile, not both' });
  }
  if (!isLoopbackHost(s.statusHost) && s.statusPasswordFile === undefined) {
    ctx.addIssue({ code: 'custom', path: ['statusPasswordFile'], message: `the status page would be reachable from the network on ${s.statusHost}; set --status-password-file (a file holding a local password), or keep --status-host on 127.0.0.1` });
  }
  const tls = [s.mqttTlsPort, s.mqttTlsCert, s.mqttTlsKey];
  if (tls.some((v) => v !== undefined) && tls.some((v) => v === undefined)) {
    ctx.addIssue({ code: 'custom', path: [s.mqttTlsPort === undefined ? 'mqttTlsPort' : s.mqttTlsCert === undefined ? 'mqttTlsCert' : 'mqttTlsKey'], message: 'the MQTT TLS listener needs mqttTlsPort, mqttTlsCert and mqttTlsKey together' });
  }
  if (s.mqttTlsClientCa !== undefined && s.mqttTlsPort === undefined) {
    ctx.addIssue({ code: 'custom', path: ['mqttTlsClientCa'], message: 'device client certificates are checked on the MQTT TLS listener: set mqttTlsPort, mqttTlsCert and mqttTlsKey too' });
  }
});

/**
 * The settings edgecore runs with. `cloudUrls` is the parsed list of cloudcore replicas;
 * `cloudUrl` stays the setting's text (the URLs comma-joined), so one URL reads as before.
 */
export type EdgeSettings = Omit<z.infer<typeof EdgeSettingsSchema>, 'cloudUrl'> & { cloudUrl: string; cloudUrls: string[] };

/** Reads the optional YAML file; the caller passes flags already parsed by commander. */
export function loadEdgeSettings(flags: Record<string, unknown>, env: NodeJS.ProcessEnv): EdgeSettings {
  const { config, ...rest } = flags;
  const file = typeof config === 'string' ? settingsFromYaml(readFileSync(config, 'utf8'), config) : undefined;
  const { cloudUrl: cloudUrls, ...parsed } = resolveSettings(EdgeSettingsSchema, 'EF_EDGE_', { file, env, flags: rest });
  const settings: EdgeSettings = { ...parsed, cloudUrl: cloudUrls.join(','), cloudUrls };
  return settings.joinTokenFile === undefined ? settings : { ...settings, joinToken: readJoinTokenFile(settings.joinTokenFile) };
}

function readJoinTokenFile(path: string): string {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new SettingsError(`invalid setting "joinTokenFile": cannot read ${path}: ${(err as Error).message}`, 'joinTokenFile');
  }
  const token = text.split('\n', 1)[0]!.trim();
  if (token === '') throw new SettingsError(`invalid setting "joinTokenFile": ${path} is empty; its first line must be the join token`, 'joinTokenFile');
  return token;
}

/**
 * The command line as the process list will show it: the value of `--join-token` replaced, so
 * another local user reading /proc/<pid>/cmdline or `ps` does not see it. Null when there is
 * nothing to hide.
 */
export function commandLineWithoutJoinToken(argv: readonly string[]): string | null {
  let hidden = false;
  const shown = argv.map((arg, i) => {
    if (argv[i - 1] === '--join-token') { hidden = true; return '(hidden)'; }
    if (arg.startsWith('--join-token=')) { hidden = true; return '--join-token=(hidden)'; }
    return arg;
  });
  return hidden ? shown.join(' ') : null;
}

