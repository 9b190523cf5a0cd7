import { spawn } from 'node:child_process';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { z } from 'zod';
import { round } from '../procStats.js';

/**
 * Where edgecore's memory goes: small probe processes that load one dependency (or edgecore's
 * whole module graph) and report `process.memoryUsage()` plus the anon/file split of their RSS
 * before and after, each after a full GC, so only what stays resident is counted.
 */

const DIST = fileURLToPath(new URL('../../../', import.meta.url));
/** The repository root: bare specifiers ("zod") resolve from its node_modules. */
const ROOT = fileURLToPath(new URL('../', pathToFileURL(DIST)));
const distUrl = (path: string) => pathToFileURL(`${DIST}${path}`).href;

export interface ProbeStep { label: string; code: string }

export const STEPS = {
  zod: { label: 'zod', code: `keep.push(await import('zod'));` },
  pino: { label: 'pino', code: `keep.push(await import('pino'));` },
  ws: { label: 'ws', code: `keep.push(await import('ws'));` },
  sqlite: {
    label: 'better-sqlite3 (+ open :memory: db)',
    code: `const { default: Database } = await import('better-sqlite3'); keep.push(new Database(':memory:'));`,
  },
  commander: { label: 'commander', code: `keep.push(await import('commander'));` },
  yaml: { label: 'yaml', code: `keep.push(await import('yaml'));` },
  protocol: { label: 'protocol/ (zod schemas)', code: `keep.push(await import(${JSON.stringify(distUrl('protocol/index.js'))}));` },
  agent: { label: 'edgecore module graph (agent.js)', code: `keep.push(await import(${JSON.stringify(distUrl('edgecore/agent.js'))}));` },
  metaDb: {
    label: 'open edge meta DB (MetaStore)',
    code: `const { MetaStore } = await import(${JSON.stringify(distUrl('edgecore/meta/metaStore.js'))});`
      + ` keep.push(MetaStore.open(process.env.BENCH_PROBE_DB));`,
  },
} satisfies Record<string, ProbeStep>;

/** What a probe prints: one memory snapshot before the steps and one after each. */
const SnapshotSchema = z.object({
  label: z.string(),
  rss: z.number(), heapTotal: z.number(), heapUsed: z.number(), external: z.number(), arrayBuffers: z.number(),
  rssAnon: z.number(), rssFile: z.number(), ms: z.number(),
});
const ProbeOutputSchema = z.array(SnapshotSchema);
type Snapshot = z.infer<typeof SnapshotSchema>;

/** The probe's source: an ES module run with `node --expose-gc --input-type=module -e`. */
export function probeSource(steps: readonly ProbeStep[]): string {
  const body = steps.map((s) => `await step(${JSON.stringify(s.label)}, async () => { ${s.code} });`).join('\n');
  return `
import { readFileSync } from 'node:fs';
const keep = [];
const kb = (t, n) => Number(new RegExp('^' + n + ':\\\\s+(\\\\d+)', 'm').exec(t)[1]) * 1024;
const out = [];
const snap = (label, ms) => {
  globalThis.gc(); globalThis.gc();
  const s = readFileSync('/proc/self/status', 'utf8');
  out.push({ label, ...process.memoryUsage(), rssAnon: kb(s, 'RssAnon'), rssFile: kb(s, 'RssFile'), ms });
};
const step = async (label, fn) => { const t0 = performance.now(); await fn(); snap(label, performance.now() - t0); };
snap('node baseline', 0);
${body}
process.stdout.write(JSON.stringify(out) + '\\n');
`;
}

export interface ProbeDelta {
  label: string;
  /** Cost of this step over the previous snapshot, MiB. */
  rssMiB: number;
  rssAnonMiB: number;
  heapUsedMiB: number;
  externalMiB: number;
  ms: number;
}

/** Consecutive differences of a probe's snapshots; the first row is the bare node process. */
export function probeDeltas(snapshots: readonly Snapshot[]): ProbeDelta[] {
  const mib = (b: number) => round(b / 2 ** 20, 2);
  return snapshots.map((s, i) => {
    const p = i === 0 ? { rss: 0, rssAnon: 0, heapUsed: 0, external: 0 } : snapshots[i - 1]!;
    return {
      label: s.label, rssMiB: mib(s.rss - p.rss), rssAnonMiB: mib(s.rssAnon - p.rssAnon),
      heapUsedMiB: mib(s.heapUsed - p.heapUsed), externalMiB: mib(s.external - p.external), ms: round(s.ms, 1),
    };
  });
}

export async function runProbe(steps: readonly ProbeStep[], nodeFlags: readonly string[], dbPath: string): Promise<ProbeDelta[]> {
  const child = spawn(process.execPath, [...nodeFlags, '--expose-gc', '--input-type=module', '-e', probeSource(steps)], {
    cwd: ROOT, env: { ...process.env, BENCH_PROBE_DB: dbPath }, stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (c: string) => { stdout += c; });
  child.stderr.setEncoding('utf8').on('data', (c: string) => { stderr += c; });
  const code = await new Promise<number | null>((resolve) => child.once('exit', (c) => resolve(c)));
  if (code !== 0) throw new Error(`memory probe failed (exit ${code}): ${stderr.trim().slice(0, 2000)}`);
  return probeDeltas(ProbeOutputSchema.parse(JSON.parse(stdout)));
}

export interface MemoryProbeReport {
  /** One process per dependency: node baseline, then that dependency alone. */
  isolated: ProbeDelta[];
  /** One process loading in edgecore's order; each row is the increment over the previous. */
  cumulative: ProbeDelta[];
  /** The same cumulative probe under the chosen V8 flags (null when none were chosen). */
  cumulativeWithFlags: { flags: string[]; rows: ProbeDelta[] } | null;
}

export async function memoryProbes(dbDir: string, flags: readonly string[] | null): Promise<MemoryProbeReport> {
  const isolated: ProbeDelta[] = [];
  const alone = [STEPS.zod, STEPS.pino, STEPS.ws, STEPS.sqlite, STEPS.commander, STEPS.yaml, STEPS.protocol, STEPS.agent];
  for (const [i, step] of alone.entries()) {
    const rows = await runProbe([step], [], `${dbDir}/isolated-${i}.db`);
    if (i === 0) isolated.push(rows[0]!);
    isolated.push(rows[1]!);
  }
  const order = [STEPS.zod, STEPS.protocol, STEPS.pino, STEPS.ws, STEPS.sqlite, STEPS.commander, STEPS.yaml, STEPS.agent, STEPS.metaDb];
  const cumulative = await runProbe(order, [], `${dbDir}/cumulative.db`);
  const cumulativeWithFlags = flags && flags.length > 0
    ? { flags: [...flags], rows: await runProbe(order, flags, `${dbDir}/cumulative-flags.db`) }
    : null;
  return { isolated, cumulative, cumulativeWithFlags };
}
