import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { NameSchema, SettingsError, boolSetting, logLevelSetting, resolveSettings, settingsFromYaml } from '../protocol/index.js';

export const MAPPER_PROTOCOLS = ['virtual', 'modbus', 'opcua'] as const;
export type MapperProtocol = (typeof MAPPER_PROTOCOLS)[number];

/** Settings of the `mapper` binary: defaults < YAML (--config) < env EF_MAPPER_* < flags. */
export const MapperSettingsSchema = z.strictObject({
  protocol: z.enum(MAPPER_PROTOCOLS, { error: `must be one of: ${MAPPER_PROTOCOLS.join(', ')}` }),
  node: NameSchema,
  edgeUrl: z.url({ protocol: /^https?$/, error: 'must be an http(s) URL of edgecore\'s local API, e.g. http://127.0.0.1:10350' }),
  mqtt: z.url({ protocol: /^mqtts?$/, error: 'must be an mqtt:// or mqtts:// URL of the edge broker, e.g. mqtt://127.0.0.1:1883' }).default('mqtt://127.0.0.1:1883'),
  /** File holding the mapper password (first line); wins over EF_MAPPER_PASSWORD. */
  credentialFile: z.string().min(1).optional(),
  /** Only from env (EF_MAPPER_PASSWORD) or the YAML file: a flag would show it in `ps`. */
  password: z.string().min(1).optional(),
  refreshSeconds: z.coerce.number().positive().max(86_400).default(30),
  logLevel: logLevelSetting.default('info'),
  /** Also publish every report as a telemetry sample. */
  telemetry: boolSetting.default(false),
  /** OPC UA only: folder of the client's PKI (default: node-opcua's per-user folder). */
  pkiDir: z.string().min(1).optional(),
});

export type MapperSettings = Omit<z.infer<typeof MapperSettingsSchema>, 'password' | 'credentialFile'> & { password: string };

export const MAPPER_ENV_PREFIX = 'EF_MAPPER_';

/**
 * Flags (from commander, `protocol` from the optional argument) + env + optional YAML → settings, with
 * the password read from the credential file when one is named. Throws SettingsError naming
 * the setting and where its bad value came from.
 */
export function loadMapperSettings(flags: Record<string, unknown>, env: NodeJS.ProcessEnv, readFile: (path: string) => string = (p) => readFileSync(p, 'utf8')): MapperSettings {
  const { config, ...rest } = flags;
  // The protocol is the command's argument, not a flag: name it that way when it is wrong.
  if (typeof rest.protocol === 'string' && !(MAPPER_PROTOCOLS as readonly string[]).includes(rest.protocol)) {
    throw new SettingsError(`unknown protocol "${rest.protocol}" (argument <protocol>): must be one of: ${MAPPER_PROTOCOLS.join(', ')}`, 'protocol');
  }
  const file = typeof config === 'string' ? settingsFromYaml(readText(readFile, config, 'config file'), config) : undefined;
  if (rest.protocol === undefined && file?.protocol === undefined && env[`${MAPPER_ENV_PREFIX}PROTOCOL`] === undefined) {
    throw new SettingsError(`no protocol: name it as the argument (e.g. \`mapper modbus\`) or set ${MAPPER_ENV_PREFIX}PROTOCOL`, 'protocol');
  }
  const { password: plain, credentialFile, ...settings } = resolveSettings(MapperSettingsSchema, MAPPER_ENV_PREFIX, { file, env, flags: rest });
  let password = plain;
  if (credentialFile) {
    password = readText(readFile, credentialFile, 'credential file').split(/\r?\n/)[0]!.trim();
    if (!password) throw new SettingsError(`credential file ${credentialFile} is empty`, 'credentialFile');
  }
  if (!password) {
    throw new SettingsError(`no mapper password: pass --credential-file <file> or set ${MAPPER_ENV_PREFIX}PASSWORD`, 'credentialFile');
  }
  return { ...settings, password };
}

function readText(readFile: (path: string) => string, path: string, what: string): string {
  try {
    return readFile(path);
  } catch (err) {
    throw new SettingsError(`cannot read ${what} ${path}: ${(err as Error).message}`, what === 'config file' ? 'config' : 'credentialFile');
  }
}
