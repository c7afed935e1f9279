/**
 * `edgeban replay`: the engine over logs offline, with the JSON document
 * of DESIGN.md section 4.
 */
import { PassThrough, type Readable } from 'node:stream';
import { Engine } from '../lambda/core/engine';
import { formatSeconds } from '../lambda/core/formats/time';
import type { Decision, EdgebanConfig, FileScan } from '../lambda/core/types';
import { isUnreachable, oneLine, UnreachableError } from './errors';
import type { Source } from './inputs';

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
  bytes(n: number): void;
  file(done: number): void;
  stop(): void;
}

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

async function openSource(source: Source): Promise<Readable | string> {
  try {
    return await source.open();
  } catch (err) {
    if (isUnreachable(err))
      throw new UnreachableError(`cannot read ${source.name}: ${oneLine(err)}`);
    return oneLine(err);
  }
}

/**
 * Replays sources through a fresh engine, one after another, and builds
 * the contract document.
 */
export async function runReplay(
  sources: Source[],
  config: EdgebanConfig,
  options: { clients?: boolean; progress?: ReplayProgress } = {},
): Promise<ReplayResult> {
  const engine = new Engine(config);
  const summary = {
    files: 0,
    lines: 0,
    requests: 0,
    rejected: 0,
    skippedFiles: 0,
    damagedFiles: 0,
  };
  const problems: Problem[] = [];
  const progress = options.progress;
  progress?.start(
    sources.reduce((t, s) => t + s.size, 0),
    sources.length,
  );
  try {
    for (const source of sources) {
      summary.files++;
      const opened = await openSource(source);
      let scan: FileScan;
      if (typeof opened === 'string') {
        scan = { ...emptyScan(), damaged: `read error: ${opened}` };
      } else {
        let input = opened;
        if (progress !== undefined) {
          const counter = new PassThrough();
          counter.on('data', (chunk: Buffer) => progress.bytes(chunk.length));
          opened.on('error', (err) => counter.destroy(err));
          input = opened.pipe(counter);
        }
        scan = await engine.scan(input);
      }
      summary.lines += scan.lines;
      summary.requests += scan.requests;
      summary.rejected += scan.rejected;
      if (scan.skipped !== null) summary.skippedFiles++;
      if (scan.damaged !== null) summary.damagedFiles++;
      const problem = problemOf(source.name, scan);
      if (problem !== null) problems.push(problem);
      progress?.file(summary.files);
    }
  } finally {
    progress?.stop();
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
