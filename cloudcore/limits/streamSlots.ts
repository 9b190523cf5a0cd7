import type { EventEmitter } from 'node:events';
import { sourceAddress } from './sourceAddress.js';

/**
 * Long-lived HTTP responses (watches, log follows) are exempt from the request timeout — they
 * are meant to stay open — so they are bounded by count instead: at most `maxPerAddress` open
 * at once from one source address. A slot is taken before the response starts and given back
 * when its connection closes.
 */
export class StreamLimitError extends Error {
  readonly statusCode = 429;
}

export class StreamSlots {
  private readonly open = new Map<string, number>();
  /** Streams refused for being over the cap, since start. */
  refused = 0;
  /** Log lines dropped, since start, for readers that fell behind their stream's buffer (metrics). */
  droppedLogLines = 0;

  constructor(readonly maxPerAddress: number) {}

  openFrom(address: string): number {
    return this.open.get(address) ?? 0;
  }

  /**
   * Takes a slot for a stream from `remoteAddress`, released when `response` emits 'close' (or by
   * the returned function, whichever comes first). Throws StreamLimitError (429) when the
   * address holds every slot.
   */
  take(remoteAddress: string | undefined, response: Pick<EventEmitter, 'once'>): () => void {
    const address = sourceAddress(remoteAddress);
    const count = this.openFrom(address);
    if (count >= this.maxPerAddress) {
      this.refused++;
      throw new StreamLimitError(`too many open watch/log streams from ${address} (${count}; limit maxStreamsPerAddress = ${this.maxPerAddress}); close one first`);
    }
    this.open.set(address, count + 1);
    let held = true;
    const release = () => {
      if (!held) return;
      held = false;
      const left = this.openFrom(address) - 1;
      if (left > 0) this.open.set(address, left);
      else this.open.delete(address);
    };
    response.once('close', release);
    return release;
  }
}
