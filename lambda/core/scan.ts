/**
 * The streaming scanner: one access-log object in (plain or gzip, any size),
 * parsed requests out through a callback, a {@link FileScan} summary back.
 *
 * Stages: gzip is recognised by its magic bytes and inflated by a zlib
 * stream (both stages are destroyed on any error, as `stream.pipeline`
 * would, but every chunk is consumed as it arrives so none is lost);
 * {@link LineSplitter} cuts lines with a length cap; the first lines pick
 * the format ({@link FormatDetector}); then each line goes straight to the
 * format's {@link LineParser}, which fills one reused {@link ParsedRequest}.
 * Memory stays flat whatever the file size. Bad input never throws: it
 * shows up as rejected lines, a skipped file, or a damaged file.
 */
import type { Readable } from 'node:stream';
import { createGunzip, type Gunzip, type ZlibOptions, constants as zlibConstants } from 'node:zlib';
import { type CloudFrontParser, layoutFromFields, parseFieldsLine } from './formats/cloudfront';
import { createParser, DETECT_LINES, FormatDetector } from './formats/detect';
import { type LineSink, LineSplitter, MAX_LINE_BYTES } from './lines';
import {
  blankRequest,
  type FieldNeeds,
  type FileScan,
  type LineParser,
  type LogFormat,
  type ParsedRequest,
} from './types';

export { MAX_LINE_BYTES } from './lines';

/** Options of {@link scanStream}. */
export interface ScanOptions {
  /** Which optional request fields the rules need decoded (`ip` and `minute` always are). */
  readonly needs: FieldNeeds;
  /**
   * Longest line accepted, in bytes, terminator excluded; a longer line is
   * one rejected line and is never buffered whole.
   * @default - {@link MAX_LINE_BYTES} (64 KiB)
   */
  readonly maxLineBytes?: number;
}

/**
 * Inflated bytes per zlib output chunk: 64 times Node's default. Every
 * chunk costs a hop between the zlib thread and the main thread (a thread
 * wake-up each way): at 256 KiB a 1M-line file takes about half the CPU it
 * takes at 16 KiB, and at 1 MiB replay of 2M lines takes about 8% less
 * wall time and CPU again than at 256 KiB.
 */
export const GUNZIP_CHUNK_BYTES = 1024 * 1024;
/**
 * Inflated bytes parsed per turn of the event loop. zlib inflates on its
 * own thread but starts its next chunk only once the main thread has taken
 * the last one; parsing in slices keeps that hand-over prompt, so inflate
 * and parse overlap instead of taking turns (1M CloudFront lines: about
 * 1.1x bare gunzip sliced, 1.35-1.45x parsing whole chunks).
 */
const DRAIN_SLICE_BYTES = 64 * 1024;
/** Compressed bytes zlib may hold before the input is paused. */
const GUNZIP_INPUT_BYTES = 4 * 1024 * 1024;
/** Inflated bytes queued for parsing past which the input is paused. */
const QUEUE_HIGH = 1024 * 1024;
/** Inflated bytes queued past which zlib itself is paused (a gzip bomb). */
const QUEUE_HARD = 8 * 1024 * 1024;

const HASH = 35;
const SPACE = 32;
const TAB = 9;

type Pending =
  | { kind: 'row'; line: number; bytes: Buffer }
  | { kind: 'reject'; line: number; reason: string }
  | { kind: 'fields'; names: string[] };

function isBlank(buf: Buffer, start: number, end: number): boolean {
  for (let i = start; i < end; i++) {
    const c = buf[i];
    if (c !== SPACE && c !== TAB) return false;
  }
  return true;
}

/** Detection, then the hot path; receives the lines of one file. */
class FileScanner implements LineSink {
  /** Set once the file is skipped: the rest of it is not read. */
  stopped = false;
  private lineNo = 0;
  private requests = 0;
  private rejected = 0;
  private firstRejected: FileScan['firstRejected'] = null;
  private minMinute = Number.POSITIVE_INFINITY;
  private maxMinute = Number.NEGATIVE_INFINITY;
  private format: LogFormat | null = null;
  private skipped: string | null = null;
  private parser: LineParser | null = null;
  private detector: FormatDetector | null = new FormatDetector();
  private pending: Pending[] = [];
  private readonly req: ParsedRequest = blankRequest();

  constructor(
    private readonly needs: FieldNeeds,
    private readonly onRequest: (req: ParsedRequest) => void,
  ) {}

