import { randomUUID } from 'node:crypto';
import type { CloudFrame, ExecResultFrame, LogsDataFrame } from '../../protocol/index.js';

/**
 * Operator requests tunnelled to one edge over its existing link (logs, exec): no inbound
 * port on the edge and nothing to configure. Each request has an id; the edge's answers carry
 * it back. When the link drops, every open request ends with an error.
 */

export interface LogSink {
  lines(lines: string[]): void;
  end(error?: string): void;
}

export interface ExecOutcome {
  exitCode: number | null;
  stdout: string;
  stderr: string;
  timedOut: boolean;
}

export class EdgeRequestError extends Error {
  constructor(message: string, readonly statusCode: number) { super(message); }
}

export class OperatorRequests {
  private readonly logStreams = new Map<string, LogSink>();
  private readonly execs = new Map<string, { resolve(o: ExecOutcome): void; reject(e: Error): void; timer: NodeJS.Timeout }>();

  constructor(private readonly node: string, private readonly send: (frame: CloudFrame) => void) {}

  /**
   * Starts streaming a workload's log into `sink`; returns a cancel function. `requestId` (the
   * API request's id) is the frame id when it is free, so the edge logs the id the audit names.
   */
  logs(workload: string, opts: { tail: number; follow: boolean }, sink: LogSink, requestId?: string): () => void {
    const id = this.freshId(requestId);
    this.logStreams.set(id, sink);
    this.send({ type: 'logsRequest', id, workload, tail: opts.tail, follow: opts.follow });
    return () => {
      if (this.logStreams.delete(id)) this.send({ type: 'streamCancel', id });
    };
  }

  exec(workload: string, command: string[], timeoutSeconds: number, requestId?: string): Promise<ExecOutcome> {
    const id = this.freshId(requestId);
    return new Promise((resolve, reject) => {
      // The edge enforces the timeout; this one only covers an edge that never answers.
      const timer = setTimeout(() => {
        this.execs.delete(id);
        reject(new EdgeRequestError(`node "${this.node}" did not answer the exec within ${timeoutSeconds + 10} s`, 504));
      }, (timeoutSeconds + 10) * 1000);
      this.execs.set(id, { resolve, reject, timer });
      this.send({ type: 'execRequest', id, workload, command, timeoutSeconds });
    });
  }

  /** The caller's id unless it is unusable as a frame id or already open on this link (then a new one). */
  private freshId(wanted: string | undefined): string {
    const usable = wanted !== undefined && wanted.length >= 1 && wanted.length <= 64 && !this.logStreams.has(wanted) && !this.execs.has(wanted);
    return usable ? wanted : randomUUID();
  }

  onLogsData(frame: LogsDataFrame): void {
    const sink = this.logStreams.get(frame.id);
    if (!sink) return; // cancelled meanwhile
    if (frame.lines.length > 0) sink.lines(frame.lines);
    if (frame.done) {
      this.logStreams.delete(frame.id);
      sink.end(frame.error);
    }
  }

  onExecResult(frame: ExecResultFrame): void {
    const pending = this.execs.get(frame.id);
    if (!pending) return;
    this.execs.delete(frame.id);
    clearTimeout(pending.timer);
    if (frame.error) pending.reject(new EdgeRequestError(frame.error, frame.error.includes('no workload') ? 404 : 502));
    else pending.resolve({ exitCode: frame.exitCode, stdout: frame.stdout, stderr: frame.stderr, timedOut: frame.timedOut });
  }

  /** The link went away: end everything still open. */
  closeAll(reason: string): void {
    for (const sink of this.logStreams.values()) sink.end(reason);
    this.logStreams.clear();
    for (const pending of this.execs.values()) {
      clearTimeout(pending.timer);
      pending.reject(new EdgeRequestError(reason, 503));
    }
    this.execs.clear();
  }
}
