#!/usr/bin/env node
/**
 * The device hub's commits on their own, without MQTT: what one group commit of a paced burst
 * costs (the twin rows it saves plus the outbox entries it writes, in one WAL transaction with
 * `synchronous = FULL`) on the real MetaStore and TwinStore. In bench:devices' paced phase each
 * 5 ms burst of ~30 messages is one such commit, and the commits are a quarter of the hub's
 * time, so this is where the write pattern of the twins and the outbox shows.
 *
 *   npm run bench:devices:commits -- [--twins 30] [--entries 12] [--commits 3000] [--db-dir DIR]
 *
 * `--entries` are half `twinReported` entries (coalesced per device) and half telemetry batches
 * (spooled); the spool is filled to its bound first, as during an outage or in bench:devices.
 * Run it under `strace -f -c -e trace=pwrite64,fsync` to count WAL frames (two writes each).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Command } from 'commander';
import { z } from 'zod';
import { TwinStore } from '../../../edgecore/devices/twin/twinStore.js';
import { MetaStore, type NewUpstreamEntry } from '../../../edgecore/meta/metaStore.js';
import { summarizeLatencies } from '../figures.js';
import { parseBenchOptions } from '../harness.js';
import { round } from '../procStats.js';
import { deviceNames } from './benchDevices.js';

const OptionsSchema = z.object({
  twins: z.coerce.number().int().min(0).max(10_000),
  entries: z.coerce.number().int().min(0).max(10_000),
  commits: z.coerce.number().int().min(1).max(100_000),
  devices: z.coerce.number().int().min(1).max(100_000),
  dbDir: z.string().min(1).optional(),
});

function parseOptions(argv: string[]): z.infer<typeof OptionsSchema> {
  const program = new Command('hubCommitBench')
    .option('--twins <n>', 'twin rows saved per commit (random devices)', '30')
    .option('--entries <n>', 'outbox entries per commit: half twinReported, half telemetry', '12')
    .option('--commits <n>', 'commits to time', '3000')
    .option('--devices <n>', 'devices on the node (twin rows in the table)', '1000')
    .option('--db-dir <dir>', 'parent of the temp dir holding the database (default: the OS temp dir)');
  return parseBenchOptions('hubCommitBench', program, OptionsSchema, argv);
}

function main(): void {
  const opts = parseOptions(process.argv);
  const dir = mkdtempSync(join(opts.dbDir ? resolve(opts.dbDir) : tmpdir(), 'edgefleet-hub-commits-'));
  const meta = MetaStore.open(join(dir, 'edge.db'));
  try {
    const db = meta.database;
    const twins = new TwinStore(db);
    const names = deviceNames(opts.devices);
    const inTransaction = db.transaction((fn: () => void) => fn());
    let version = 0;
    let pick = 0;
    // A fixed stride through the devices instead of Math.random: the same rows every run.
    const nextDevice = () => names[(pick = (pick + 7919) % names.length)]!;
    const at = () => new Date().toISOString();
    const commit = (twinCount: number, entryCount: number) => inTransaction.immediate(() => {
      for (let i = 0; i < twinCount; i++) {
        const now = at();
        version++;
        twins.save(nextDevice(), {
          reported: { temperature: 20 + (version % 200) / 10, counter: version }, version,
          metadata: { temperature: { updatedAt: now }, counter: { updatedAt: now } }, lastSeen: now, online: true,
        });
      }
      const entries: NewUpstreamEntry[] = [];
      for (let i = 0; i < entryCount; i++) {
        const device = nextDevice();
        const now = at();
        entries.push(i % 2 === 0
          ? { kind: 'twinReported', key: device, body: { device, twin: { reported: { temperature: 21, counter: version }, version, metadata: {} }, online: true, lastSeen: now, observedGeneration: 1 } }
          : { kind: 'telemetry', key: device, body: { device, samples: [{ t: now, values: { temperature: 21, counter: version } }] } });
      }
      meta.enqueueMany(entries);
    });
    // Fill the spool to its bound (10,000 telemetry entries) and every device's twinReported slot.
    for (let i = 0; i < 20; i++) commit(0, 1000);
    const times: number[] = [];
    const started = performance.now();
    for (let i = 0; i < opts.commits; i++) {
      const t = performance.now();
      commit(opts.twins, opts.entries);
      times.push(performance.now() - t);
    }
    const seconds = (performance.now() - started) / 1000;
    const ms = summarizeLatencies(times);
    const mean = times.reduce((a, b) => a + b, 0) / times.length;
    process.stdout.write(`${JSON.stringify({
      bench: 'hubCommits', node: process.version, ...opts, seconds: round(seconds, 2),
      commitMs: { p50: round(ms.p50, 3), p90: round(ms.p90, 3), p99: round(ms.p99, 3), max: round(ms.max, 2), mean: round(mean, 3) },
      outbox: meta.outboxStats(),
    })}\n`);
  } finally {
    meta.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

main();
