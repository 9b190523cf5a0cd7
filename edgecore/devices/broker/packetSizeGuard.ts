import type { Socket } from 'node:net';

/**
 * Follows MQTT's framing (a fixed-header byte, the remaining length as a varint of at most four
 * bytes, then that many bytes) over the bytes a connection sends, without parsing anything else,
 * so a packet that announces more than the limit is known after its first two to five bytes.
 *
 * Why: aedes' parser (mqtt-packet) keeps every byte of an unfinished packet until its announced
 * length arrives. One unauthenticated socket streaming a CONNECT that announced 256 MB grew
 * edgecore by 150 MB and never gave it back. The guard closes such a connection instead.
 */
export interface PacketLimits {
  /** Largest first packet (the CONNECT), header included. */
  connectMaxBytes: number;
  /** Largest packet after it. */
  maxBytes: number;
}

export type GuardVerdict = { ok: true } | { ok: false; reason: string; announced?: number };

/** MQTT 3.1.1 §2.2.3: at most four length bytes. */
const MAX_LENGTH_BYTES = 4;

export class PacketSizeGuard {
  /** Bytes of the current packet's body still to come; -1 while reading a header. */
  private bodyLeft = -1;
  private headerSeen = false;
  private length = 0;
  private lengthBytes = 0;
  private packets = 0;
  private failed: GuardVerdict | null = null;

  constructor(private readonly limits: PacketLimits) {}

  /** Takes the next bytes of the connection; the first verdict that is not ok sticks. */
  feed(chunk: Buffer): GuardVerdict {
    if (this.failed !== null) return this.failed;
    let i = 0;
    while (i < chunk.length) {
      if (this.bodyLeft > 0) {
        const take = Math.min(this.bodyLeft, chunk.length - i);
        this.bodyLeft -= take;
        i += take;
        if (this.bodyLeft === 0) this.endPacket();
        continue;
      }
      const byte = chunk[i++]!;
      if (!this.headerSeen) {
        this.headerSeen = true;
        continue;
      }
      this.length += (byte & 0x7f) * 128 ** this.lengthBytes;
      this.lengthBytes++;
      if ((byte & 0x80) !== 0) {
        if (this.lengthBytes === MAX_LENGTH_BYTES) return this.fail({ ok: false, reason: 'malformed remaining length (more than 4 bytes)' });
        continue;
      }
      const limit = this.packets === 0 ? this.limits.connectMaxBytes : this.limits.maxBytes;
      const total = 1 + this.lengthBytes + this.length;
      if (total > limit) {
        return this.fail({ ok: false, announced: total, reason: `${this.packets === 0 ? 'first packet' : 'packet'} announces ${total} bytes; at most ${limit} are accepted` });
      }
      this.bodyLeft = this.length;
      if (this.bodyLeft === 0) this.endPacket();
    }
    return { ok: true };
  }

  private endPacket(): void {
    this.packets++;
    this.bodyLeft = -1;
    this.headerSeen = false;
    this.length = 0;
    this.lengthBytes = 0;
  }

  private fail(verdict: GuardVerdict): GuardVerdict {
    this.failed = verdict;
    return verdict;
  }
}

/**
 * Watches what aedes reads from the socket (attach after `broker.handle(socket)`: aedes reads on
 * 'readable', so 'data' then fires for exactly the bytes it takes, without switching the socket
 * to flowing mode) and destroys the socket at the first packet over the limit. At most the
 * chunk that revealed it reaches the parser.
 */
export function guardPacketSize(socket: Socket, limits: PacketLimits, onRefused: (reason: string) => void): void {
  const guard = new PacketSizeGuard(limits);
  const watch = (chunk: Buffer): void => {
    const verdict = guard.feed(chunk);
    if (verdict.ok) return;
    socket.off('data', watch);
    onRefused(verdict.reason);
    socket.destroy();
  };
  socket.on('data', watch);
}
