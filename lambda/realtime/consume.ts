/**
 * The real-time side of the live pipeline (DESIGN section 8): a batch of
 * CloudFront real-time log records from a Kinesis event source mapping in,
 * counts merged into the same per-(key, rule, minute) state as the
 * standard logs' (`../ingest/commit.ts`), decisions made and the reconciler
 * told at once. Takes its SDK clients and clock as arguments; `handler.ts`
 * only wires them.
 *
 * Each record the stream holds counts once. Why it holds:
 * - A record is identified by (shard, sequence number): sequence numbers
 *   are unique within a shard and a record lives in one shard, also across
 *   reshards (a split or merge closes the parent shards and writes new
 *   records to new child shards).
 * - The shard ledger (`../state/shards.ts`) holds `upTo`, the highest
 *   committed sequence number of the shard. Records at or below it are
 *   skipped; the rest are committed in chunks, each chunk by one
 *   conditional PutItem that moves `upTo` to the chunk's last record and
 *   holds the chunk's counts. The write is atomic, so a chunk is either
 *   wholly counted or not at all, and the condition (the ledger's version)
 *   makes commits to a shard a chain of disjoint sequence ranges even if
 *   two invocations race.
 * - The chunk's count items are written after the commit under the
 *   chunk's id, and whoever next reads the ledger finishes a chunk left
 *   unfinished: rewriting them is harmless, so a crash between commit and
 *   count items loses and doubles nothing.
 * - Retries and bisected batches (BisectBatchOnFunctionError) re-deliver
 *   records already committed: they are at or below `upTo` and skipped,
 *   however the batch was cut. A per-batch ledger would double-count here:
 *   the half of a split batch has another id than the whole.
 * - The event source mapping reads a shard in order with one batch in
 *   flight per shard (ParallelizationFactor 1), and after a partial batch
 *   failure resumes at the reported record: every record below the first
 *   uncommitted one was committed. Records the mapping gives up on (retry
 *   and age limits) go to the on-failure destination, are alarmed, and are
 *   the only ones lost.
 *
 * CloudFront's own delivery is best effort: it can, rarely, drop a record
 * or write one twice under a new sequence number (a producer retry). The
 * latter are dropped by `x-edge-request-id` within a batch.
 */
import { createHash } from 'node:crypto';
import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import type { KinesisStreamBatchResponse, KinesisStreamEvent } from 'aws-lambda';
import { Engine } from '../core/engine';
import {
  createRealtimeParser,
  type RealtimeParser,
  realtimeFields,
} from '../core/formats/realtime';
import type { Guard } from '../core/guard';
import { fieldNeeds } from '../core/rules';
import { blankRequest, type EdgebanConfig } from '../core/types';
import {
  commitPairs,
  horizonMinute,
  longestWindow,
  raiseIngestStatus,
  type TouchedPair,
  touchedPairs,
} from '../ingest/commit';
import type { IngestLogger, IngestMetrics } from '../ingest/ingest';
import { METRICS } from '../shared/contract';
import {
  type Chunk,
  commitChunk,
  markChunkDone,
  padSequence,
  readShardLedger,
  type ShardLedger,
  type ShardTotals,
} from '../state/shards';

/** Base error of this module. */
export class RealtimeError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'RealtimeError';
  }
}

/** The logger and metric calls the consumer makes: the same as ingest's. */
export type RealtimeLogger = IngestLogger;
export type RealtimeMetrics = IngestMetrics;

/** What the consumer works with. */
export interface RealtimeDeps {
  readonly ddb: DynamoDBDocumentClient;
  readonly tableName: string;
  readonly config: EdgebanConfig;
  readonly guard: Guard;
  /** The pipeline clock, epoch milliseconds. */
  readonly now: () => number;
  /** Tells the reconciler that blocks were created or changed. */
  readonly notifyReconciler: () => Promise<void>;
  /**
   * The real-time log config's fields.
   * @default - {@link realtimeFields} of the config, as the stack configures them
   */
  readonly fields?: readonly string[];
  /**
   * Apply the live horizon.
   * @default true
   */
  readonly horizon?: boolean;
  /**
   * Records per committed chunk at most (a chunk's counts must fit one
   * DynamoDB item, 400 KB; a chunk too large is halved).
   * @default 2000
   */
  readonly chunkRecords?: number;
  /**
   * How long the stream keeps records, in seconds: a ledger item matters
   * until then (plus the horizon).
   * @default 86400 - the shortest retention, which the stack uses
   */
  readonly retentionSeconds?: number;
  readonly logger?: RealtimeLogger;
  readonly metrics?: RealtimeMetrics;
}

