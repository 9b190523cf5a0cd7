#!/usr/bin/env node
/**
 * Prints where a `node --cpu-prof` profile spent its time: the top functions by self time and
 * by inclusive time, optionally only within a window (ms since the profile started; the fan-out
 * benchmark prints each step's window on cloudcore's time axis).
 *
 *   node dist-test/test/bench/cpuProfileTop.js <file.cpuprofile> [--from-ms N] [--to-ms M] [--top 25]
 */
import { readFileSync } from 'node:fs';
import { Command } from 'commander';
import { z } from 'zod';

const ProfileSchema = z.object({
  nodes: z.array(z.object({
    id: z.number(),
    callFrame: z.object({ functionName: z.string(), url: z.string(), lineNumber: z.number() }),
    children: z.array(z.number()).optional(),
  })),
  startTime: z.number(),
  endTime: z.number(),
  samples: z.array(z.number()),
  timeDeltas: z.array(z.number()),
});
type Profile = z.infer<typeof ProfileSchema>;

export interface FunctionTime {
  name: string;
  selfMs: number;
  inclusiveMs: number;
}

/** Self and inclusive time per function (name + file:line) within [fromMs, toMs) of the profile. */
export function functionTimes(profile: Profile, fromMs = 0, toMs = Number.POSITIVE_INFINITY): { rows: FunctionTime[]; windowMs: number } {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const key = (id: number) => {
    const f = byId.get(id)!.callFrame;
    const file = f.url.replace(/^file:\/\//, '').replace(/^.*\/dist(?:-test)?\//, 'dist/').replace(/^.*\/node_modules\//, 'node_modules/');
    return `${f.functionName || '(anonymous)'} ${file}${file ? `:${f.lineNumber + 1}` : ''}`;
  };
  const self = new Map<string, number>();
  const inclusive = new Map<string, number>();
  let t = 0;
  let windowUs = 0;
  profile.samples.forEach((id, i) => {
    const delta = profile.timeDeltas[i] ?? 0;
    t += delta;
    const ms = t / 1000;
    if (ms < fromMs || ms >= toMs) return;
    windowUs += delta;
    self.set(key(id), (self.get(key(id)) ?? 0) + delta);
    const seen = new Set<string>();
    for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
      const k = key(cur);
      if (seen.has(k)) continue;
      seen.add(k);
      inclusive.set(k, (inclusive.get(k) ?? 0) + delta);
    }
  });
  const rows = [...inclusive.entries()].map(([name, inc]) => ({ name, selfMs: (self.get(name) ?? 0) / 1000, inclusiveMs: inc / 1000 }));
  return { rows, windowMs: windowUs / 1000 };
}

function main(): void {
  const program = new Command('cpuProfileTop')
    .argument('<file>', '.cpuprofile written by node --cpu-prof')
    .option('--from-ms <n>', 'start of the window, ms since the profile started', '0')
    .option('--to-ms <n>', 'end of the window (default: end of profile)')
    .option('--top <n>', 'rows per table', '25')
    .parse(process.argv);
  const opts = z.object({
    fromMs: z.coerce.number().min(0),
    toMs: z.coerce.number().min(0).optional(),
    top: z.coerce.number().int().min(1),
  }).parse(program.opts());
  const profile = ProfileSchema.parse(JSON.parse(readFileSync(program.args[0]!, 'utf8')));
  const { rows, windowMs } = functionTimes(profile, opts.fromMs, opts.toMs);
  const total = (profile.endTime - profile.startTime) / 1000;
  const pct = (ms: number) => `${((ms / Math.max(windowMs, 1e-9)) * 100).toFixed(1).padStart(5)} %`;
  process.stdout.write(`profile ${total.toFixed(0)} ms; window ${opts.fromMs}..${opts.toMs ?? 'end'} ms holds ${windowMs.toFixed(0)} ms of samples\n`);
  process.stdout.write('\nby self time:\n');
  for (const r of [...rows].sort((a, b) => b.selfMs - a.selfMs).slice(0, opts.top)) {
    process.stdout.write(`${r.selfMs.toFixed(1).padStart(9)} ms ${pct(r.selfMs)}  ${r.name}\n`);
  }
  process.stdout.write('\nby inclusive time:\n');
  for (const r of [...rows].sort((a, b) => b.inclusiveMs - a.inclusiveMs).slice(0, opts.top)) {
    process.stdout.write(`${r.inclusiveMs.toFixed(1).padStart(9)} ms ${pct(r.inclusiveMs)}  ${r.name}\n`);
  }
}

main();
