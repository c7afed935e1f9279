/**
 * `edgeban replay`: the engine over logs offline, with the JSON document
 * of DESIGN.md section 4.
 */
import { PassThrough, Readable } from 'node:stream';
import { Engine } from '../lambda/core/engine';
import { formatSeconds } from '../lambda/core/formats/time';
import { fieldNeeds } from '../lambda/core/rules';
import { scanStream } from '../lambda/core/scan';
import type { Decision, EdgebanConfig, FileScan, ParsedRequest } from '../lambda/core/types';
import { isUnreachable, oneLine, UnreachableError } from './errors';
import { DEFAULT_CONCURRENCY, isBounded, type Source, type TimeRange } from './inputs';

/** A file with a problem, as the JSON document lists it. */
export interface Problem {
  file: string;
  kind: 'skipped' | 'damaged' | 'rejected';
  reason: string;
  count?: number;
}

/** The `replay --json` document. */
export interface ReplayDocument {
  summary: {
    files: number;
    lines: number;
    requests: number;
    rejected: number;
    skippedFiles: number;
    damagedFiles: number;
    /**
     * With `--since`/`--until` only: objects not read because their key
     * time lies outside the range.
     */
    objectsOutOfRange?: number;
    /**
     * With `--since`/`--until` only: requests read whose log time lies
     * outside the range. They count toward no rule and are left out of
     * `lines`, `requests` and `clients`, as if those lines were not there.
     */
    requestsOutOfRange?: number;
  };
  problems: Problem[];
  clients?: { ip: string; requests: number }[];
  decisions: {
    key: string;
    rule: string;
    peak: number;
    firstExceeded: string;
    blockedUntil: string;
    offences: number;
  }[];
}

/** A replay's document plus what the text output and the report need. */
export interface ReplayResult {
  document: ReplayDocument;
  decisions: Decision[];
  engine: Engine;
}

/** Progress callbacks (the CLI's progress bar). */
export interface ReplayProgress {
  start(totalBytes: number, files: number): void;
  /** Bytes (as stored: compressed) the engine consumed. */
  bytes(n: number): void;
  /** Objects done so far, and the lines they held. */
  file(done: number, lines: number): void;
  /** Lines read so far, while an object is being read (about every few thousand). */
  lines(total: number): void;
  stop(): void;
}

/** Options of {@link runReplay}. */
export interface ReplayOptions {
  /** List every client in the document. */
  readonly clients?: boolean;
  readonly progress?: ReplayProgress;
  /**
   * Remote objects downloaded at once, ahead of the engine. 1 reads one
   * object after another.
   * @default 4
   */
  readonly concurrency?: number;
  /**
   * Count only requests whose minute is in this range.
   * @default - every request
   */
  readonly range?: TimeRange;
  /** Objects already left out by key time (reported in the summary with a range). */
  readonly objectsOutOfRange?: number;
}

export { DEFAULT_CONCURRENCY } from './inputs';

/**
 * Bytes of downloaded objects held in memory ahead of the engine, at most;
 * an object larger than a share of it streams when its turn comes instead.
 */
const PREFETCH_BUDGET = 64 * 1024 * 1024;

function problemOf(file: string, scan: FileScan): Problem | null {
  if (scan.skipped !== null) return { file, kind: 'skipped', reason: scan.skipped };
  const count = scan.rejected > 0 ? { count: scan.rejected } : {};
  if (scan.damaged !== null) return { file, kind: 'damaged', reason: scan.damaged, ...count };
  if (scan.firstRejected === null) return null;
  const { line, reason } = scan.firstRejected;
  return { file, kind: 'rejected', count: scan.rejected, reason: `line ${line}: ${reason}` };
}

function emptyScan(): FileScan {
  return {
    format: null,
    lines: 0,
    requests: 0,
    rejected: 0,
    firstRejected: null,
    skipped: null,
    damaged: null,
    minMinute: null,
    maxMinute: null,
  };
}

/** An object downloaded ahead: its bytes, and how the download ended. */
interface Fetched {
  readonly chunks: Buffer[];
  /** open() failed: nothing was read. */
  readonly openError?: unknown;
  /** The body broke after `chunks`. */
  readonly readError?: unknown;
}

/** Downloads one object into memory; never rejects. */
async function download(source: Source, live: Set<Readable>): Promise<Fetched> {
  let body: Readable;
  try {
    body = await source.open();
  } catch (openError) {
    return { chunks: [], openError };
  }
  live.add(body);
  const chunks: Buffer[] = [];
  try {
    for await (const chunk of body) chunks.push(chunk as Buffer);
    return { chunks };
  } catch (readError) {
    return { chunks, readError };
  } finally {
    live.delete(body);
  }
}

/** The downloaded bytes as a stream that ends, or breaks, as the download did. */
function replayed(fetched: Fetched): Readable {
  const chunks = fetched.chunks;
  let i = 0;
  return new Readable({
    read() {
      if (i < chunks.length) this.push(chunks[i++]);
      else if (fetched.readError !== undefined) this.destroy(fetched.readError as Error);
      else this.push(null);
    },
  });
}

/**
 * Opens the sources in input order while downloading up to `concurrency`
 * remote objects ahead, within {@link PREFETCH_BUDGET}. Each opened stream
 * is what a sequential open and read would have given, so results do not
 * depend on the concurrency.
 */
