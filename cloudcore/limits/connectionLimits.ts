import type { Server, Socket } from 'node:net';
import { sourceAddress } from './sourceAddress.js';
import { ThrottledWarnings } from './throttledWarnings.js';

/**
 * Per-source-address cap on open TCP connections to cloudcore's HTTP server. Counted in the
 * server's 'connection' hook, so it holds before a byte is parsed and before any login: a
 * connection over the cap is destroyed at once (for HTTPS too: the raw socket, before the
 * handshake). Every kind of connection counts — API calls, watch and log streams, edge links —
 * so one address cannot hold more than the cap of cloudcore's file descriptors.
 */
/** What the limiter needs of an accepted socket (a net.Socket; a fake one in unit tests). */
export interface AcceptedSocket {
  readonly remoteAddress?: string | undefined;
  destroy(): void;
  once(event: 'close', listener: () => void): unknown;
}

/** The one log call the limiter makes (a pino Logger is one). */
export interface WarnLog { warn(fields: Record<string, unknown>, msg: string): void }

export class ConnectionLimits {
  private readonly open = new Map<string, number>();
  private readonly warnings: ThrottledWarnings;
  /** Connections destroyed for being over the cap, since start (metrics). */
  refused = 0;

  constructor(
    private readonly maxPerAddress: number,
    private readonly log: WarnLog,
    opts: { warnIntervalMs?: number; now?: () => number } = {},
  ) {
    this.warnings = new ThrottledWarnings(opts.warnIntervalMs ?? 60_000, opts.now);
  }

  /** Open connections from `address` now. */
  openFrom(address: string): number {
    return this.open.get(address) ?? 0;
  }

  /** Counts every connection `server` accepts; call once, before it listens. */
  attach(server: Server): void {
    server.on('connection', (socket: Socket) => this.onConnection(socket));
  }

  /** Admits or refuses one connection; exported for the unit test, which passes fake sockets. */
  onConnection(socket: AcceptedSocket): boolean {
    const address = sourceAddress(socket.remoteAddress);
    const count = this.openFrom(address);
    if (count >= this.maxPerAddress) {
      this.refused++;
      socket.destroy();
      const refusedSince = this.warnings.occur(address);
      if (refusedSince !== undefined) {
        this.log.warn({ remote: address, open: count, limit: this.maxPerAddress, refusedSinceLastWarning: refusedSince },
          'connection refused: too many open connections from this address (maxConnectionsPerAddress)');
      }
      return false;
    }
    this.open.set(address, count + 1);
    socket.once('close', () => {
      const left = this.openFrom(address) - 1;
      if (left > 0) this.open.set(address, left);
      else this.open.delete(address);
    });
    return true;
  }
}
