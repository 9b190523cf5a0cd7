import { EXEC_OUTPUT_LIMIT_BYTES, type EdgeFrame, type ExecRequestFrame, type LogsRequestFrame } from '../../protocol/index.js';
import type { Runtime } from '../runtime/runtime.js';

/**
 * The edge end of operator requests that ride the cloud link (`edgectl logs`, `edgectl exec`).
 * Answers go back as frames with the request's id; log output is cut into frames well under
 * the 1 MiB frame limit, and a follow stream ends when the cloud cancels it or the link drops.
 */
const MAX_LINES_PER_FRAME = 1000;
const MAX_BYTES_PER_FRAME = 512 * 1024;

export class EdgeOperatorRequests {
  private readonly follows = new Map<string, () => void>();

  constructor(
    private readonly runtime: Runtime,
    private readonly send: (frame: EdgeFrame) => void,
    private readonly log?: { info(o: object, m?: string): void; warn(o: object, m?: string): void },
  ) {}

  async onLogsRequest(req: LogsRequestFrame): Promise<void> {
    const known = this.runtime.statuses().has(req.workload);
    if (!known) {
      this.send({ type: 'logsData', id: req.id, lines: [], done: true, error: `no workload "${req.workload}" on this node` });
      return;
    }
    const tail = req.tail > 0 ? await this.runtime.readLogs(req.workload, req.tail) : [];
    if (!req.follow) {
      this.sendLines(req.id, tail, true);
      return;
    }
    this.sendLines(req.id, tail, false, true);
    // Subscribed after the tail was read: a line written during that read may be missed, never
    // sent twice (as with `kubectl logs -f`).
    this.follows.set(req.id, this.runtime.followLogs(req.workload, (lines) => this.sendLines(req.id, lines, false)));
  }

  onCancel(id: string): void {
    this.follows.get(id)?.();
    this.follows.delete(id);
  }

  /**
   * Runs an operator's command and logs it with the request id cloudcore's audit log names (the
   * frame id), so one exec can be followed from the operator's token to what ran here. Only
   * argv[0] is logged: the rest may carry secrets.
   */
  async onExecRequest(req: ExecRequestFrame): Promise<void> {
    const ran = { requestId: req.id, workload: req.workload, command: req.command[0] };
    try {
      const r = await this.runtime.exec(req.workload, req.command, { timeoutMs: req.timeoutSeconds * 1000, maxOutputBytes: EXEC_OUTPUT_LIMIT_BYTES });
      this.log?.info({ ...ran, exitCode: r.exitCode, timedOut: r.timedOut }, 'operator exec ran');
      this.send({ type: 'execResult', id: req.id, exitCode: r.exitCode, stdout: r.stdout, stderr: r.stderr, timedOut: r.timedOut });
    } catch (err) {
      this.log?.warn({ ...ran, err: (err as Error).message }, 'operator exec failed');
      this.send({ type: 'execResult', id: req.id, exitCode: null, stdout: '', stderr: '', timedOut: false, error: (err as Error).message });
    }
  }

  /** The link dropped: the cloud side has already ended these streams. */
  cancelAll(): void {
    for (const stop of this.follows.values()) stop();
    this.follows.clear();
  }

  private sendLines(id: string, lines: string[], done: boolean, force = false): void {
    let chunk: string[] = [];
    let bytes = 0;
    for (const line of lines) {
      if (chunk.length >= MAX_LINES_PER_FRAME || bytes + line.length > MAX_BYTES_PER_FRAME) {
        this.send({ type: 'logsData', id, lines: chunk, done: false });
        chunk = [];
        bytes = 0;
      }
      chunk.push(line);
      bytes += line.length;
    }
    if (chunk.length || done || force) this.send({ type: 'logsData', id, lines: chunk, done });
  }
}
