#!/usr/bin/env node
import { Command } from 'commander';
import { pino } from 'pino';
import { EDGEFLEET_VERSION, isLoopbackHost, SettingsError } from '../protocol/index.js';
import { loadCloudSettings } from './config.js';
import { startCloudCore } from './server.js';

const program = new Command('cloudcore')
  .description('EdgeFleet cloud controller: REST API for operators, hub for edge nodes, scheduler.\n'
    + 'Every flag can also be set by env (EF_CLOUD_<NAME>, e.g. EF_CLOUD_PORT) or a YAML file (--config).')
  .version(EDGEFLEET_VERSION)
  .option('--config <file>', 'YAML file with settings (keys as the flags in camelCase, e.g. dataDir)')
  .option('--data-dir <dir>', 'where the SQLite store, telemetry and operator tokens live (default ./.data/cloudcore)')
  .option('--host <host>', 'listen address (default 127.0.0.1)')
  .option('--port <port>', 'listen port (default 8080; 0 = any free port)')
  .option('--offline-after-seconds <n>', 'silence after which a node is Offline (default 90)')
  .option('--max-settling-sessions <n>', 'edge links settling at once; more get 503 + Retry-After (default 1000)')
  .option('--rollout-tick-ms <n>', 'how often rollouts re-check time-driven gates: minReadySeconds, offline window (default 1000)')
  .option('--max-events <n>', 'store change events kept for watch and edge resume (default 100000)')
  .option('--max-event-object-changes <n>', 'change-log entries about Event objects kept, apart from --max-events (default 10000)')
  .option('--advertise-address <list>', 'names/IPs edges and operators use to reach cloudcore, comma-separated: the SANs of its own server certificate')
  .option('--tls-cert <file>', 'your own PEM server certificate chain instead of the one cloudcore issues (include the root); needs --tls-key')
  .option('--tls-key <file>', 'PEM private key of --tls-cert')
  .option('--ca-cert <file>', 'your own CA certificate (PEM) instead of the one made in <data-dir>/pki; needs --ca-key')
  .option('--ca-key <file>', 'PEM private key of --ca-cert')
  .option('--ca-extra-trust <file>', 'more CA certificates trusted for node certificates and served in the CA bundle (a CA rotation\'s old CA)')
  .option('--node-cert-lifetime-seconds <n>', 'life of a node certificate, at least 30; edges renew at two thirds (default 2592000 = 30 days)')
  .option('--node-cert-grace-seconds <n>', 'an expired node certificate may still renew for this long (default 604800 = 7 days)')
  .option('--server-cert-lifetime-seconds <n>', 'life of cloudcore\'s own server certificate, at least 30, rotated at two thirds (default 31536000)')
  .option('--device-cert-lifetime-seconds <n>', 'default life of a device certificate (default 31536000)')
  .option('--insecure-plain-http <bool>', 'serve plain HTTP, no TLS: tokens, node credentials and secret values cross the network in clear')
  .option('--secret-key-file <file>', 'key file sealing Secret values in the store (default <data-dir>/secret-encryption.key, made on first start)')
  .option('--audit-log-max-bytes <n>', 'rotate the audit log (audit.log in the data dir) at this size (default 10485760)')
  .option('--audit-log-files <n>', 'rotated audit log files kept besides audit.log (default 5)')
  .option('--request-timeout-seconds <n>', 'time to receive a whole request, headers and body; then 408 and closed (default 10)')
  .option('--headers-timeout-seconds <n>', 'time to receive a request\'s headers (default 5; at most --request-timeout-seconds)')
  .option('--keep-alive-timeout-seconds <n>', 'an idle keep-alive connection is closed after this (default 5)')
  .option('--max-connections-per-address <n>', 'open connections from one source address; more are closed at accept (default 256)')
  .option('--max-streams-per-address <n>', 'watch and log streams open at once from one source address; more get 429 (default 32)')
  .option('--events-per-second-per-node <n>', 'events one node may have stored per second; more are dropped and counted (default 20)')
  .option('--event-burst-per-node <n>', 'events one node may send in one burst above that rate (default 200)')
  .option('--dist-dir <dir>', 'release directories (<version>/) served under /dist for installs and upgrades (default <data-dir>/dist)')
  .option('--release-public-key <file>', 'PEM Ed25519 key a release\'s SHA256SUMS.sig must verify under (default <dist-dir>/release-key.pub)')
  .option('--store <backend>', 'sqlite (one file in the data dir, one cloudcore; the default) or etcd (replicas sharing an etcd cluster: docs/scale-out.md)')
  .option('--etcd-endpoints <list>', 'the etcd cluster\'s client URLs, comma-separated (store etcd)')
  .option('--etcd-prefix <prefix>', 'key prefix of this fleet in etcd (default /edgefleet/)')
  .option('--etcd-ca <file>', 'CA certificate (PEM) of the etcd members\' certificates (https endpoints)')
  .option('--etcd-cert <file>', 'client certificate (PEM) cloudcore presents to etcd; needs --etcd-key')
  .option('--etcd-key <file>', 'PEM private key of --etcd-cert')
  .option('--etcd-timeout-seconds <n>', 'deadline of each etcd call; past it writes answer 503 (default 5)')
  .option('--replica-id <id>', 'this replica\'s name among the fleet\'s cloudcores (default: host name and a random suffix)')
  .option('--leader-lease-seconds <n>', 'a dead leader replica is replaced after at most this long (default 5)')
  .option('--replica-lease-seconds <n>', 'a dead replica\'s links are released after at most this long (default 10)')
  .option('--resync-sweep-seconds <n>', 'store etcd: resend each edge\'s whole desired set this often, repairing a lost watch event (default 900; 0 = off)')
  .option('--log-level <level>', 'fatal|error|warn|info|debug|trace|silent (default info)')
  .action(async (flags: Record<string, unknown>) => {
    let settings;
    try {
      settings = loadCloudSettings(flags, process.env);
    } catch (err) {
      if (err instanceof SettingsError) {
        process.stderr.write(`cloudcore: ${err.message}\n`);
        process.exit(2);
      }
      throw err;
    }
    const log = pino({ level: settings.logLevel, base: { svc: 'cloudcore' } });
    let core: Awaited<ReturnType<typeof startCloudCore>>;
    try {
      core = await startCloudCore(settings, log);
    } catch (err) {
      log.fatal({ err: (err as Error).message }, 'cloudcore failed to start');
      log.flush();
      process.exit(1);
    }
    if (settings.insecurePlainHttp) {
      const text = 'PLAIN HTTP (--insecure-plain-http): no TLS, bearer node credentials, unpinned join tokens';
      if (isLoopbackHost(settings.host)) log.warn({ host: settings.host }, `${text}; loopback only`);
      else log.error({ host: settings.host }, `${text} OFF LOOPBACK: join tokens, node credentials and secret values cross the network in clear`);
    }
    log.info({ url: core.url, adminTokenFile: core.adminTokenPath, caPin: core.caPin }, 'cloudcore ready');
    let stopping = false;
    const stop = async (signal: string) => {
      if (stopping) return;
      stopping = true;
      log.info({ signal }, 'stopping');
      await core.close();
      log.flush();
      process.exit(0);
    };
    process.on('SIGINT', () => void stop('SIGINT'));
    process.on('SIGTERM', () => void stop('SIGTERM'));
  });

await program.parseAsync(process.argv);
