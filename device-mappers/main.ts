#!/usr/bin/env node
import { Command } from 'commander';
import { pino } from 'pino';
import { EDGEFLEET_VERSION, SettingsError } from '../protocol/index.js';
import { createDriver } from './drivers.js';
import { MapperLoop } from './sdk/index.js';
import { loadMapperSettings, MAPPER_PROTOCOLS, type MapperSettings } from './settings.js';

const program = new Command('mapper')
  .description('EdgeFleet device mapper: reads field devices of one protocol and keeps their twins on the edge broker.\n'
    + 'Asks edgecore which devices to serve, publishes reported values, writes desired ones.\n'
    + 'Every flag can also be set by env (EF_MAPPER_<NAME>, e.g. EF_MAPPER_EDGE_URL) or a YAML file (--config);\n'
    + 'the password comes from --credential-file or EF_MAPPER_PASSWORD.')
  .version(EDGEFLEET_VERSION)
  // Optional: a mapper that edgecore runs as a workload (template `deviceMapper`) gets EF_MAPPER_PROTOCOL.
  .argument('[protocol]', `field protocol to serve: ${MAPPER_PROTOCOLS.join(' | ')} (or env EF_MAPPER_PROTOCOL)`)
  .option('--config <file>', 'YAML file with settings (keys as the flags in camelCase, e.g. edgeUrl)')
  .option('--node <name>', 'the edge node this mapper runs on')
  .option('--edge-url <url>', 'edgecore\'s local API, e.g. http://127.0.0.1:10350')
  .option('--mqtt <url>', 'edge MQTT broker (default mqtt://127.0.0.1:1883)')
  .option('--credential-file <file>', 'file holding the mapper password')
  .option('--refresh-seconds <n>', 'how often to re-fetch the device list (default 30)')
  .option('--telemetry <bool>', 'also publish each report as telemetry (default false)')
  .option('--pki-dir <dir>', 'opcua: folder for the client certificate (default: node-opcua\'s per-user folder)')
  .option('--log-level <level>', 'fatal|error|warn|info|debug|trace|silent (default info)')
  .action(async (protocol: string | undefined, flags: Record<string, unknown>) => {
    let settings: MapperSettings;
    try {
      settings = loadMapperSettings({ ...flags, ...(protocol !== undefined ? { protocol } : {}) }, process.env);
    } catch (err) {
      if (err instanceof SettingsError) {
        process.stderr.write(`mapper: ${err.message}\n`);
        process.exit(2);
      }
      throw err;
    }
    const base = pino({ level: settings.logLevel, base: { svc: 'mapper', node: settings.node } });
    // The loop binds `protocol` to its own logger: handing it `log` would write the key twice.
    const log = base.child({ protocol: settings.protocol });
    const loop = new MapperLoop({
      protocol: settings.protocol, node: settings.node, edgeUrl: settings.edgeUrl, mqttUrl: settings.mqtt,
      password: settings.password, refreshSeconds: settings.refreshSeconds, telemetry: settings.telemetry,
      driver: await createDriver(settings), log: base,
    });
    let stopping = false;
    const stop = async (signal: string) => {
      if (stopping) return;
      stopping = true;
      log.info({ signal }, 'stopping');
      // A device that hangs while closing must not keep the process alive forever.
      const deadline = setTimeout(() => { log.warn('stop took too long; exiting'); log.flush(); process.exit(1); }, 15_000);
      await loop.stop();
      clearTimeout(deadline);
      log.info('stopped');
      log.flush();
      process.exit(0);
    };
    process.on('SIGINT', () => void stop('SIGINT'));
    process.on('SIGTERM', () => void stop('SIGTERM'));
    await loop.start();
    const status = loop.status();
    log.info({ devices: status.devices.map((d) => d.name), deviceListError: status.deviceList.lastError, clientId: loop.clientId }, 'mapper running');
  });

await program.parseAsync(process.argv);