  line(buf: Buffer, start: number, end: number): void {
    const lineNo = ++this.lineNo;
    const parser = this.parser;
    if (parser !== null) {
      if (start === end) return;
      const c = buf[start];
      if (c === HASH) {
        this.comment(buf, start, end);
        return;
      }
      if ((c === SPACE || c === TAB) && isBlank(buf, start, end)) return;
      const reason = parser.parse(buf, start, end, this.req);
      if (reason === null) this.accept();
      else this.rejectLine(lineNo, reason);
      return;
    }
    if (!this.stopped) this.detectLine(buf, start, end, lineNo);
  }

  reject(reason: string): void {
    const lineNo = ++this.lineNo;
    if (this.parser !== null) this.rejectLine(lineNo, reason);
    else if (!this.stopped && this.detector !== null) {
      this.detector.vote(null);
      this.pending.push({ kind: 'reject', line: lineNo, reason });
      if (this.detector.count >= DETECT_LINES) this.settle();
    }
  }

  /** Ends the file: settles detection on what was seen, and summarises. */
  finish(damaged: string | null): FileScan {
    if (!this.stopped && this.parser === null) {
      // A file that broke before its first line shows no format at all.
      if (damaged === null || (this.detector?.count ?? 0) > 0) this.settle();
    }
    const seen = this.requests > 0;
    return {
      format: this.format,
      lines: this.requests + this.rejected,
      requests: this.requests,
      rejected: this.rejected,
      firstRejected: this.firstRejected,
      skipped: this.skipped,
      damaged,
      minMinute: seen ? this.minMinute : null,
      maxMinute: seen ? this.maxMinute : null,
    };
  }

  private accept(): void {
    const req = this.req;
    this.requests++;
    const minute = req.minute;
    if (minute < this.minMinute) this.minMinute = minute;
    if (minute > this.maxMinute) this.maxMinute = minute;
    this.onRequest(req);
  }

  private rejectLine(lineNo: number, reason: string): void {
    if (this.rejected++ === 0) this.firstRejected = { line: lineNo, reason };
  }

  /** A comment line once the format is known: a `#Fields` header re-maps CloudFront columns. */
  private comment(buf: Buffer, start: number, end: number): void {
    if (this.format !== 'cloudfront') return;
    const names = parseFieldsLine(buf, start, end);
    if (names !== null) (this.parser as CloudFrontParser).setLayout(layoutFromFields(names));
  }

  private detectLine(buf: Buffer, start: number, end: number, lineNo: number): void {
    const detector = this.detector!;
    if (start === end || isBlank(buf, start, end)) return;
    if (buf[start] === HASH) {
      const names = parseFieldsLine(buf, start, end);
      if (names === null) return;
      const layout = layoutFromFields(names);
      // A header that cannot be read skips the file it opens; further down,
      // it only makes the rows under it rejected lines.
      if (layout.problem !== null && detector.count === 0) {
        this.skip(layout.problem);
        return;
      }
      if (layout.problem === null) detector.setLayout(layout);
      this.pending.push({ kind: 'fields', names });
      return;
    }
    detector.classify(buf, start, end);
    // The bytes may live in a reused buffer: keep a copy until the format is known.
    this.pending.push({ kind: 'row', line: lineNo, bytes: Buffer.from(buf.subarray(start, end)) });
    if (detector.count >= DETECT_LINES) this.settle();
  }

  private skip(reason: string): void {
    this.skipped = reason;
    this.stopped = true;
    this.pending = [];
    this.detector = null;
  }

  /** Decides the format, then parses the lines held back meanwhile. */
  private settle(): void {
    const detection = this.detector!.decide();
    if (detection.format === null) {
      this.skip(detection.skipped);
      return;
    }
    this.format = detection.format;
    const parser = createParser(detection.format, this.needs);
    this.parser = parser;
    this.detector = null;
    const pending = this.pending;
    this.pending = [];
    for (const item of pending) {
      if (item.kind === 'fields') {
        if (this.format === 'cloudfront') {
          (parser as CloudFrontParser).setLayout(layoutFromFields(item.names));
        }
      } else if (item.kind === 'reject') {
        this.rejectLine(item.line, item.reason);
      } else {
        const reason = parser.parse(item.bytes, 0, item.bytes.length, this.req);
        if (reason === null) this.accept();
        else this.rejectLine(item.line, reason);
      }
    }
  }
}

/** A chunk as bytes, or null when the stream does not carry bytes. */
function toBuffer(chunk: unknown): Buffer | null {
  if (Buffer.isBuffer(chunk)) return chunk;
  if (typeof chunk === 'string') return Buffer.from(chunk, 'utf8');
  if (chunk instanceof Uint8Array) {
    return Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
  }
  return null;
}