/** One record as the consumer reads it. */
export interface ShardRecord {
  readonly sequence: string;
  readonly padded: string;
  readonly data: Buffer;
}

/** What one shard's part of a batch did. */
export interface ShardReport {
  readonly stream: string;
  readonly shardId: string;
  /** Records skipped because an earlier delivery committed them. */
  readonly skipped: number;
  readonly chunks: number;
  readonly totals: ShardTotals;
  readonly decisions: number;
}

/** Largest JSON of a chunk's counts kept in the ledger item (DynamoDB's item limit is 400 KB). */
export const MAX_CHUNK_BYTES = 300_000;

const noopLogger: RealtimeLogger = { info() {}, warn() {}, error() {} };
const noopMetrics: RealtimeMetrics = { addMetric() {} };

function errorText(err: unknown): string {
  const e = err as { name?: unknown; message?: unknown };
  return `${String(e?.name ?? 'Error')}: ${String(e?.message ?? err)}`.replace(/\s+/g, ' ');
}

/** The stream name of a Kinesis stream ARN (`arn:aws:kinesis:<region>:<account>:stream/<name>`). */
export function streamName(arn: string): string {
  const at = arn.indexOf(':stream/');
  if (at < 0) throw new RealtimeError(`not a Kinesis stream ARN: ${arn}`);
  return arn.slice(at + ':stream/'.length);
}

/** The shard id of a Lambda Kinesis record's `eventID` (`<shard id>:<sequence number>`). */
export function shardOf(eventId: string): string {
  const colon = eventId.indexOf(':');
  if (colon <= 0) throw new RealtimeError(`not a Kinesis event id: ${eventId}`);
  return eventId.slice(0, colon);
}

/** The id of a chunk in its count items: 64 bits of SHA-256 over stream, shard and range. */
export function chunkId(stream: string, shardId: string, first: string, last: string): string {
  return createHash('sha256')
    .update(`kinesis\n${stream}\n${shardId}\n${first}\n${last}`)
    .digest('hex')
    .slice(0, 16);
}

/** Groups an event's records by (stream, shard), in delivery order. */
function groupByShard(
  event: KinesisStreamEvent,
): { stream: string; shardId: string; records: ShardRecord[] }[] {
  const groups = new Map<string, { stream: string; shardId: string; records: ShardRecord[] }>();
  for (const r of event.Records) {
    const stream = streamName(r.eventSourceARN);
    const shardId = shardOf(r.eventID);
    const id = `${stream}/${shardId}`;
    let group = groups.get(id);
    if (group === undefined) {
      group = { stream, shardId, records: [] };
      groups.set(id, group);
    }
    const sequence = r.kinesis.sequenceNumber;
    group.records.push({
      sequence,
      padded: padSequence(sequence),
      data: Buffer.from(r.kinesis.data, 'base64'),
    });
  }
  return [...groups.values()];
}

/** A chunk's counts in the ledger: rule names, not indexes, so a config change cannot shift them. */
function encodePairs(touched: readonly TouchedPair[]): string {
  return JSON.stringify(
    touched.map((p) => [p.rule.name, p.key, p.series.minutes, p.series.counts]),
  );
}

function decodePairs(json: string, config: EdgebanConfig): TouchedPair[] {
  const rows = JSON.parse(json) as [string, string, number[], number[]][];
  const out: TouchedPair[] = [];
  for (const [name, key, minutes, counts] of rows) {
    const ruleIndex = config.rules.findIndex((r) => r.name === name);
    // A rule removed since the commit: its counts no longer matter.
    if (ruleIndex < 0) continue;
    out.push({ rule: config.rules[ruleIndex]!, ruleIndex, key, series: { minutes, counts } });
  }
  return out;
}

