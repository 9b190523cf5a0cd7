/**
 * The device messages the hub refused (answered on `errors`), known by their payload buffer.
 * aedes still routes an acked message to subscribers (a device's own `ef/devices/<id>/#` echoes
 * its reports), and every copy it makes of the packet shares that buffer: the hub's forward
 * check keeps a refused one from live subscribers, and the persistence does not queue it for
 * persistent sessions. Entries go with their buffers (a WeakSet).
 */
export class RefusedMessages {
  private readonly payloads = new WeakSet<Buffer>();

  add(payload: Buffer): void {
    this.payloads.add(payload);
  }

  /** Whether the packet, or any copy aedes made of it, carries a refused message's payload. */
  includes(packet: { payload?: unknown }): boolean {
    return Buffer.isBuffer(packet.payload) && this.payloads.has(packet.payload);
  }
}