/** One line of an error message. */
function messageOf(err: unknown): string {
  const message = (err as { message?: unknown } | null)?.message;
  return String(message ?? err).replace(/\s+/g, ' ');
}

/** How {@link drive} ended: normally, or with the stream broken, or with the callback failing. */
type Outcome = { damaged: string | null } | { callbackError: unknown };

/**
 * Pumps `input` into the splitter, through zlib when it starts with the
 * gzip magic bytes.
 *
 * Plain text is consumed synchronously in the input's `data` handler.
 * Inflated chunks are queued and parsed on later turns of the event loop,
 * {@link DRAIN_SLICE_BYTES} at a time, so zlib inflates the next chunk on
 * its thread while this one is parsed;
 * the queue is ours, not a stream buffer, so an error loses none of it.
 * Either way the lines before a break are exactly the lines decoded before
 * it: on a read error zlib is ended rather than dropped, and inflates
 * what it already received. Backpressure: zlib's write buffer and a full
 * queue pause the input; a queue past {@link QUEUE_HARD} (a gzip bomb)
 * also pauses zlib. On any end, error or skip, both streams are destroyed
 * and every listener is removed.
 */
function drive(input: Readable, splitter: LineSplitter, scanner: FileScanner): Promise<Outcome> {
  return new Promise((resolve) => {
    let gunzip: Gunzip | null = null;
    let head: Buffer | null = null;
    let decided = false;
    let done = false;
    /** Why the byte stream broke, once it has. */
    let breakReason: string | null = null;
    /** zlib emitted its end, or its error: nothing more will be queued. */
    let inflated = false;
    const queue: Buffer[] = [];
    let queued = 0;
    let draining = false;
    let zlibFull = false;
    let gunzipPaused = false;

    const finish = (outcome: Outcome): void => {
      if (done) return;
      done = true;
      input.off('data', onData);
      input.off('end', onEnd);
      input.off('close', onClose);
      // Late errors of a stream we are done with must not go unhandled.
      input.off('error', onError);
      input.on('error', ignore);
      if (!input.destroyed) input.destroy();
      if (gunzip !== null) {
        gunzip.removeAllListeners();
        gunzip.on('error', ignore);
        gunzip.destroy();
      }
      queue.length = 0;
      resolve(outcome);
    };
    const conclude = (): void => {
      if (done) return;
      if (breakReason !== null) {
        // The cut-off last line is not a line.
        splitter.discard();
        finish({ damaged: breakReason });
        return;
      }
      try {
        splitter.end();
      } catch (callbackError) {
        finish({ callbackError });
        return;
      }
      finish({ damaged: null });
    };
    const feed = (chunk: Buffer): void => {
      try {
        splitter.push(chunk);
      } catch (callbackError) {
        finish({ callbackError });
        return;
      }
      if (scanner.stopped) finish({ damaged: null });
    };
    const updateInputFlow = (): void => {
      if (done) return;
      if (zlibFull || queued > QUEUE_HIGH) input.pause();
      else if (breakReason === null) input.resume();
    };
    const drain = (): void => {
      draining = false;
      let budget = DRAIN_SLICE_BYTES;
      while (!done && queue.length > 0 && budget > 0) {
        let chunk = queue[0]!;
        if (chunk.length > budget) {
          queue[0] = chunk.subarray(budget);
          chunk = chunk.subarray(0, budget);
        } else queue.shift();
        queued -= chunk.length;
        budget -= chunk.length;
        feed(chunk);
      }
      if (done) return;
      if (queue.length > 0) {
        // The rest on a later turn: zlib's completions are handled between.
        scheduleDrain();
        return;
      }
      if (gunzipPaused) {
        gunzipPaused = false;
        gunzip?.resume();
      }
      updateInputFlow();
      if (inflated) conclude();
    };
    const scheduleDrain = (): void => {
      if (draining || done) return;
      draining = true;
      setImmediate(drain);
    };
    const startGunzip = (): Gunzip => {
      // Room for several input chunks, so zlib keeps inflating on its thread
      // while the main thread parses what it already produced (zlib streams
      // take the stream options too; ZlibOptions does not declare them).
      const options: ZlibOptions & { writableHighWaterMark: number } = {
        chunkSize: GUNZIP_CHUNK_BYTES,
        writableHighWaterMark: GUNZIP_INPUT_BYTES,
      };
      const z = createGunzip(options);
      z.on('data', (out: Buffer) => {
        if (done) return;
        queue.push(out);
        queued += out.length;
        if (queued > QUEUE_HARD && !gunzipPaused) {
          gunzipPaused = true;
          z.pause();
        }
        if (queued > QUEUE_HIGH) input.pause();
        scheduleDrain();
      });
      z.on('error', (err) => {
        // A read error ended zlib early: that error, not zlib's, is the break.
        breakReason ??= `gzip: ${messageOf(err)}`;
        inflated = true;
        input.pause();
        scheduleDrain();
      });
      z.on('end', () => {
        inflated = true;
        scheduleDrain();
      });
      z.on('drain', () => {
        zlibFull = false;
        updateInputFlow();
      });
      return z;
    };

    /**
     * Ends zlib's input. A sync flush first pushes out everything the bytes
     * so far decode to: a truncated stream then fails at the final flush
     * with no output held back (zlib drops the output of a failing call).
     */
    const endGunzip = (z: Gunzip): void => {
      z.flush(zlibConstants.Z_SYNC_FLUSH, () => {
        if (!done && !z.destroyed) z.end();
      });
    };

    function onData(chunk: unknown): void {
      if (done) return;
      let buf = toBuffer(chunk);
      if (buf === null) {
        broken(`read error: not a byte stream (a chunk of type ${typeof chunk})`);
        return;
      }
      if (!decided) {
        if (head !== null) buf = Buffer.concat([head, buf]);
        // The magic is two bytes; a stream may deliver one at a time.
        if (buf.length < 2) {
          head = buf;
          return;
        }
        head = null;
        decided = true;
        if (buf[0] === 0x1f && buf[1] === 0x8b) gunzip = startGunzip();
      }
      if (gunzip === null) feed(buf);
      else if (!gunzip.write(buf)) {
        zlibFull = true;
        input.pause();
      }
    }
    function onEnd(): void {
      if (done) return;
      if (!decided && head !== null) {
        // A one-byte object: text.
        decided = true;
        feed(head);
        if (done) return;
      }
      if (gunzip !== null) endGunzip(gunzip);
      else conclude();
    }
    function broken(reason: string): void {
      if (done || breakReason !== null) return;
      breakReason = reason;
      // Let zlib inflate what it already received: those lines came before the break.
      if (gunzip !== null && !inflated) endGunzip(gunzip);
      else if (gunzip === null) conclude();
    }
    function onError(err: unknown): void {
      broken(`read error: ${messageOf(err)}`);
    }
    function onClose(): void {
      // A close without end or error: the source was torn down mid-object.
      if (!input.readableEnded) broken('read error: stream closed before its end');
    }

    if (input.readableEnded) {
      finish({ damaged: null });
      return;
    }
    if (input.destroyed) {
      finish({ damaged: `read error: ${messageOf(input.errored ?? 'stream already destroyed')}` });
      return;
    }
    input.on('data', onData);
    input.on('end', onEnd);
    input.on('error', onError);
    input.on('close', onClose);
    // A stream paused before it got here would otherwise never flow.
    input.resume();
  });
}