/** The chunk's counts, parsed from its records. */
interface CountedChunk {
  readonly chunk: Omit<Chunk, 'done'>;
  readonly totals: ShardTotals;
  readonly firstRejected: string | null;
}

/**
 * Counts a run of records into a chunk. `seen` holds the request ids of
 * the batch so far: a record whose id is there is a duplicate.
 */
function countChunk(
  deps: RealtimeDeps,
  parser: RealtimeParser,
  stream: string,
  shardId: string,
  records: readonly ShardRecord[],
  seen: Set<string>,
): CountedChunk {
  const { config } = deps;
  const engine = new Engine(config, {
    guard: deps.guard,
    minMinute: (deps.horizon ?? true) ? horizonMinute(config, deps.now()) : undefined,
  });
  const req = blankRequest();
  let rejected = 0;
  let duplicates = 0;
  let maxMinute: number | null = null;
  let firstRejected: string | null = null;
  for (const r of records) {
    const reason = parser.parse(r.data, 0, r.data.length, req);
    if (reason !== null) {
      rejected++;
      firstRejected ??= `record ${r.sequence}: ${reason}`;
      continue;
    }
    const id = parser.requestId();
    if (id !== null) {
      if (seen.has(id)) {
        duplicates++;
        continue;
      }
      seen.add(id);
    }
    engine.count(req);
    if (maxMinute === null || req.minute > maxMinute) maxMinute = req.minute;
  }
  const first = records[0]!.sequence;
  const last = records[records.length - 1]!.sequence;
  return {
    chunk: {
      id: chunkId(stream, shardId, first, last),
      first,
      last,
      pairs: encodePairs(touchedPairs(engine, config, deps.guard)),
      maxMinute,
    },
    totals: { records: records.length, rejected, duplicates, stale: engine.stale },
    firstRejected,
  };
}

/** Request ids of records, for duplicates across the committed part of a batch. */
function rememberIds(
  parser: RealtimeParser,
  records: readonly ShardRecord[],
  seen: Set<string>,
): void {
  const req = blankRequest();
  for (const r of records) {
    if (parser.parse(r.data, 0, r.data.length, req) !== null) continue;
    const id = parser.requestId();
    if (id !== null) seen.add(id);
  }
}

/**
 * Writes a committed chunk's count items, evaluates its windows, and marks
 * it done. Safe to repeat.
 * @returns blocks created
 */
async function finishChunk(deps: RealtimeDeps, ledger: ShardLedger): Promise<number> {
  const chunk = ledger.chunk;
  if (chunk === null || chunk.done) return 0;
  const report = await commitPairs(
    deps,
    chunk.id,
    decodePairs(chunk.pairs, deps.config),
    deps.now(),
  );
  if (chunk.maxMinute !== null) {
    await raiseIngestStatus(
      deps.ddb,
      deps.tableName,
      chunk.maxMinute,
      Math.floor(deps.now() / 1000),
    );
  }
  await markChunkDone(deps.ddb, deps.tableName, ledger);
  return report.decisions;
}

/**
 * Counts one shard's records of a batch: finishes the shard's last chunk
 * if a crash left it unfinished, skips records already committed, commits
 * the rest chunk by chunk.
 *
 * @param failAt told where a retry must start should it throw: the first
 *   record of the chunk being committed or finished (a retry skips what is
 *   committed and finishes the chunk)
 */
