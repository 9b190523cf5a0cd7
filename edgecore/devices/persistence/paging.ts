/**
 * Reading a large table a page at a time. The persistence hands aedes Node streams that are
 * consumed slowly, while the broker keeps writing to the same tables (clearing each queued
 * packet as it is acked, for one). A better-sqlite3 cursor held open across those writes would
 * block the connection, and reading everything up front would hold the whole table in memory,
 * so each page is a fresh keyset query: "the next `pageSize` rows after the last one seen".
 */

export const DEFAULT_PAGE_SIZE = 64;

/**
 * Yields the rows of successive pages. `fetchPage(last)` returns up to `pageSize` rows that come
 * after `last` (the first page when `last` is undefined), in key order. Stops early, without an
 * error, once `isOpen()` turns false: the persistence was destroyed while a stream was pending.
 */
export function* pagedRows<Row>(
  fetchPage: (last: Row | undefined) => Row[],
  pageSize: number,
  isOpen: () => boolean,
): Generator<Row, void, undefined> {
  let last: Row | undefined;
  for (;;) {
    if (!isOpen()) return;
    const page = fetchPage(last);
    yield* page;
    if (page.length < pageSize) return;
    last = page[page.length - 1];
  }
}
