/**
 * Runs async operations one at a time per key (e.g. ensure/remove/shutdown of one workload
 * never interleave), while different keys proceed in parallel. A failed operation does not
 * block the ones queued after it; its caller still sees the rejection.
 */
export class KeyedQueue {
  private readonly tails = new Map<string, Promise<void>>();

  run(key: string, op: () => Promise<void>): Promise<void> {
    const previous = this.tails.get(key) ?? Promise.resolve();
    const result = previous.then(op);
    const tail = result.catch(() => {});
    this.tails.set(key, tail);
    void tail.then(() => { if (this.tails.get(key) === tail) this.tails.delete(key); });
    return result;
  }
}
