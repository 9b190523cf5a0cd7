/**
 * Pure decoders for the two streaming formats of the Docker Engine API:
 * - the multiplexed stdout/stderr stream of logs, attach and exec (when the container has no
 *   TTY): frames of an 8-byte header [stream, 0, 0, 0, size (uint32 big-endian)] + payload;
 * - the JSON-lines progress stream of image pull and load, whose failures arrive inside a
 *   200 response as `{"error": "...", "errorDetail": {...}}`.
 * Both take chunks as they arrive, since a frame or a line may be split across chunks.
 */

export type StreamName = 'stdin' | 'stdout' | 'stderr';

export interface StreamFrame {
  stream: StreamName;
  data: Buffer;
}

const HEADER_BYTES = 8;
const STREAM_NAMES: Record<number, StreamName> = { 0: 'stdin', 1: 'stdout', 2: 'stderr' };

export class StreamDemuxer {
  private pending: Buffer = Buffer.alloc(0);

  push(chunk: Buffer): StreamFrame[] {
    this.pending = this.pending.length === 0 ? chunk : Buffer.concat([this.pending, chunk]);
    const frames: StreamFrame[] = [];
    while (this.pending.length >= HEADER_BYTES) {
      const kind = this.pending[0] ?? 1;
      const size = this.pending.readUInt32BE(4);
      if (this.pending.length < HEADER_BYTES + size) break;
      frames.push({ stream: STREAM_NAMES[kind] ?? 'stdout', data: this.pending.subarray(HEADER_BYTES, HEADER_BYTES + size) });
      this.pending = this.pending.subarray(HEADER_BYTES + size);
    }
    return frames;
  }

  /** Bytes of an incomplete frame left at the end of the stream (0 when it ended cleanly). */
  get leftover(): number {
    return this.pending.length;
  }
}

/** Demuxes a whole multiplexed body at once. */
export function demuxAll(body: Buffer): { stdout: Buffer; stderr: Buffer; frames: StreamFrame[] } {
  const frames = new StreamDemuxer().push(body);
  const pick = (name: StreamName): Buffer => Buffer.concat(frames.filter((f) => f.stream === name).map((f) => f.data));
  return { stdout: pick('stdout'), stderr: pick('stderr'), frames };
}

/**
 * Turns frames into lines, keeping a separate partial line per stream so interleaved stdout
 * and stderr writes do not glue together. Lines come out in the order they were completed.
 */
export function framesToLines(frames: StreamFrame[]): string[] {
  const splitter = new FrameLineSplitter();
  return [...splitter.push(frames), ...splitter.flush()];
}

/** Splits a byte stream into complete JSON values, one per line. */
export class JsonLinesDecoder {
  private pending = '';

  push(chunk: Buffer | string): unknown[] {
    this.pending += typeof chunk === 'string' ? chunk : chunk.toString('utf8');
    const lines = this.pending.split('\n');
    this.pending = lines.pop() ?? '';
    return lines.flatMap(parseLine);
  }

  flush(): unknown[] {
    const rest = this.pending;
    this.pending = '';
    return parseLine(rest);
  }
}

function parseLine(line: string): unknown[] {
  const trimmed = line.trim();
  if (trimmed === '') return [];
  try {
    return [JSON.parse(trimmed)];
  } catch {
    // Not JSON (some engines print plain text progress): keep it as a message.
    return [{ stream: trimmed }];
  }
}

/** The error a progress message reports, if any. */
export function progressError(message: unknown): string | null {
  if (message === null || typeof message !== 'object') return null;
  const record = message as Record<string, unknown>;
  if (typeof record.error === 'string' && record.error !== '') return record.error;
  const detail = record.errorDetail;
  if (detail !== null && typeof detail === 'object') {
    const text = (detail as Record<string, unknown>).message;
    if (typeof text === 'string' && text !== '') return text;
  }
  return null;
}

/** Collects at most `limit` bytes and says so in the text when it cut some off. */
export class CappedBuffer {
  private readonly chunks: Buffer[] = [];
  private size = 0;
  private cut = false;

  constructor(private readonly limit: number) {}

  add(data: Buffer): void {
    if (this.size >= this.limit) {
      if (data.length > 0) this.cut = true;
      return;
    }
    const take = data.subarray(0, this.limit - this.size);
    if (take.length < data.length) this.cut = true;
    this.chunks.push(take);
    this.size += take.length;
  }

  text(): string {
    return Buffer.concat(this.chunks).toString('utf8') + (this.cut ? `\n[output cut at ${this.limit} bytes]\n` : '');
  }
}

/**
 * Turns a live stream of frames into complete lines, one partial line per stream; `flush`
 * returns what is left when the stream ends.
 */
export class FrameLineSplitter {
  private readonly partial: Record<StreamName, string> = { stdin: '', stdout: '', stderr: '' };

  push(frames: StreamFrame[]): string[] {
    const lines: string[] = [];
    for (const frame of frames) {
      const parts = (this.partial[frame.stream] + frame.data.toString('utf8')).split('\n');
      this.partial[frame.stream] = parts.pop() ?? '';
      for (const line of parts) lines.push(line.endsWith('\r') ? line.slice(0, -1) : line);
    }
    return lines;
  }

  flush(): string[] {
    const lines: string[] = [];
    for (const name of ['stdout', 'stderr'] as const) {
      if (this.partial[name] !== '') lines.push(this.partial[name]);
      this.partial[name] = '';
    }
    return lines;
  }
}
