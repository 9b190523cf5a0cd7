/**
 * Runs `work` for every item, at most `limit` at a time, each item once: for store writes that
 * are each a consensus round trip over etcd (the scheduler's Workload writes, the hub's liveness
 * writes), where one at a time bounds a pass to the round-trip time and all at once would queue
 * past the call deadlines.
 */
export async function eachAtMost<T>(items: readonly T[], limit: number, work: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) await work(items[next++]!);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}

