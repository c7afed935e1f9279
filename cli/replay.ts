/**
 * `edgeban replay`: the engine over logs offline, with the JSON document
 * of DESIGN.md section 4.
 */
import { availableParallelism } from 'node:os';
import { PassThrough } from 'node:stream';
import { Engine } from '../lambda/core/engine';
import { formatSeconds } from '../lambda/core/formats/time';
import type { Decision, EdgebanConfig, FileScan } from '../lambda/core/types';
import { isUnreachable, oneLine, UnreachableError } from './errors';
import { fileCounter } from './file-counter';
import { DEFAULT_CONCURRENCY, isBounded, type Source, type TimeRange } from './inputs';
import { Prefetcher } from './prefetch';
import { scanInWorkers } from './replay-workers';

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
  /**
   * Worker threads scanning local files at once, each with its own engine,
   * merged at the end: the document is byte for byte that of one thread.
   * S3 inputs are read in this thread, `concurrency` objects ahead.
   * @default - the available cores (`os.availableParallelism()`), one per
   *   4 MiB of input at most
   */
  readonly workers?: number;
}

export { DEFAULT_CONCURRENCY } from './inputs';

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

/**
 * Stored bytes each worker should have at least when the count is not
 * given: a worker takes tens of milliseconds to start, about what scanning
 * a few hundred KiB of gzip takes, so small replays stay on one thread.
 */
const BYTES_PER_WORKER = 4 * 1024 * 1024;

/** Threads for the local files: as asked, else the cores the input can keep busy. */
function workerCount(sources: readonly Source[], asked: number | undefined): number {
  const local = sources.filter((s) => !s.remote);
  if (asked !== undefined) return Math.min(asked, local.length);
  const bytes = local.reduce((t, s) => t + s.size, 0);
  return Math.max(
    1,
    Math.min(availableParallelism(), local.length, Math.floor(bytes / BYTES_PER_WORKER)),
  );
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
  const add = (source: Source, result: FileScan) => {
    summary.files++;
    summary.lines += result.lines;
    summary.requests += result.requests;
    summary.rejected += result.rejected;
    if (result.skipped !== null) summary.skippedFiles++;
    if (result.damaged !== null) summary.damagedFiles++;
    const problem = problemOf(source.name, result);
    if (problem !== null) problems.push(problem);
  };

  progress?.start(
    sources.reduce((t, s) => t + s.size, 0),
    sources.length,
  );
  const workers = workerCount(sources, options.workers);
  try {
    if (workers > 1 && sources.every((s) => !s.remote)) {
      const scans = await scanInWorkers(
        sources,
        config,
        range,
        workers,
        { engine, counter: fileCounter(engine, range) },
        (done, lines, bytes) => {
          progress?.bytes(bytes);
          progress?.file(done, lines);
        },
      );
      scans.forEach((counted, i) => {
        outside += counted.outside;
        add(sources[i]!, counted.scan);
      });
    } else {
      const counter = fileCounter(
        engine,
        range,
        progress && ((seen) => progress.lines(summary.lines + seen)),
      );
      const prefetcher = new Prefetcher(sources, options.concurrency ?? DEFAULT_CONCURRENCY);
      try {
        for (let i = 0; i < sources.length; i++) {
          const source = sources[i]!;
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
              const counted = new PassThrough();
              counted.on('data', (chunk: Buffer) => progress.bytes(chunk.length));
              input.on('error', (err) => counted.destroy(err));
              input = input.pipe(counted);
            }
            const done = await counter(input);
            outside += done.outside;
            result = done.scan;
          }
          add(source, result);
          progress?.file(summary.files, summary.lines);
        }
      } finally {
        prefetcher.close();
      }
    }
  } finally {
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