export async function consumeShard(
  deps: RealtimeDeps,
  stream: string,
  shardId: string,
  records: readonly ShardRecord[],
  failAt: (sequence: string) => void,
): Promise<ShardReport> {
  const { ddb, tableName, config } = deps;
  const parser = createRealtimeParser(
    fieldNeeds(config.rules),
    deps.fields ?? realtimeFields(config),
  );
  const chunkRecords = Math.max(1, deps.chunkRecords ?? 2000);
  const retention = deps.retentionSeconds ?? 86_400;
  let ledger = await readShardLedger(ddb, tableName, stream, shardId);
  const unfinished = ledger.chunk !== null && !ledger.chunk.done ? ledger.chunk : null;
  if (unfinished !== null) failAt(unfinished.first);
  let decisions = await finishChunk(deps, ledger);

  const committed = records.filter((r) => ledger.upTo !== '' && r.padded <= ledger.upTo);
  const fresh = records.filter((r) => ledger.upTo === '' || r.padded > ledger.upTo);
  const seen = new Set<string>();
  rememberIds(parser, committed, seen);
  const added: ShardTotals[] = [];
  let chunks = 0;

  // Chunks of at most `chunkRecords`, halved while their counts would not fit the ledger item.
  const queue: ShardRecord[][] = [];
  for (let i = 0; i < fresh.length; i += chunkRecords) queue.push(fresh.slice(i, i + chunkRecords));
  while (queue.length > 0) {
    const run = queue.shift()!;
    failAt(run[0]!.sequence);
    const before = new Set(seen);
    const counted = countChunk(deps, parser, stream, shardId, run, seen);
    if (counted.chunk.pairs.length > MAX_CHUNK_BYTES && run.length > 1) {
      seen.clear();
      for (const id of before) seen.add(id);
      const half = Math.ceil(run.length / 2);
      queue.unshift(run.slice(0, half), run.slice(half));
      continue;
    }
    if (counted.firstRejected !== null) {
      deps.logger?.info('real-time records rejected', {
        stream,
        shardId,
        rejected: counted.totals.rejected,
        firstRejected: counted.firstRejected,
      });
    }
    const nowSec = Math.floor(deps.now() / 1000);
    const expires = nowSec + retention + longestWindow(config) * 60 + config.horizonSeconds;
    ledger = await commitChunk(
      ddb,
      tableName,
      ledger,
      counted.chunk,
      counted.totals,
      nowSec,
      expires,
    );
    chunks++;
    added.push(counted.totals);
    decisions += await finishChunk(deps, ledger);
  }
  const totals = added.reduce<ShardTotals>(
    (a, t) => ({
      records: a.records + t.records,
      rejected: a.rejected + t.rejected,
      duplicates: a.duplicates + t.duplicates,
      stale: a.stale + t.stale,
    }),
    { records: 0, rejected: 0, duplicates: 0, stale: 0 },
  );
  return { stream, shardId, skipped: committed.length, chunks, totals, decisions };
}

/**
 * Handles one batch of an event source mapping on the real-time stream.
 * Never throws: a shard whose records could not all be committed reports
 * its first uncommitted record in `batchItemFailures`, so Lambda retries
 * from there (ReportBatchItemFailures); what was committed is skipped then.
 */
export async function handleRealtimeBatch(
  deps: RealtimeDeps,
  event: KinesisStreamEvent,
): Promise<KinesisStreamBatchResponse> {
  const logger = deps.logger ?? noopLogger;
  const metrics = deps.metrics ?? noopMetrics;
  const failures: { itemIdentifier: string }[] = [];
  let groups: ReturnType<typeof groupByShard>;
  try {
    groups = groupByShard(event);
  } catch (err) {
    // A malformed event cannot be retried into shape: report its first record.
    logger.error('not a Kinesis event', { error: errorText(err) });
    const first = event.Records?.[0]?.kinesis?.sequenceNumber;
    return { batchItemFailures: first === undefined ? [] : [{ itemIdentifier: first }] };
  }
  for (const group of groups) {
    let failAt = group.records[0]?.sequence;
    try {
      const report = await consumeShard(deps, group.stream, group.shardId, group.records, (s) => {
        failAt = s;
      });
      metrics.addMetric(METRICS.lines, 'Count', report.totals.records);
      metrics.addMetric(METRICS.rejected, 'Count', report.totals.rejected);
      metrics.addMetric(METRICS.stale, 'Count', report.totals.stale);
      metrics.addMetric(METRICS.duplicateRecords, 'Count', report.totals.duplicates);
      metrics.addMetric(METRICS.decisions, 'Count', report.decisions);
    } catch (err) {
      logger.error('real-time records not committed; the batch is retried from the first', {
        stream: group.stream,
        shardId: group.shardId,
        sequence: failAt,
        error: errorText(err),
      });
      if (failAt !== undefined) failures.push({ itemIdentifier: failAt });
    }
  }
  return { batchItemFailures: failures };
}
