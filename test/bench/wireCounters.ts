import { subscribe } from 'node:diagnostics_channel';
import type { Socket } from 'node:net';
import WebSocket from 'ws';
import { wsHeaderBytes } from './figures.js';

/**
 * Counts what the simulated edges put on the wire, below what CloudLink's own stats see:
 * every WebSocket frame (by frame type, with its exact RFC 6455 header size) and the TCP
 * payload bytes of every client socket in this process. Every client WebSocket in the
 * benchmark process is a CloudLink, so process-wide totals divided by N are per-node figures.
 *
 * It wraps `WebSocket.prototype.send` and `emit` (there is no public hook for frames); the
 * benchmark owns this process, nothing else is affected.
 */

export interface FrameTally {
  frames: number;
  payloadBytes: number;
  headerBytes: number;
}

export interface WireTotals {
  /** Edge → cloud frames by `type` (hello, ack, ping, upstream). */
  out: Record<string, FrameTally>;
  /** Cloud → edge frames by `type` (welcome, sync, pong, upstreamAck, error). */
  in: Record<string, FrameTally>;
  /** TCP payload bytes (WebSocket framing and HTTP upgrade included) of all client sockets. */
  socketBytesWritten: number;
  socketBytesRead: number;
}

const totals: WireTotals = { out: {}, in: {}, socketBytesWritten: 0, socketBytesRead: 0 };
const liveSockets = new Set<Socket>();
let installed = false;

/** The `type` of a JSON frame, from its first bytes (frames are serialized with `type` first). */
export function frameType(head: string): string {
  const match = /^\{"type":"([A-Za-z]+)"/.exec(head);
  return match ? match[1]! : 'other';
}

function tally(direction: Record<string, FrameTally>, type: string, payloadBytes: number, masked: boolean): void {
  const entry = direction[type] ?? (direction[type] = { frames: 0, payloadBytes: 0, headerBytes: 0 });
  entry.frames++;
  entry.payloadBytes += payloadBytes;
  entry.headerBytes += wsHeaderBytes(payloadBytes, masked);
}

export function installWireCounters(): void {
  if (installed) return;
  installed = true;
  const proto = WebSocket.prototype;

  const originalSend = proto.send as (this: WebSocket, ...args: unknown[]) => void;
  const countingSend = function (this: WebSocket, ...args: unknown[]): void {
    const data = args[0];
    if (typeof data === 'string') tally(totals.out, frameType(data.slice(0, 32)), Buffer.byteLength(data), true);
    else if (Buffer.isBuffer(data)) tally(totals.out, frameType(data.toString('latin1', 0, 32)), data.length, true);
    originalSend.apply(this, args);
  };
  proto.send = countingSend as unknown as typeof proto.send;

  const originalEmit = proto.emit as (this: WebSocket, event: string | symbol, ...args: unknown[]) => boolean;
  const countingEmit = function (this: WebSocket, event: string | symbol, ...args: unknown[]): boolean {
    if (event === 'message' && Buffer.isBuffer(args[0])) {
      const data = args[0];
      tally(totals.in, frameType(data.toString('latin1', 0, 32)), data.length, false);
    }
    return originalEmit.call(this, event, ...args);
  };
  proto.emit = countingEmit as unknown as typeof proto.emit;

  subscribe('net.client.socket', (message) => {
    const socket = (message as { socket: Socket }).socket;
    liveSockets.add(socket);
    socket.once('close', () => {
      liveSockets.delete(socket);
      totals.socketBytesWritten += socket.bytesWritten;
      totals.socketBytesRead += socket.bytesRead;
    });
  });
}

/** A deep copy of the totals now, live sockets included. */
export function wireSnapshot(): WireTotals {
  let written = totals.socketBytesWritten;
  let read = totals.socketBytesRead;
  for (const socket of liveSockets) {
    written += socket.bytesWritten;
    read += socket.bytesRead;
  }
  const copy = (d: Record<string, FrameTally>) => Object.fromEntries(Object.entries(d).map(([k, v]) => [k, { ...v }]));
  return { out: copy(totals.out), in: copy(totals.in), socketBytesWritten: written, socketBytesRead: read };
}
