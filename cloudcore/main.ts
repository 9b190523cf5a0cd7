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
  .option('--data-dir <dir>', 'where the SQLite store and operator tokens live (default ./.data/cloudcore)')
  .option('--host <host>', 'listen address (default 127.0.0.1)')
  .option('--port <port>', 'listen port (default 8080; 0 = any free port)')
  .option('--offline-after-seconds <n>', 'silence after which a node is Offline (default 90)')
  .option('--max-settling-sessions <n>', 'edge links settling at once; more get 503 + Retry-After (default 1000)')
  .option('--rollout-tick-ms <n>', 'how often rollouts re-check time-driven gates: minReadySeconds, offline window (default 1000)')
  .option('--max-events <n>', 'store change events kept for watch and edge resume (default 100000)')
  .option('--max-event-object-changes <n>', 'change-log entries about Event objects kept, apart from --max-events (default 10000)')
  .option('--tls-cert <file>', 'PEM certificate chain: serve HTTPS (edges connect over wss://); needs --tls-key')
  .option('--tls-key <file>', 'PEM private key of --tls-cert')
  .option('--insecure-plain-http <bool>', 'serve plain HTTP on a non-loopback --host (refused otherwise): tokens and secrets cross the network in clear')
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
    if (settings.insecurePlainHttp && settings.tlsCert === undefined && !isLoopbackHost(settings.host)) {
      log.warn({ host: settings.host }, 'PLAIN HTTP OFF LOOPBACK (--insecure-plain-http): join tokens, node credentials and secret values cross the network in clear');
    }
    log.info({ url: core.url, adminTokenFile: core.adminTokenPath }, 'cloudcore ready');
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
