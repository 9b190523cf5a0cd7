import type { Row } from './format.js';

/**
 * A table printed a row at a time, as `kubectl get -w` does: the header and first rows, then
 * one line per change, aligned with what was printed before. A column only ever widens (a
 * longer cell pushes the columns after it right from that line on). Same look as renderTable:
 * left-aligned, three spaces between columns, trailing spaces trimmed.
 */
export class TableStream {
  private readonly widths: number[];

  constructor(private readonly head: readonly string[]) {
    this.widths = head.map((h) => h.length);
  }

  /** The header and `rows`, with widths fitted to all of them. */
  start(rows: readonly Row[]): string {
    for (const row of rows) this.fit(row);
    return [this.head, ...rows].map((row) => this.line(row)).join('');
  }

  /** One more row, at the widths so far. */
  row(row: Row): string {
    this.fit(row);
    return this.line(row);
  }

  private fit(row: Row): void {
    row.forEach((cell, i) => { this.widths[i] = Math.max(this.widths[i] ?? 0, cell.length); });
  }

  private line(row: readonly string[]): string {
    return row.map((cell, i) => cell.padEnd((this.widths[i] ?? 0) + 3)).join('').trimEnd() + '\n';
  }
}
