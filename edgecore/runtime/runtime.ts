import type { WorkloadStatus, WorkloadTemplate } from '../../protocol/index.js';

/**
 * What edgecore asks of a workload runtime. Implementations: the process runtime
 * (`processRuntime.ts`) and the container runtime (`container/containerRuntime.ts`); both pass
 * the conformance suite `test/runtime/conformance.ts` (run by `processRuntimeConformance.test.ts`
 * and `test/container/containerRuntimeConformance.test.ts`).
 * A runtime supervises on its own (restart policy, back-off) and reports every state change
 * through `onStatus`; edgecore turns those into outbox entries.
 */

export interface DesiredWorkload {
  /** Local name, unique on the node (the app name). */
  name: string;
  /** App generation; changes when the template changes. */
  generation: number;
  template: WorkloadTemplate;
}

/** What a runtime must remember across edgecore restarts, kept by edgecore in its meta DB. */
export interface WorkloadRecord {
  name: string;
  pid: number | null;
  /** Process start time from /proc/<pid>/stat, to tell our process from a reused pid. */
  startTicks: number | null;
  status: WorkloadStatus;
}

export interface RecordKeeper {
  save(record: WorkloadRecord): void;
  remove(name: string): void;
  load(): WorkloadRecord[];
}

export interface ExecResult {
  exitCode: number | null;
  stdout: string;
  stderr: string;
  timedOut: boolean;
}

export type StatusListener = (name: string, status: WorkloadStatus) => void;

export interface Runtime {
  /**
   * Makes `desired` run. Starts it if absent; if the generation or template differs from
   * what runs, stops the old one and starts the new one. Idempotent.
   */
  ensure(desired: DesiredWorkload): Promise<void>;
  /** Stops and forgets a workload. Idempotent. */
  remove(name: string): Promise<void>;
  /** Current status of every workload the runtime knows. */
  statuses(): Map<string, WorkloadStatus>;
  onStatus(listener: StatusListener): void;
  /** Last `tail` lines of the workload's combined stdout/stderr log. */
  readLogs(name: string, tail: number): Promise<string[]>;
  /** Calls `onLines` with each batch of new log lines until the returned function is called. */
  followLogs(name: string, onLines: (lines: string[]) => void): () => void;
  /**
   * Runs `command` beside the workload: with its env and working dir (process runtime), or
   * inside its container. Output beyond `maxOutputBytes` per stream is cut.
   */
  exec(name: string, command: string[], opts: { timeoutMs: number; maxOutputBytes: number }): Promise<ExecResult>;
  /**
   * Leaves the node. `stopWorkloads: false` is how edgecore exits for an upgrade or restart
   * when workloads should keep running: containers stay with their engine, process workloads
   * are handed over (processHandover.ts); the next edgecore adopts both, same pids.
   */
  shutdown(opts: { stopWorkloads: boolean }): Promise<void>;
}
