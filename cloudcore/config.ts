import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { logLevelSetting, portSetting, resolveSettings, settingsFromYaml } from '../protocol/index.js';

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
  /** PEM certificate chain and private key files: with both, the API, hub and dashboard are served over HTTPS (wss:// for edges). */
  tlsCert: z.string().min(1).optional(),
  tlsKey: z.string().min(1).optional(),
  /** Key file that seals Secret values in the store (default `<dataDir>/secret-encryption.key`, made on first start). */
  secretKeyFile: z.string().min(1).optional(),
  /** The audit log (`audit.log` in dataDir) is rotated at this size; keeps auditLogFiles rotated files besides. */
  auditLogMaxBytes: z.coerce.number().int().min(4096).default(10 * 1024 * 1024),
  auditLogFiles: z.coerce.number().int().min(1).max(1000).default(5),
}).superRefine((s, ctx) => {
  if ((s.tlsCert === undefined) !== (s.tlsKey === undefined)) {
    ctx.addIssue({ code: 'custom', path: [s.tlsCert === undefined ? 'tlsCert' : 'tlsKey'], message: 'HTTPS needs tlsCert and tlsKey together' });
  }
});
export type CloudSettings = z.infer<typeof CloudSettingsSchema>;

export function loadCloudSettings(flags: Record<string, unknown>, env: NodeJS.ProcessEnv): CloudSettings {
  const { config, ...rest } = flags;
  const file = typeof config === 'string' ? settingsFromYaml(readFileSync(config, 'utf8'), config) : undefined;
  return resolveSettings(CloudSettingsSchema, 'EF_CLOUD_', { file, env, flags: rest });
}
