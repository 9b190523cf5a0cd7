import { statSync } from 'node:fs';
import type { RunOutcome } from './restartPolicy.js';

/** Small pure helpers of the process runtime, kept apart so `processRuntime.ts` stays readable. */

const INHERITED_ENV = ['PATH', 'HOME', 'USER', 'LOGNAME', 'SHELL', 'LANG', 'LANGUAGE', 'LC_ALL', 'LC_CTYPE', 'TZ', 'TMPDIR'];
const FALLBACK_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

/**
 * The environment of a workload (and of its exec probes and `edgectl exec` commands): a small
 * allow-list of edgecore's own variables, never credentials meant for edgecore, plus the template's.
 * A workload running as a user of its own does not get edgecore's HOME, USER and LOGNAME (root's
 * home is not its to use): HOME is `/`, as systemd gives its dynamic users, unless the template says.
 */
export function workloadEnv(templateEnv: Record<string, string>, ownUser = false): Record<string, string> {
  const env: Record<string, string> = {};
  for (const key of INHERITED_ENV) {
    const value = process.env[key];
    if (value !== undefined) env[key] = value;
  }
  env.PATH ??= FALLBACK_PATH;
  if (ownUser) {
    delete env.USER;
    delete env.LOGNAME;
    env.HOME = '/';
  }
  return { ...env, ...templateEnv };
}

/** JSON with sorted object keys, so equal templates compare equal whatever their key order. */
export function stableStringify(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) => (v !== null && typeof v === 'object' && !Array.isArray(v)
    ? Object.fromEntries(Object.entries(v).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
    : v));
}

export function directoryProblem(path: string): string | null {
  try {
    return statSync(path).isDirectory() ? null : `workingDir ${JSON.stringify(path)} is not a directory`;
  } catch {
    return `workingDir ${JSON.stringify(path)} does not exist`;
  }
}

export function spawnErrorMessage(err: Error, command: string): string {
  const code = (err as NodeJS.ErrnoException).code;
  if (code === 'ENOENT') return `command not found: ${JSON.stringify(command)} (${err.message})`;
  if (code === 'EACCES') return `command not executable: ${JSON.stringify(command)} (${err.message})`;
  return `cannot start ${JSON.stringify(command)}: ${err.message}`;
}

export function describeExit(outcome: RunOutcome): string {
  return outcome.signal !== null ? `killed by signal ${outcome.signal}` : `exited with code ${outcome.exitCode}`;
}

export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

export function now(): string {
  return new Date().toISOString();
}

/** Whether `promise` settles within `ms`; the timer is cleared either way. */
export async function settlesWithin(promise: Promise<void>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<boolean>((resolve) => { timer = setTimeout(() => resolve(false), ms); });
  try {
    return await Promise.race([promise.then(() => true), timeout]);
  } finally {
    clearTimeout(timer);
  }
}
