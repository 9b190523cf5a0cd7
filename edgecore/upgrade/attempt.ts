import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { AgentUpgradeStatusSchema, AgentVersionSchema, NameSchema, type AgentUpgradeStatus } from '../../protocol/index.js';
import type { SwitchRecord } from './decide.js';

/**
 * `<dataDir>/upgrade/attempt.json`: the last upgrade attempt, so the agent that starts after a
 * switch (the new one, or the old one after a rollback) knows what was tried and what ran then.
 * Written whole to a temp file and renamed: a power cut leaves the old record or the new one.
 */

const SwitchRecordSchema = z.strictObject({
  upgrade: NameSchema,
  revision: z.number().int().positive(),
  version: AgentVersionSchema,
  previousVersion: AgentVersionSchema,
  workloads: z.array(z.strictObject({ name: NameSchema, runtime: z.string().max(32), pid: z.number().int().positive().nullable() })).max(10_000),
  failure: z.string().max(1024).optional(),
});

const AttemptFileSchema = z.strictObject({
  status: AgentUpgradeStatusSchema,
  record: SwitchRecordSchema.optional(),
});
export interface AttemptFile { status: AgentUpgradeStatus; record?: SwitchRecord | undefined }

export const upgradeDir = (dataDir: string): string => join(dataDir, 'upgrade');

/** The record, or undefined when there is none or it does not parse (then it is as if none: said by the caller). */
export function readAttempt(dataDir: string): { attempt?: AttemptFile; problem?: string } {
  let text: string;
  try {
    text = readFileSync(join(upgradeDir(dataDir), 'attempt.json'), 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return {};
    return { problem: (err as Error).message };
  }
  let json: unknown;
  try { json = JSON.parse(text); } catch (err) { return { problem: `attempt.json is not JSON: ${(err as Error).message}` }; }
  const parsed = AttemptFileSchema.safeParse(json);
  if (!parsed.success) return { problem: `attempt.json does not parse: ${parsed.error.message}` };
  const { status, record } = parsed.data;
  return { attempt: record ? { status, record } : { status } };
}

export function writeAttempt(dataDir: string, attempt: AttemptFile): void {
  const dir = upgradeDir(dataDir);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const tmp = join(dir, `attempt.json.tmp-${process.pid}`);
  writeFileSync(tmp, `${JSON.stringify(attempt, null, 2)}\n`, { mode: 0o600 });
  renameSync(tmp, join(dir, 'attempt.json'));
}
