/**
 * The one byte range a download asks for (`Range: bytes=a-b`, `bytes=a-`, `bytes=-n`), so an
 * interrupted download resumes where it stopped. Pure. One range per request: a multi-range
 * or malformed header is refused (416 with the reason) rather than silently answered whole,
 * since a resuming client that got 200 would append the whole file to its partial one.
 */
export type RangeAnswer =
  | { kind: 'whole' }
  | { kind: 'part'; start: number; end: number }
  | { kind: 'refused'; reason: string };

export function parseRange(header: string | undefined, size: number): RangeAnswer {
  if (header === undefined) return { kind: 'whole' };
  const m = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (!m) {
    return { kind: 'refused', reason: header.includes(',') ? 'one byte range per request' : `Range "${header.slice(0, 64)}" is not bytes=<start>-<end>` };
  }
  const [, first, last] = m;
  if (first === '' && last === '') return { kind: 'refused', reason: 'Range bytes=- names no byte' };
  if (first === '') {
    // Suffix: the last n bytes.
    const n = Number(last);
    if (n === 0 || size === 0) return { kind: 'refused', reason: `Range asks for the last ${n} bytes of a ${size}-byte file` };
    return { kind: 'part', start: Math.max(0, size - n), end: size - 1 };
  }
  const start = Number(first);
  const end = last === '' ? size - 1 : Math.min(Number(last), size - 1);
  if (!Number.isSafeInteger(start) || start >= size) return { kind: 'refused', reason: `Range starts at byte ${first}, past the end of the ${size}-byte file` };
  if (last !== '' && Number(last) < start) return { kind: 'refused', reason: `Range ends (${last}) before it starts (${first})` };
  return { kind: 'part', start, end };
}
