import type { LinkStats } from '../../edgecore/link/cloudLink.js';
import type { FrameTally, WireTotals } from './wireCounters.js';

/** Pure arithmetic of the fan-out benchmark: frame overheads, deltas, per-node rates. */

/**
 * RFC 6455 frame header size: 2 bytes, +2 for a 16-bit length (126..65535), +8 for a 64-bit
 * length; frames from client to server are masked (+4 bytes of masking key).
 */
export function wsHeaderBytes(payloadBytes: number, masked: boolean): number {
  const base = payloadBytes < 126 ? 2 : payloadBytes < 65_536 ? 4 : 10;
  return base + (masked ? 4 : 0);
}

/**
 * Linux TCP/IPv4 headers per segment on loopback or LAN: 20 (IP) + 20 (TCP) + 12 (timestamp
 * option). Used only for a labelled estimate of on-the-wire cost per frame.
 */
export const TCP_IP_HEADER_BYTES = 52;

export interface LatencySummary {
  count: number;
  /** The first edge to ack: how long nothing at all reached the fleet. */
  min: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
}

/** Nearest-rank percentiles of a list of durations (ms). */
export function summarizeLatencies(values: number[]): LatencySummary {
  const sorted = [...values].sort((a, b) => a - b);
  const at = (q: number) => (sorted.length === 0 ? 0 : sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)]!);
  return { count: sorted.length, min: sorted[0] ?? 0, p50: at(0.5), p90: at(0.9), p99: at(0.99), max: sorted.length ? sorted[sorted.length - 1]! : 0 };
}

export function sumStats(all: Iterable<LinkStats>): LinkStats {
  const sum: LinkStats = { connects: 0, syncFrames: 0, snapshots: 0, changesReceived: 0, upstreamSent: 0, errorsFromCloud: 0, bytesIn: 0, bytesOut: 0 };
  for (const s of all) {
    for (const key of Object.keys(sum) as (keyof LinkStats)[]) sum[key] += s[key];
  }
  return sum;
}

export function statsDelta(before: LinkStats, after: LinkStats): LinkStats {
  const d = { ...after };
  for (const key of Object.keys(d) as (keyof LinkStats)[]) d[key] = after[key] - before[key];
  return d;
}

function tallyDelta(before: Record<string, FrameTally>, after: Record<string, FrameTally>): Record<string, FrameTally> {
  const out: Record<string, FrameTally> = {};
  for (const [type, a] of Object.entries(after)) {
    const b = before[type] ?? { frames: 0, payloadBytes: 0, headerBytes: 0 };
    if (a.frames === b.frames) continue;
    out[type] = { frames: a.frames - b.frames, payloadBytes: a.payloadBytes - b.payloadBytes, headerBytes: a.headerBytes - b.headerBytes };
  }
  return out;
}

export function wireDelta(before: WireTotals, after: WireTotals): WireTotals {
  return {
    out: tallyDelta(before.out, after.out),
    in: tallyDelta(before.in, after.in),
    socketBytesWritten: after.socketBytesWritten - before.socketBytesWritten,
    socketBytesRead: after.socketBytesRead - before.socketBytesRead,
  };
}

export function totalTally(direction: Record<string, FrameTally>): FrameTally {
  const t: FrameTally = { frames: 0, payloadBytes: 0, headerBytes: 0 };
  for (const v of Object.values(direction)) {
    t.frames += v.frames;
    t.payloadBytes += v.payloadBytes;
    t.headerBytes += v.headerBytes;
  }
  return t;
}

/** One direction's traffic divided over `nodes`. */
export function perNode(t: FrameTally, nodes: number): FrameTally {
  return { frames: t.frames / nodes, payloadBytes: t.payloadBytes / nodes, headerBytes: t.headerBytes / nodes };
}

export function kbitPerSecond(bytes: number, seconds: number): number {
  return seconds > 0 ? (bytes * 8) / 1000 / seconds : 0;
}

export interface IdleFigures {
  seconds: number;
  /** Application-level (JSON text) bytes per node per minute, in + out, from CloudLink stats. */
  appBytesPerNodePerMinute: number;
  appKbitPerSecondPerNode: number;
  /** Frames per node per minute, both directions (pings and pongs when idle). */
  framesPerNodePerMinute: number;
  /** Application bytes plus the exact WebSocket headers of the counted frames. */
  wsBytesPerNodePerMinute: number;
  wsKbitPerSecondPerNode: number;
  /** TCP payload bytes as the kernel socket counters saw them (should equal wsBytes). */
  tcpPayloadBytesPerNodePerMinute: number;
  /** wsBytes + 52 B of TCP/IP headers per frame; excludes pure ACK segments (estimate). */
  estimatedIpBytesPerNodePerMinute: number;
  estimatedIpKbitPerSecondPerNode: number;
  /** What the heartbeat period predicts: 2 frames (ping + pong) per period. */
  expectedFramesPerNodePerMinute: number;
}

export function idleFigures(nodes: number, seconds: number, heartbeatSeconds: number, stats: LinkStats, wire: WireTotals): IdleFigures {
  const perMinute = (x: number) => (x / nodes) * (60 / seconds);
  const frames = totalTally(wire.out).frames + totalTally(wire.in).frames;
  const headers = totalTally(wire.out).headerBytes + totalTally(wire.in).headerBytes;
  const appBytes = stats.bytesIn + stats.bytesOut;
  const wsBytes = appBytes + headers;
  const ipBytes = wsBytes + frames * TCP_IP_HEADER_BYTES;
  return {
    seconds,
    appBytesPerNodePerMinute: perMinute(appBytes),
    appKbitPerSecondPerNode: kbitPerSecond(appBytes / nodes, seconds),
    framesPerNodePerMinute: perMinute(frames),
    wsBytesPerNodePerMinute: perMinute(wsBytes),
    wsKbitPerSecondPerNode: kbitPerSecond(wsBytes / nodes, seconds),
    tcpPayloadBytesPerNodePerMinute: perMinute(wire.socketBytesWritten + wire.socketBytesRead),
    estimatedIpBytesPerNodePerMinute: perMinute(ipBytes),
    estimatedIpKbitPerSecondPerNode: kbitPerSecond(ipBytes / nodes, seconds),
    expectedFramesPerNodePerMinute: 2 * (60 / heartbeatSeconds),
  };
}