function ignore(): void {}

/**
 * Scans one access-log object: detects gzip and the log format, splits
 * lines, parses each and calls `onRequest` for every request.
 *
 * Never rejects for bad input: a file that is no access log resolves with
 * `skipped` set, a byte stream that breaks (gzip error, read error) with
 * `damaged` set and the lines before the break counted, unparseable lines
 * as `rejected`. It rejects only when `onRequest` throws. The input is
 * consumed, or destroyed when the file is skipped or broken.
 *
 * @param input the object's bytes (a file or S3 body stream)
 * @param opts which fields to decode, and the line cap
 * @param onRequest called once per request with a **reused** object: copy what you keep
 * @example
 * const scan = await scanStream(createReadStream(path), { needs }, (req) => count(req.ip, req.minute));
 */
export async function scanStream(
  input: Readable,
  opts: ScanOptions,
  onRequest: (req: ParsedRequest) => void,
): Promise<FileScan> {
  const scanner = new FileScanner(opts.needs, onRequest);
  const splitter = new LineSplitter(scanner, opts.maxLineBytes ?? MAX_LINE_BYTES);
  const outcome = await drive(input, splitter, scanner);
  // Errors of onRequest are the caller's bugs, not bad input: they propagate.
  if ('callbackError' in outcome) throw outcome.callbackError;
  return scanner.finish(outcome.damaged);
}
