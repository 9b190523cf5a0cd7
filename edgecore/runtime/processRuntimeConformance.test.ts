import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ProcessTemplateSchema } from '../../protocol/index.js';
import { runtimeConformanceSuite } from '../../test/runtime/conformance.js';
import { ProcessRuntime } from './processRuntime.js';
import type { RecordKeeper, WorkloadRecord } from './runtime.js';

/** The runtime's records kept in memory (edgecore keeps them in its meta DB). */
class MemoryRecords implements RecordKeeper {
  private readonly byName = new Map<string, WorkloadRecord>();
  save(record: WorkloadRecord): void { this.byName.set(record.name, structuredClone(record)); }
  remove(name: string): void { this.byName.delete(name); }
  load(): WorkloadRecord[] { return [...this.byName.values()].map((r) => structuredClone(r)); }
}

runtimeConformanceSuite('process runtime', async ({ backoff }) => {
  const dir = mkdtempSync(join(tmpdir(), 'procrt-conf-'));
  return {
    runtime: new ProcessRuntime({ logDir: join(dir, 'logs'), records: new MemoryRecords(), backoff, stopGraceMs: 1_000 }),
    template: ({ command: [program, ...args], ...rest }) => ProcessTemplateSchema.parse({ runtime: 'process', command: program, args, ...rest }),
    cleanup: async () => { rmSync(dir, { recursive: true, force: true }); },
  };
});
