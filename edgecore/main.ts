#!/usr/bin/env -S node --lite-mode
import { Command } from 'commander';
import { pino } from 'pino';
import { EDGEFLEET_VERSION, isLoopbackHost, SettingsError } from '../protocol/index.js';
import { EdgeAgent } from './agent.js';
import { commandLineWithoutJoinToken, loadEdgeSettings } from './config.js';

const program = new Command('edgecore')
  .description('EdgeFleet edge agent: syncs desired state from cloudcore and runs it, with or without the cloud.\n'
    + 'Every flag can also be set by env (EF_EDGE_<NAME>, e.g. EF_EDGE_CLOUD_URL) or a YAML file (--config).')
  .version(EDGEFLEET_VERSION)
  .option('--config <file>', 'YAML file with settings (keys as the flags in camelCase, e.g. cloudUrl)')
  .option('--node <name>', 'this node\'s name (must match its join token)')
  .option('--cloud-url <urls>', 'cloudcore URL, e.g. https://cloud.example:8443; several replicas of one fleet comma-separated (the link moves to the next when one fails; see --cloud-url-order)')
  .option('--cloud-url-order <order>', 'with several cloud URLs: shuffled (default: each edge its own random order, spreading a fleet over the replicas) or listed (the order given, the first preferred; no moving back by itself)')
  .option('--join-token <token>', 'one-time join token (only needed until the node has a credential); prefer --join-token-file or EF_EDGE_JOIN_TOKEN')
  .option('--insecure-plain-http <bool>', 'link to an http:// cloud URL that is not loopback (refused otherwise): tokens and secrets cross the network in clear')
  .option('--allow-unpinned-token [bool]', 'join over https with a token that does not pin the cloud\'s CA (<id>.<secret>): the cloud is then verified only by the system\'s CAs and NODE_EXTRA_CA_CERTS (refused otherwise; warned)')
  .option('--join-token-file <file>', 'file whose first line is the join token (kept out of the process list)')
  .option('--data-dir <dir>', 'where the edge database, credential and logs live (default ./.data/edge)')
  .option('--status-host <host>', 'address of the local status page and API (default 127.0.0.1; anything else needs --status-password-file)')
  .option('--status-port <port>', 'port of the local status API (default 10350; 0 = any free port)')
  .option('--status-password-file <file>', 'local password (first line) for the status page, HTTP Basic; required when --status-host is not loopback')
  .option('--mqtt-host <host>', 'address of the device MQTT broker (default 127.0.0.1)')
  .option('--mqtt-port <port>', 'port of the device MQTT broker (default 1883; 0 = any free port)')
  .option('--mqtt-allow-anonymous <bool>', 'let devices connect without credentials (default false)')
  .option('--mqtt-general-purpose <bool>', 'let clients without a username use the topics outside ef/ and apps/ (default false)')
  .option('--mqtt-tls-port <port>', 'also serve MQTT over TLS on this port (needs --mqtt-tls-cert and --mqtt-tls-key)')
  .option('--mqtt-tls-cert <file>', 'PEM certificate chain for the MQTT TLS listener')
  .option('--mqtt-tls-key <file>', 'PEM private key for the MQTT TLS listener')
  .option('--mqtt-tls-client-ca <file>', 'PEM CA bundle device client certificates must chain to (default: the cloud CA the node got at join)')
  .option('--mqtt-max-packet-bytes <n>', 'largest MQTT packet a device may send; a bigger one closes its connection (default 266240)')
  .option('--mqtt-max-sessions-per-device <n>', 'persistent MQTT sessions one device may keep; the oldest offline one makes room (default 2)')
  .option('--mqtt-max-queued-per-session <n>', 'unsent messages a persistent session keeps while away; the oldest are dropped beyond (default 1000)')
  .option('--twin-upstream-interval-ms <ms>', 'send a device\'s reported changes to the cloud at most once per this many ms (default 500; 0 = every change)')
  .option('--telemetry-batch-ms <ms>', 'batch a device\'s telemetry for the cloud over this many ms, or 100 samples (default 1000)')
  .option('--heartbeat-seconds <n>', 'heartbeat period (default 30)')
  .option('--pong-timeout-seconds <n>', 'end the link when a heartbeat is not answered within this many seconds (default 15)')
  .option('--node-stats-seconds <n>', 'how often CPU, memory and disk are sampled for the cloud dashboard (default 60)')
  .option('--log-max-bytes <n>', 'per-workload log size before rotation (default 1 MiB)')
  .option('--log-level <level>', 'fatal|error|warn|info|debug|trace|silent (default info)')
  .option('--container-engine <socket>', 'unix socket of a Docker-API engine (Docker or `podman system service`) to run container workloads')
  .option('--workload-user <user>', 'who process workloads run as when edgecore is root and their template names no runAsUser: per-workload (default: each its own uid, group edgefleet-workload), a user name or uid they all share, or root (no isolation); the last two are warned')
  .option('--allow-host-paths <dirs>', 'comma-separated directories container hostPath volumes may mount (default: none; /, /etc, the engine socket and the data dir never)')
  .option('--allow-host-network <bool>', 'let container workloads use hostNetwork (default false; device mappers always may)')
  .option('--keep-workloads-on-exit <bool>', 'leave workloads running when edgecore stops, where the runtime can adopt them')
  .option('--upgrade-health-seconds <n>', 'after an over-the-air upgrade, the new edgecore must be healthy (cloud link, device broker, workloads) within this many seconds or it is rolled back (default 120)')
  .action(async (flags: Record<string, unknown>) => {
    // Before anything else: the join token must leave the process list as soon as it can.
    const shownCommandLine = commandLineWithoutJoinToken(process.argv);
    if (shownCommandLine !== null) process.title = shownCommandLine;
    let settings;
    try {
      settings = loadEdgeSettings(flags, process.env);
    } catch (err) {
      if (err instanceof SettingsError) {
        process.stderr.write(`edgecore: ${err.message}\n`);
        process.exit(2);
      }
      throw err;
    }
    const log = pino({ level: settings.logLevel, base: { svc: 'edgecore', node: settings.node } });
    const plainOffLoopback = settings.cloudUrls.filter((u) => { const cloud = new URL(u); return cloud.protocol === 'http:' && !isLoopbackHost(cloud.hostname); });
    if (plainOffLoopback.length > 0) {
      log.warn({ cloudUrl: plainOffLoopback.join(',') }, 'PLAIN HTTP TO THE CLOUD (--insecure-plain-http): the join token, the node credential and secret values cross the network in clear');
    }
    if (settings.allowUnpinnedToken) {
      log.warn({}, 'UNPINNED JOIN TOKENS ALLOWED (--allow-unpinned-token): a join over https with an <id>.<secret> token trusts whatever the system\'s CAs and NODE_EXTRA_CA_CERTS trust');
    }
    if (shownCommandLine !== null) {
      log.warn('the join token was given on the command line: other local users could read it from the process list until edgecore hid it; use --join-token-file or EF_EDGE_JOIN_TOKEN');
    }
    let stopping = false;
    const stop = async (signal: string, code = 0) => {
      if (stopping) return;
      stopping = true;
      log.info({ signal, code }, 'stopping');
      await agent.stop();
      log.flush();
      process.exit(code);
    };
    // An upgrade's restart (75: the loader starts the switched version) or its failed health
    // check (the loader rolls back): the workloads stay for the next agent to adopt.
    const agent = new EdgeAgent(settings, log, { exit: (code) => void stop('upgrade', code) });
    process.on('SIGINT', () => void stop('SIGINT'));
    process.on('SIGTERM', () => void stop('SIGTERM'));
    try {
      await agent.start();
    } catch (err) {
      log.fatal({ err: (err as Error).message }, 'edgecore failed to start');
      log.flush();
      process.exit(1);
    }
  });

await program.parseAsync(process.argv);
