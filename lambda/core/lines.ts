/**
 * Byte-level line splitting for untrusted log streams. Chunks go in, whole
 * lines come out as `(buf, start, end)` ranges into the chunk itself (no copy)
 * or into one reused carry buffer for a line that spans chunks. Memory stays
 * bounded by the line cap whatever the input: an over-long line is dropped
 * byte by byte until its `\n`, never buffered whole.
 */

/**
 * Default cap on the length of one line, in bytes, its `\n` or `\r\n`
 * terminator not included: 64 KiB. No access log AWS writes comes near it
 * (CloudFront cannot log a request whose URL or headers pass 20 KB), so a
 * longer line is corruption or noise and is rejected as one line.
 */
export const MAX_LINE_BYTES = 64 * 1024;

/** Rejection reason of a line that holds a NUL byte. */
export const NUL_REASON = 'NUL byte in line';

/** Rejection reason of a line over `maxLineBytes`. */
export function tooLongReason(maxLineBytes: number): string {
  return `line longer than ${maxLineBytes} bytes`;
}

/** Receives the lines of a {@link LineSplitter}, in input order. */
export interface LineSink {
  /**
   * One line without its terminator (a trailing `\r` is removed too). The
   * bytes are only valid during the call: copy what you keep.
   */
  line(buf: Buffer, start: number, end: number): void;
  /** One line the splitter rejected itself: over the cap, or holding a NUL byte. */
  reject(reason: string): void;
}

const LF = 10;
const CR = 13;

/**
 * Splits a byte stream into lines on `\n` (`\r\n` handled), with a length
 * cap and NUL detection. Push chunks in order, then call {@link end}.
 *
 * @example
 * const splitter = new LineSplitter(sink);
 * for await (const chunk of stream) splitter.push(chunk);
 * splitter.end();
 */
export class LineSplitter {
  private readonly sink: LineSink;
  private readonly max: number;
  private readonly tooLong: string;
  /** Start of a line that spans chunks; grows on demand up to `max + 1` bytes (room for a CR). */
  private carry: Buffer = Buffer.alloc(0);
  private carryLen = 0;
  private carryNul = false;
  /** Inside an over-long line: skip bytes until the next `\n`. */
  private dropping = false;

  /**
   * @param sink receives the lines
   * @param maxLineBytes longest line accepted, terminator excluded
   * @default maxLineBytes - {@link MAX_LINE_BYTES}
   */
  constructor(sink: LineSink, maxLineBytes: number = MAX_LINE_BYTES) {
    if (!Number.isInteger(maxLineBytes) || maxLineBytes < 1) {
      throw new RangeError(`maxLineBytes must be an integer >= 1, got ${maxLineBytes}`);
    }
    this.sink = sink;
    this.max = maxLineBytes;
    this.tooLong = tooLongReason(maxLineBytes);
  }

  /** Feeds the next chunk of the stream. */
  push(chunk: Buffer): void {
    const len = chunk.length;
    if (len === 0) return;
    let pos = 0;
    // One memchr per chunk finds NUL bytes; lines before it are NUL-free.
    let nul = chunk.indexOf(0);
    if (this.dropping || this.carryLen > 0) {
      const nl = chunk.indexOf(LF);
      if (nl < 0) {
        if (!this.dropping) this.append(chunk, 0, len, nul >= 0);
        return;
      }
      if (!this.dropping) this.append(chunk, 0, nl, nul >= 0 && nul < nl);
      if (this.dropping) {
        this.dropping = false;
        this.sink.reject(this.tooLong);
      } else {
        const end = this.carryLen;
        const hasNul = this.carryNul;
        this.carryLen = 0;
        this.carryNul = false;
        this.emit(this.carry, 0, end, hasNul);
      }
      pos = nl + 1;
      if (nul >= 0 && nul < pos) nul = chunk.indexOf(0, pos);
    }
    while (pos < len) {
      const nl = chunk.indexOf(LF, pos);
      if (nl < 0) break;
      if (nul >= 0 && nul < nl) {
        this.emit(chunk, pos, nl, true);
        nul = chunk.indexOf(0, nl + 1);
      } else {
        this.emit(chunk, pos, nl, false);
      }
      pos = nl + 1;
    }
    if (pos < len) this.append(chunk, pos, len, nul >= 0);
  }

  /** Ends the stream: a last line without `\n` is emitted. */
  end(): void {
    if (this.dropping) {
      this.dropping = false;
      this.sink.reject(this.tooLong);
    } else if (this.carryLen > 0) {
      const end = this.carryLen;
      const hasNul = this.carryNul;
      this.carryLen = 0;
      this.carryNul = false;
      this.emit(this.carry, 0, end, hasNul);
    }
  }

  /**
   * Forgets a partial last line (the stream broke in the middle of it).
   * Returns true when there was one.
   */
  discard(): boolean {
    const had = this.dropping || this.carryLen > 0;
    this.dropping = false;
    this.carryLen = 0;
    this.carryNul = false;
    return had;
  }

  private emit(buf: Buffer, start: number, end: number, hasNul: boolean): void {
    let e = end;
    if (e > start && buf[e - 1] === CR) e--;
    if (e - start > this.max) this.sink.reject(this.tooLong);
    else if (hasNul) this.sink.reject(NUL_REASON);
    else this.sink.line(buf, start, e);
  }

  private append(chunk: Buffer, start: number, end: number, hasNul: boolean): void {
    const n = end - start;
    // max + 1 leaves room for the CR of a CRLF that is cut from its LF.
    if (this.carryLen + n > this.max + 1) {
      this.dropping = true;
      this.carryLen = 0;
      this.carryNul = false;
      return;
    }
    const need = this.carryLen + n;
    if (need > this.carry.length) {
      const grown = Buffer.allocUnsafe(
        Math.min(this.max + 1, Math.max(need, this.carry.length * 2, 4096)),
      );
      this.carry.copy(grown, 0, 0, this.carryLen);
      this.carry = grown;
    }
    chunk.copy(this.carry, this.carryLen, start, end);
    this.carryLen += n;
    if (hasNul) this.carryNul = true;
  }
}
