import { describe, expect, it } from 'vitest';
import { CappedBuffer, demuxAll, FrameLineSplitter, framesToLines, JsonLinesDecoder, progressError, StreamDemuxer } from './engineStream.js';

function frame(stream: 0 | 1 | 2, text: string): Buffer {
  const data = Buffer.from(text);
  const header = Buffer.alloc(8);
  header[0] = stream;
  header.writeUInt32BE(data.length, 4);
  return Buffer.concat([header, data]);
}

describe('StreamDemuxer', () => {
  it('splits frames by stream, even when headers and payloads arrive in pieces', () => {
    const body = Buffer.concat([frame(1, 'out1\n'), frame(2, 'err1\n'), frame(1, 'out2\n')]);
    const demuxer = new StreamDemuxer();
    const frames = [];
    for (let i = 0; i < body.length; i += 3) frames.push(...demuxer.push(body.subarray(i, i + 3)));
    expect(frames.map((f) => `${f.stream}:${f.data.toString()}`)).toEqual(['stdout:out1\n', 'stderr:err1\n', 'stdout:out2\n']);
    expect(demuxer.leftover).toBe(0);
  });

  it('keeps an incomplete frame until the rest arrives', () => {
    const demuxer = new StreamDemuxer();
    const whole = frame(1, 'hello');
    expect(demuxer.push(whole.subarray(0, 10))).toEqual([]);
    expect(demuxer.leftover).toBe(10);
    expect(demuxer.push(whole.subarray(10)).map((f) => f.data.toString())).toEqual(['hello']);
  });

  it('demuxAll separates stdout from stderr; empty frames are fine', () => {
    const { stdout, stderr } = demuxAll(Buffer.concat([frame(1, 'a'), frame(2, ''), frame(2, 'b'), frame(1, 'c')]));
    expect(stdout.toString()).toBe('ac');
    expect(stderr.toString()).toBe('b');
  });
});

describe('lines from frames', () => {
  it('keeps a partial line per stream so interleaved writes do not glue together', () => {
    const frames = new StreamDemuxer().push(Buffer.concat([frame(1, 'par'), frame(2, 'error line\n'), frame(1, 'tial\r\nnext'), frame(2, 'tail')]));
    expect(framesToLines(frames)).toEqual(['error line', 'partial', 'next', 'tail']);
  });

  it('FrameLineSplitter holds partial lines across pushes until flushed', () => {
    const splitter = new FrameLineSplitter();
    const demuxer = new StreamDemuxer();
    expect(splitter.push(demuxer.push(frame(1, 'a')))).toEqual([]);
    expect(splitter.push(demuxer.push(frame(1, 'b\nc')))).toEqual(['ab']);
    expect(splitter.flush()).toEqual(['c']);
    expect(splitter.flush()).toEqual([]);
  });
});

describe('JsonLinesDecoder and progressError', () => {
  it('decodes JSON values split across chunks and keeps plain text as a message', () => {
    const decoder = new JsonLinesDecoder();
    expect(decoder.push('{"status":"Pull')).toEqual([]);
    expect(decoder.push('ing"}\n\nplain text\n{"a":')).toEqual([{ status: 'Pulling' }, { stream: 'plain text' }]);
    expect(decoder.push('1}')).toEqual([]);
    expect(decoder.flush()).toEqual([{ a: 1 }]);
  });

  it('finds the error of a progress message', () => {
    expect(progressError({ error: 'manifest unknown' })).toBe('manifest unknown');
    expect(progressError({ errorDetail: { message: 'denied' } })).toBe('denied');
    expect(progressError({ status: 'Downloading' })).toBeNull();
    expect(progressError('text')).toBeNull();
    expect(progressError(null)).toBeNull();
  });
});

describe('CappedBuffer', () => {
  it('keeps at most the limit and says it cut', () => {
    const capped = new CappedBuffer(5);
    capped.add(Buffer.from('abc'));
    capped.add(Buffer.from('defg'));
    capped.add(Buffer.from('h'));
    expect(capped.text()).toBe('abcde\n[output cut at 5 bytes]\n');
  });

  it('adds no note when nothing was cut', () => {
    const capped = new CappedBuffer(5);
    capped.add(Buffer.from('abcde'));
    capped.add(Buffer.alloc(0));
    expect(capped.text()).toBe('abcde');
  });
});
