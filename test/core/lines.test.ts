import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  type LineSink,
  LineSplitter,
  MAX_LINE_BYTES,
  NUL_REASON,
  tooLongReason,
} from '../../lambda/core/lines';

type Out = { line: string } | { reject: string };

/** Runs a splitter over `chunks` and returns what it emitted. */
function split(chunks: readonly Buffer[], max?: number): Out[] {
  const out: Out[] = [];
  const sink: LineSink = {
    line: (buf, s, e) => out.push({ line: buf.toString('utf8', s, e) }),
    reject: (reason) => out.push({ reject: reason }),
  };
  const splitter = new LineSplitter(sink, max);
  for (const c of chunks) splitter.push(c);
  splitter.end();
  return out;
}

function cut(data: Buffer, points: readonly number[]): Buffer[] {
  const sorted = [...new Set(points)].filter((p) => p > 0 && p < data.length).sort((a, b) => a - b);
  const chunks: Buffer[] = [];
  let prev = 0;
  for (const p of sorted) {
    chunks.push(data.subarray(prev, p));
    prev = p;
  }
  chunks.push(data.subarray(prev));
  return chunks;
}

describe('LineSplitter', () => {
  it('returns lines without terminators, LF and CRLF alike', () => {
    const out = split([Buffer.from('a\r\nbb\n\nccc\r\n')]);
    expect(out).toEqual([{ line: 'a' }, { line: 'bb' }, { line: '' }, { line: 'ccc' }]);
  });

  it('emits a last line that has no newline', () => {
    expect(split([Buffer.from('a\nlast')])).toEqual([{ line: 'a' }, { line: 'last' }]);
    expect(split([Buffer.from('a\nlast\r')])).toEqual([{ line: 'a' }, { line: 'last' }]);
  });

  it('emits nothing for empty input', () => {
    expect(split([])).toEqual([]);
    expect(split([Buffer.alloc(0)])).toEqual([]);
  });

  it('joins a CRLF split between chunks and multibyte UTF-8 split inside a character', () => {
    const text = 'GET /caf\u00e9/\u{1f600}\r\nnext\r\n';
    const data = Buffer.from(text, 'utf8');
    const crAt = data.indexOf(13);
    const emojiAt = data.indexOf(0xf0);
    const out = split(cut(data, [crAt + 1, emojiAt + 2, emojiAt + 1]));
    expect(out).toEqual([{ line: 'GET /caf\u00e9/\u{1f600}' }, { line: 'next' }]);
  });

  it('gives the same lines for every chunking of the input', () => {
    const line = fc.stringMatching(/^[a-z\u00e9\u{1f600}\t \r]{0,12}$/u);
    fc.assert(
      fc.property(
        fc.array(line, { maxLength: 12 }),
        fc.constantFrom('\n', '\r\n'),
        fc.boolean(),
        fc.array(fc.nat(200), { maxLength: 20 }),
        (lines, eol, finalNewline, points) => {
          const text = lines.join(eol) + (finalNewline ? eol : '');
          const data = Buffer.from(text, 'utf8');
          const whole = split([data]);
          expect(split(cut(data, points))).toEqual(whole);
          expect(
            split(
              cut(
                data,
                Array.from({ length: data.length }, (_, i) => i),
              ),
            ),
          ).toEqual(whole);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('accepts a line of exactly the cap and rejects one byte more, CR not counted', () => {
    const max = 16;
    const exact = 'x'.repeat(max);
    const over = 'y'.repeat(max + 1);
    const data = Buffer.from(`${exact}\r\n${over}\n${exact}`);
    const expected = [{ line: exact }, { reject: tooLongReason(max) }, { line: exact }];
    expect(split([data], max)).toEqual(expected);
    expect(
      split(
        cut(
          data,
          Array.from({ length: data.length }, (_, i) => i),
        ),
        max,
      ),
    ).toEqual(expected);
  });

  it('rejects an over-long line as one line and keeps reading after it', () => {
    const max = 10;
    const data = Buffer.from(`ok\n${'z'.repeat(95)}\nafter\n${'w'.repeat(50)}`);
    const expected = [
      { line: 'ok' },
      { reject: tooLongReason(max) },
      { line: 'after' },
      { reject: tooLongReason(max) },
    ];
    for (const size of [1, 3, 7, 64, data.length]) {
      const points = Array.from({ length: Math.ceil(data.length / size) }, (_, i) => i * size);
      expect(split(cut(data, points), max)).toEqual(expected);
    }
  });

  it('rejects lines with a NUL byte, wherever the chunk boundaries fall', () => {
    const data = Buffer.from('a\nb\u0000c\n\u0000\nd\ne\u0000');
    const expected = [
      { line: 'a' },
      { reject: NUL_REASON },
      { reject: NUL_REASON },
      { line: 'd' },
      { reject: NUL_REASON },
    ];
    expect(split([data])).toEqual(expected);
    expect(split(cut(data, [2, 3, 4, 8, 10]))).toEqual(expected);
    expect(
      split(
        cut(
          data,
          Array.from({ length: data.length }, (_, i) => i),
        ),
      ),
    ).toEqual(expected);
  });

  it('defaults the cap to 64 KiB', () => {
    expect(MAX_LINE_BYTES).toBe(65536);
    const data = Buffer.from(`${'a'.repeat(65536)}\n${'b'.repeat(65537)}\n`);
    const out = split([data]);
    expect(out).toHaveLength(2);
    expect(out[1]).toEqual({ reject: tooLongReason(65536) });
  });

  it('keeps memory bounded on a 20 MB line without newline', () => {
    // The same 64 KiB chunk is pushed over and over: any growth in
    // arrayBuffers is the splitter holding on to the line.
    const chunk = Buffer.alloc(64 * 1024, 0x61);
    const out: Out[] = [];
    const splitter = new LineSplitter({
      line: (buf, s, e) => out.push({ line: buf.toString('latin1', s, e) }),
      reject: (reason) => out.push({ reject: reason }),
    });
    splitter.push(Buffer.from('first\n'));
    const before = process.memoryUsage().arrayBuffers;
    let peak = before;
    for (let sent = 0; sent < 20 * 1024 * 1024; sent += chunk.length) {
      splitter.push(chunk);
      peak = Math.max(peak, process.memoryUsage().arrayBuffers);
    }
    splitter.end();
    expect(out).toEqual([{ line: 'first' }, { reject: tooLongReason(MAX_LINE_BYTES) }]);
    expect(peak - before).toBeLessThan(2 * 1024 * 1024);
  });

  it('forgets a partial line on discard', () => {
    const out: Out[] = [];
    const splitter = new LineSplitter({
      line: (buf, s, e) => out.push({ line: buf.toString('utf8', s, e) }),
      reject: (reason) => out.push({ reject: reason }),
    });
    splitter.push(Buffer.from('whole\npart'));
    expect(splitter.discard()).toBe(true);
    splitter.end();
    expect(out).toEqual([{ line: 'whole' }]);
  });

  it('refuses a cap that is not a positive integer', () => {
    const sink: LineSink = { line: () => {}, reject: () => {} };
    expect(() => new LineSplitter(sink, 0)).toThrow(/maxLineBytes must be an integer >= 1, got 0/);
  });
});
