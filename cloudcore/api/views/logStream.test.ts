import { EventEmitter } from 'node:events';
import { describe, expect, it } from 'vitest';
import { BoundedLogWriter, droppedMarker } from './logStream.js';

/** A response whose reader reads nothing until `drainAll`. */
class PausedResponse extends EventEmitter {
  readonly written: string[] = [];
  writableLength = 0;
  get writableNeedDrain(): boolean { return this.writableLength > 16; }
  write(chunk: string): boolean {
    this.written.push(chunk);
    this.writableLength += Buffer.byteLength(chunk);
    return !this.writableNeedDrain;
  }
  drainAll(): void {
    this.writableLength = 0;
    this.emit('drain');
  }
}

describe('BoundedLogWriter', () => {
  it('keeps at most the bound queued, drops the rest, and says how many it dropped once the reader caught up', () => {
    const res = new PausedResponse();
    const writer = new BoundedLogWriter(res, 100);
    for (let i = 0; i < 50; i++) writer.lines([`line ${String(i).padStart(4, '0')}`]); // 10 bytes each
    expect(res.writableLength).toBeLessThanOrEqual(100);
    expect(res.written).toHaveLength(10);
    expect(writer.droppedTotal).toBe(40);
    res.drainAll();
    expect(res.written.at(-1)).toBe(droppedMarker(40));
    writer.lines(['after']);
    expect(res.written.at(-1)).toBe('after\n');
    expect(writer.pendingMarker()).toBe('');
  });

  it('hands the marker to the caller when the stream ends while lines are being dropped', () => {
    const res = new PausedResponse();
    const writer = new BoundedLogWriter(res, 20);
    writer.lines(['0123456789', '0123456789', 'x']);
    expect(writer.pendingMarker()).toBe(droppedMarker(3));
    res.drainAll();
    expect(res.written).toEqual([]);
  });
});