class Prefetcher {
  private readonly ahead = new Map<number, Promise<Fetched>>();
  private readonly live = new Set<Readable>();
  private next = 0;
  private held = 0;
  private readonly share: number;

  constructor(
    private readonly sources: readonly Source[],
    private readonly concurrency: number,
  ) {
    this.share = PREFETCH_BUDGET / Math.max(1, concurrency);
  }

  private fill(from: number): void {
    this.next = Math.max(this.next, from);
    while (this.next < this.sources.length && this.next < from + this.concurrency) {
      const source = this.sources[this.next]!;
      if (source.remote && source.size <= this.share) {
        if (this.ahead.size > 0 && this.held + source.size > PREFETCH_BUDGET) return;
        this.held += source.size;
        this.ahead.set(this.next, download(source, this.live));
      }
      this.next++;
    }
  }

  /**
   * The bytes of source `i` (called with 0, 1, 2, ... in order), or the
   * error of opening it.
   */
  async open(i: number): Promise<{ stream: Readable } | { error: unknown }> {
    this.fill(i);
    const source = this.sources[i]!;
    const pending = this.ahead.get(i);
    if (pending === undefined) {
      try {
        return { stream: await source.open() };
      } catch (error) {
        return { error };
      }
    }
    const fetched = await pending;
    this.ahead.delete(i);
    this.held -= source.size;
    // Room freed: start the next downloads while this object is scanned.
    this.fill(i + 1);
    if (fetched.openError !== undefined) return { error: fetched.openError };
    return { stream: replayed(fetched) };
  }

  /** Stops downloads still running (after an error). */
  close(): void {
    for (const body of this.live) body.destroy();
    this.live.clear();
  }
}

/**
 * Replays sources through a fresh engine in input order, downloading remote
 * objects ahead with bounded concurrency, and builds the contract document.
 * The document is the same whatever the concurrency.
 */
export async function runReplay(
  sources: Source[],
  config: EdgebanConfig,
  options: ReplayOptions = {},
): Promise<ReplayResult> {
  const engine = new Engine(config);
  const summary: ReplayDocument['summary'] = {
    files: 0,
    lines: 0,
    requests: 0,
    rejected: 0,
    skippedFiles: 0,
    damagedFiles: 0,
  };
  const problems: Problem[] = [];
  const progress = options.progress;
  const range = isBounded(options.range) ? options.range : null;
  let outside = 0;
  const needs = fieldNeeds(config.rules);
  const since = range?.since ?? null;
  const until = range?.until ?? null;
  const countInRange = (req: ParsedRequest): void => {
    const ms = req.minute * 60_000;
    if ((since !== null && ms < since) || (until !== null && ms >= until)) outside++;
    else engine.count(req);
  };
  const count = range === null ? (req: ParsedRequest) => engine.count(req) : countInRange;
  // With a progress bar, report lines while a large object is read, not only after it.
  let seen = 0;
  const countShown = (req: ParsedRequest): void => {
    count(req);
    if ((++seen & 8191) === 0) progress?.lines(summary.lines + seen);
  };
  const scan = (input: Readable): Promise<FileScan> => {
    seen = 0;
    if (progress !== undefined) return scanStream(input, { needs }, countShown);
    return range === null ? engine.scan(input) : scanStream(input, { needs }, countInRange);
  };

  const prefetcher = new Prefetcher(sources, options.concurrency ?? DEFAULT_CONCURRENCY);
  progress?.start(
    sources.reduce((t, s) => t + s.size, 0),
    sources.length,
  );
  try {
    for (let i = 0; i < sources.length; i++) {
      const source = sources[i]!;
      summary.files++;
      const opened = await prefetcher.open(i);
      let result: FileScan;
      if ('error' in opened) {
        if (isUnreachable(opened.error)) {
          throw new UnreachableError(`cannot read ${source.name}: ${oneLine(opened.error)}`);
        }
        result = { ...emptyScan(), damaged: `read error: ${oneLine(opened.error)}` };
      } else {
        let input = opened.stream;
        if (progress !== undefined) {
          const counter = new PassThrough();
          counter.on('data', (chunk: Buffer) => progress.bytes(chunk.length));
          input.on('error', (err) => counter.destroy(err));
          input = input.pipe(counter);
        }
        const before = outside;
        result = await scan(input);
        // Out-of-range requests are left out as if their lines were not there.
        result.lines -= outside - before;
        result.requests -= outside - before;
      }
      summary.lines += result.lines;
      summary.requests += result.requests;
      summary.rejected += result.rejected;
      if (result.skipped !== null) summary.skippedFiles++;
      if (result.damaged !== null) summary.damagedFiles++;
      const problem = problemOf(source.name, result);
      if (problem !== null) problems.push(problem);
      progress?.file(summary.files, summary.lines);
    }
  } finally {
    prefetcher.close();
    progress?.stop();
  }
  if (range !== null) {
    summary.objectsOutOfRange = options.objectsOutOfRange ?? 0;
    summary.requestsOutOfRange = outside;
  }
  const decisions = engine.decisions();
  const document: ReplayDocument = {
    summary,
    problems,
    ...(options.clients ? { clients: engine.clients() } : {}),
    decisions: decisions.map((d) => ({
      key: d.key,
      rule: d.rule,
      peak: d.peak,
      firstExceeded: formatSeconds(d.firstExceeded),
      blockedUntil: formatSeconds(d.blockedUntil),
      offences: d.offences,
    })),
  };
  return { document, decisions, engine };
}
