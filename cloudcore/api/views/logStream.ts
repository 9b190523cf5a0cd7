/**
 * The HTTP side of a workload log stream (`GET …/logs`, with or without follow). The edge pushes
 * lines as fast as its workload writes them and cloudcore cannot slow a workload down, so a
 * reader slower than the log must not make cloudcore queue the difference: at most
 * `maxBufferedBytes` wait in the response's buffer. Past that, lines are dropped (counted) until
 * the buffer has drained; then one marker line says how many were lost, and lines flow again.
 */

/** What the writer needs of the response (a ServerResponse; a fake one in unit tests). */
export interface LogResponse {
  readonly writableLength: number;
  readonly writableNeedDrain: boolean;
  write(chunk: string): boolean;
  once(event: 'drain', listener: () => void): unknown;
}

/** Bytes a log reader may fall behind before lines are dropped. */
export const DEFAULT_LOG_BUFFER_BYTES = 1024 * 1024;

export function droppedMarker(count: number): string {
  return `[edgefleet: ${count} line${count === 1 ? '' : 's'} dropped: the reader fell behind the log]\n`;
}

export class BoundedLogWriter {
  private dropping = false;
  private droppedNow = 0;
  /** Lines dropped over the stream's life. */
  droppedTotal = 0;

  constructor(
    private readonly response: LogResponse,
    private readonly maxBufferedBytes = DEFAULT_LOG_BUFFER_BYTES,
    /** Told of every drop, e.g. to count them for all streams. */
    private readonly onDropped: (count: number) => void = () => {},
  ) {}

  lines(lines: readonly string[]): void {
    if (lines.length === 0) return;
    if (this.dropping) return this.drop(lines.length);
    const text = lines.map((l) => `${l}\n`).join('');
    if (this.response.writableLength + Buffer.byteLength(text) > this.maxBufferedBytes) {
      this.dropping = true;
      this.drop(lines.length);
      // 'drain' comes once the buffer is empty; a buffer below the high-water mark never asks for one.
      if (this.response.writableNeedDrain) this.response.once('drain', () => this.resume());
      else queueMicrotask(() => this.resume());
      return;
    }
    this.response.write(text);
  }

  /** Text to write before the stream ends: the marker for lines dropped since the last one. */
  pendingMarker(): string {
    if (this.droppedNow === 0) return '';
    const marker = droppedMarker(this.droppedNow);
    this.droppedNow = 0;
    return marker;
  }

  private drop(count: number): void {
    this.droppedNow += count;
    this.droppedTotal += count;
    this.onDropped(count);
  }

  private resume(): void {
    this.dropping = false;
    const marker = this.pendingMarker();
    if (marker) this.response.write(marker);
  }
}
