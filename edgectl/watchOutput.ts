import type { WatchEventType } from '../protocol/index.js';
import type { Context } from './context.js';
import { renderData, type OutputFormat, type Row } from './format.js';
import { TableStream } from './tableStream.js';

export interface WatchView<T> {
  columns: string[];
  row: (item: T) => Row;
  /** The column that reads `<deleted>` in a deleted object's last row (else it would read like one more change). */
  deletedColumn: string;
}

/**
 * `get … -w`: what the list showed, then one line per change until cloudcore ends the stream:
 * table rows aligned with the ones before (kubectl's look), one `{type, object}` per line with
 * -o json, one document each with -o yaml.
 */
export async function printWatch<T>(
  ctx: Context, output: OutputFormat, view: WatchView<T>, listed: readonly T[],
  follow: (onEvent: (type: WatchEventType, item: T) => void) => Promise<void>,
): Promise<void> {
  const table = new TableStream(view.columns);
  const event = (type: WatchEventType, object: T) => (output === 'json'
    ? `${JSON.stringify({ type, object })}\n`
    : `---\n${renderData({ type, object }, 'yaml')}`);
  if (output === 'table') ctx.out(table.start(listed.map(view.row)));
  else for (const object of listed) ctx.out(event('ADDED', object));
  await follow((type, item) => {
    if (output !== 'table') return void ctx.out(event(type, item));
    const row = view.row(item);
    if (type === 'DELETED') row[view.columns.indexOf(view.deletedColumn)] = '<deleted>';
    ctx.out(table.row(row));
  });
}
