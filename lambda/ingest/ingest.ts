/**
 * The ingest side of the live pipeline: one S3 log object in, exact
 * per-(key, rule, minute) counts merged into the state table, the windows
 * they touched evaluated, decisions and offences recorded, the reconciler
 * told when blocks changed. Takes its SDK clients and clock as arguments;
 * `handler.ts` only wires them.
 *
 * Per object, in this order (each step is safe to repeat, so a crash or a
 * racing duplicate anywhere only costs work):
 * 1. the ledger (bucket, key, ETag) says whether the object was done;
 * 2. the object streams through a fresh {@link Engine} (live horizon);
 *    a read error fails the object (it is retried), a gzip error is a
 *    damaged object whose lines before the break count;
 * 3. one count item per (rule, key, hour), keyed by the object's id:
 *    rewriting it is harmless, so counts are exact across redeliveries;
 * 4. the rules' time-slot count bounds get this object's totals (atomic
 *    ADD), then are read back: a pair whose bound cannot pass its
 *    threshold is not queried (see {@link pairBound});
 * 5. every other pair: a strongly consistent Query sums its items over all
 *    objects; when no considered window sum passes the threshold the pair
 *    stops there (no state read); else `evaluateSeries` runs over the
 *    touched minutes and the state is written back conditionally on its
 *    version (retried on conflicts); pairs that never fired get no state;
 * 6. pairs with an active block get their `ACTIVE` item (and a `block`
 *    history event when a block is new), the reconciler is told;
 * 7. the ledger item is written last, then the ingest status.
 *
 * Why a pair is never missed: each object writes its counts and bounds
 * before it reads any. Of the objects that together push a window over the
 * threshold, the one whose bound writes finish last reads every other's
 * bounds and counts, so it sees the whole sum.
 *
 * Cost: writes are one count item per (rule, key, hour) per object, plus a
 * few bound items per object and the items of blocked pairs; reads are one
 * Query (1 read unit for the usual item sizes) per pair the bound could
 * not rule out. Measured on the bench's 1M-line CloudFront hour with the
 * default rule: 22,014 item writes and 2 Queries as one object; 40,915
 * writes and 736 Queries as ten consecutive objects; 210,391 writes and
 * 4,967 Queries as ten objects that each span the hour
 * (`test/ingest/measure-cost.ts`).
 */
import { type Readable, Transform } from 'node:stream';
import { GetObjectCommand, NoSuchKey, type S3Client, S3ServiceException } from '@aws-sdk/client-s3';
import { type DynamoDBDocumentClient, GetCommand, PutCommand } from '@aws-sdk/lib-dynamodb';
import type { SQSBatchResponse, SQSEvent } from 'aws-lambda';
import { Engine } from '../core/engine';
import type { Guard } from '../core/guard';
import type { EdgebanConfig, FileScan, LogFormat } from '../core/types';
import { METRICS } from '../shared/contract';
import { ledgerKey } from '../shared/schema';
import { mapLimit, objectId } from '../state/counts';
import { MemoryGate, objectMemory } from './admission';
import {
  commitPairs,
  horizonMinute,
  raiseIngestStatus,
  type TouchedPair,
  touchedPairs,
} from './commit';
import { eventKeyCandidates } from './keys';
import { realtimeDistributionOf } from './sources';

export { horizonMinute, maxWindowSum, pairBound, pairSlots } from './commit';

/** Base error of this module. */
export class IngestError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'IngestError';
  }
}

/** The object's bytes could not be read whole: the delivery must be retried. */
export class ObjectReadError extends IngestError {
  constructor(bucket: string, key: string, reason: string) {
    super(`reading s3://${bucket}/${key} failed: ${reason}`);
    this.name = 'ObjectReadError';
  }
}

/** An SQS message that is not an S3 event notification. */
export class BadMessageError extends IngestError {
  constructor(reason: string) {
    super(`not an S3 event notification: ${reason}`);
    this.name = 'BadMessageError';
  }
}

/** The logger calls ingest makes (Powertools' Logger fits). */
export interface IngestLogger {
  info(message: string, extra: Record<string, unknown>): void;
  warn(message: string, extra: Record<string, unknown>): void;
  error(message: string, extra: Record<string, unknown>): void;
}

/** The metric calls ingest makes (Powertools' Metrics fits). */
export interface IngestMetrics {
  addMetric(name: string, unit: 'Count' | 'Seconds', value: number): void;
}

/** What ingest works with: SDK clients, table, config, guard and clock. */
export interface IngestDeps {
  readonly s3: S3Client;
  readonly ddb: DynamoDBDocumentClient;
  readonly tableName: string;
  readonly config: EdgebanConfig;
  readonly guard: Guard;
  /** The pipeline clock, epoch milliseconds. */
  readonly now: () => number;
  /** Tells the reconciler that blocks were created or changed. */
  readonly notifyReconciler: () => Promise<void>;
  /**
   * Apply the live horizon (DESIGN section 1).
   * @default true - the local `--logs` mode turns it off
   */
  readonly horizon?: boolean;
  readonly logger?: IngestLogger;
  readonly metrics?: IngestMetrics;
  /**
   * DynamoDB requests in flight per object.
   * @default 16
   */
  readonly concurrency?: number;
}

/** One S3 object version to ingest. */
export interface ObjectRef {
  readonly bucket: string;
  /**
   * The decoded object key; it names the object in the ledger and history
   * even when an alternate key is the one read.
   */
  readonly key: string;
  /**
   * Other decodings of the event's key, read in order when the one before
   * finds no object (keys.ts).
   * @default - none
   */
  readonly alternateKeys?: readonly string[];
  readonly etag: string;
  readonly size?: number;
}

/** What ingesting an object did. */
export interface ObjectReport {
  readonly duplicate: false;
  readonly format: LogFormat | null;
  readonly lines: number;
  readonly requests: number;
  readonly rejected: number;
  /** Requests outside the live horizon. */
  readonly stale: number;
  /** Why the object is not an access log we read, or null. */
  readonly skipped: string | null;
  /** What broke the object's byte stream, or null. */
  readonly damaged: string | null;
  /** (key, rule) pairs with counts. */
  readonly pairs: number;
  /** Pairs whose windows were queried and evaluated (the rest provably cannot fire). */
  readonly evaluated: number;
  /** Blocks created. */
  readonly decisions: number;
  /** DynamoDB items written (count items, bounds, states, blocks, history, ledger, status). */
  readonly writes: number;
  /** DynamoDB Query and Get calls. */
  readonly reads: number;
}

/** The result of {@link ingestObject}. */
export type IngestResult = { readonly duplicate: true } | ObjectReport;

const noopLogger: IngestLogger = { info() {}, warn() {}, error() {} };
const noopMetrics: IngestMetrics = { addMetric() {} };

function quoteEtag(etag: string): string {
  return etag.startsWith('"') ? etag : `"${etag}"`;
}

function errorText(err: unknown): string {
  const e = err as { name?: unknown; message?: unknown };
  return `${String(e?.name ?? 'Error')}: ${String(e?.message ?? err)}`.replace(/\s+/g, ' ');
}

/** What one GetObject of a candidate key found. */
type Attempt =
  | { readonly body: Readable; readonly length: number | undefined; readonly key: string }
  | { readonly miss: 'missing' | 'replaced' | 'denied'; readonly err: unknown };

async function getObject(s3: S3Client, ref: ObjectRef, key: string): Promise<Attempt> {
  try {
    const res = await s3.send(
      new GetObjectCommand({ Bucket: ref.bucket, Key: key, IfMatch: quoteEtag(ref.etag) }),
    );
    if (res.Body === undefined) throw new ObjectReadError(ref.bucket, key, 'no body');
    return { body: res.Body as Readable, length: res.ContentLength, key };
  } catch (err) {
    if (err instanceof NoSuchKey) return { miss: 'missing', err };
    if (err instanceof S3ServiceException && err.$metadata.httpStatusCode === 412) {
      // The key now holds another version; that one has its own event.
      return { miss: 'replaced', err };
    }
    // Without s3:ListBucket S3 answers a missing key with 403, not 404
    // (https://docs.aws.amazon.com/AmazonS3/latest/API/API_GetObject.html,
    // "Permissions"): a wrong candidate key looks like this too.
    if (err instanceof S3ServiceException && err.$metadata.httpStatusCode === 403) {
      return { miss: 'denied', err };
    }
    throw err;
  }
}

/**
 * The object's bytes, or why there are none to read. The event's key is
 * tried as decoded, then each alternate decoding while none is found; a
 * 403 that no candidate explains is thrown (it may be a real denial).
 */
async function openObject(
  s3: S3Client,
  ref: ObjectRef,
): Promise<{ body: Readable; length: number | undefined; key: string } | { gone: string }> {
  const misses: { miss: string; err: unknown }[] = [];
  for (const key of [ref.key, ...(ref.alternateKeys ?? [])]) {
    const attempt = await getObject(s3, ref, key);
    if ('body' in attempt) return attempt;
    misses.push(attempt);
  }
  const denied = misses.find((m) => m.miss === 'denied');
  if (denied !== undefined) throw denied.err;
  if (misses.some((m) => m.miss === 'replaced'))
    return { gone: 'object was replaced (ETag changed)' };
  return { gone: 'object no longer exists' };
}

/**
 * Streams the body through the engine. A failure of the body itself (reset,
 * timeout, short read) throws {@link ObjectReadError}, whatever the scanner
 * made of it: such a scan is incomplete and nothing of it may be recorded.
 * A gzip error inside complete bytes is left to the scanner (`damaged`).
 */
async function scanBody(
  engine: Engine,
  ref: ObjectRef,
  body: Readable,
  length: number | undefined,
): Promise<FileScan> {
  let received = 0;
  let ended = false;
  let settled = false;
  let readError: unknown = null;
  const counter = new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      received += chunk.length;
      callback(null, chunk);
    },
  });
  body.on('error', (err) => {
    if (settled) return;
    readError ??= err;
    counter.destroy(err);
  });
  body.on('end', () => {
    ended = true;
  });
  body.pipe(counter);
  let scan: FileScan;
  try {
    scan = await engine.scan(counter);
  } catch (err) {
    readError ??= err;
    scan = null as unknown as FileScan;
  } finally {
    settled = true;
    // The scanner may stop early (skipped or damaged file): release the connection.
    if (!ended) body.destroy();
  }
  if (readError !== null) throw new ObjectReadError(ref.bucket, ref.key, errorText(readError));
  if (ended && length !== undefined && received !== length) {
    throw new ObjectReadError(ref.bucket, ref.key, `got ${received} of ${length} bytes`);
  }
  return scan;
}

/**
 * Ingests one S3 object: counts, decisions, ledger (see the module comment
 * for the steps). Safe to call any number of times for the same object,
 * also concurrently: it counts once.
 *
 * @throws ObjectReadError when the object's bytes could not be read whole
 *   (the caller retries the delivery); DynamoDB errors propagate likewise
 */
export async function ingestObject(deps: IngestDeps, ref: ObjectRef): Promise<IngestResult> {
  const { ddb, tableName, config } = deps;
  const logger = deps.logger ?? noopLogger;
  const metrics = deps.metrics ?? noopMetrics;
  const _concurrency = deps.concurrency ?? 16;
  const where = { bucket: ref.bucket, key: ref.key, etag: ref.etag };
  let writes = 0;
  let reads = 1;

  const ledger = ledgerKey(ref.bucket, ref.key, ref.etag);
  const seen = await ddb.send(
    new GetCommand({ TableName: tableName, Key: ledger, ConsistentRead: true }),
  );
  if (seen.Item !== undefined) {
    logger.info('object already ingested, skipping duplicate delivery', where);
    return { duplicate: true };
  }

  const nowMs = deps.now();
  const useHorizon = deps.horizon ?? true;
  const engine = new Engine(config, {
    guard: deps.guard,
    minMinute: useHorizon ? horizonMinute(config, nowMs) : undefined,
  });
  // One source per distribution: standard logs of a real-time distribution are not counted again.
  const realtimeOwner = realtimeDistributionOf(ref.key, config.realtime.distributionIds);
  const opened =
    realtimeOwner === null
      ? await openObject(deps.s3, ref)
      : { gone: `distribution ${realtimeOwner} is counted from its real-time logs` };
  let scan: FileScan;
  if ('gone' in opened) {
    scan = {
      format: null,
      lines: 0,
      requests: 0,
      rejected: 0,
      firstRejected: null,
      skipped: opened.gone,
      damaged: null,
      minMinute: null,
      maxMinute: null,
    };
  } else {
    if (opened.key !== ref.key) {
      logger.info('object found under an alternate decoding of its event key', {
        ...where,
        readKey: opened.key,
      });
    }
    scan = await scanBody(engine, { ...ref, key: opened.key }, opened.body, opened.length);
  }

  let touched: TouchedPair[] = [];
  if (scan.skipped === null) {
    touched = touchedPairs(engine, config, deps.guard);
  } else {
    logger.info('skipping object that is not an access log we read', {
      ...where,
      reason: scan.skipped,
    });
  }

  // Steps 3 to 6: counts, bounds, windows, decisions, the reconciler told.
  const committed = await commitPairs(
    deps,
    objectId(ref.bucket, ref.key, ref.etag),
    touched,
    nowMs,
  );
  writes += committed.writes;
  reads += committed.reads;
  const nowSec = Math.floor(nowMs / 1000);

  // Step 7: the ledger, last; then the ingest status.
  const ledgerItem: Record<string, unknown> = {
    ...ledger,
    bucket: ref.bucket,
    key: ref.key,
    format: scan.format,
    lines: scan.lines,
    requests: scan.requests,
    rejected: scan.rejected,
    stale: engine.stale,
    skipped: scan.skipped,
    damaged: scan.damaged,
    firstRejected: scan.firstRejected,
    pairs: committed.pairs,
    evaluated: committed.evaluated,
    decisions: committed.decisions,
    at: nowSec,
  };
  if (ref.size !== undefined) ledgerItem.size = ref.size;
  await ddb.send(new PutCommand({ TableName: tableName, Item: ledgerItem }));
  writes++;
  if (scan.maxMinute !== null && scan.skipped === null) {
    if (await raiseIngestStatus(ddb, tableName, scan.maxMinute, nowSec)) writes++;
  }

  if (scan.damaged !== null) {
    logger.warn('object is damaged; its lines before the break were counted', {
      ...where,
      reason: scan.damaged,
    });
  }
  if (scan.rejected > 0 && scan.firstRejected !== null) {
    logger.info('object has rejected lines', {
      ...where,
      rejected: scan.rejected,
      firstRejected: `line ${scan.firstRejected.line}: ${scan.firstRejected.reason}`,
    });
  }
  metrics.addMetric(METRICS.objects, 'Count', 1);
  if (scan.skipped !== null) metrics.addMetric(METRICS.skippedObjects, 'Count', 1);
  metrics.addMetric(METRICS.lines, 'Count', scan.lines);
  metrics.addMetric(METRICS.rejected, 'Count', scan.rejected);
  metrics.addMetric(METRICS.stale, 'Count', engine.stale);
  metrics.addMetric(METRICS.decisions, 'Count', committed.decisions);
  if (scan.maxMinute !== null) {
    metrics.addMetric(
      METRICS.lagSeconds,
      'Seconds',
      Math.max(0, nowSec - (scan.maxMinute + 1) * 60),
    );
  }
  return {
    duplicate: false,
    format: scan.format,
    lines: scan.lines,
    requests: scan.requests,
    rejected: scan.rejected,
    stale: engine.stale,
    skipped: scan.skipped,
    damaged: scan.damaged,
    pairs: committed.pairs,
    evaluated: committed.evaluated,
    decisions: committed.decisions,
    writes,
    reads,
  };
}

export { decodeEventKey } from './keys';

/**
 * The objects of one SQS message body: an S3 event notification (or the
 * same shape written by the stack's EventBridge input transformer, told
 * apart by `eventSource`: its keys are decoded differently, see keys.ts),
 * or none for the `s3:TestEvent` S3 sends when notifications are set up.
 * @throws BadMessageError for anything else
 */
export function parseS3EventBody(body: string): ObjectRef[] {
  let doc: unknown;
  try {
    doc = JSON.parse(body);
  } catch {
    throw new BadMessageError('body is not JSON');
  }
  if (typeof doc !== 'object' || doc === null) throw new BadMessageError('body is not an object');
  const d = doc as Record<string, unknown>;
  if (d.Event === 's3:TestEvent') return [];
  if (!Array.isArray(d.Records)) throw new BadMessageError('no Records list');
  const out: ObjectRef[] = [];
  for (const record of d.Records as unknown[]) {
    const r = record as {
      eventName?: unknown;
      eventSource?: unknown;
      s3?: Record<string, unknown>;
    } | null;
    if (typeof r?.eventName === 'string' && !r.eventName.startsWith('ObjectCreated:')) continue;
    const bucket = (r?.s3?.bucket as { name?: unknown } | undefined)?.name;
    const object = r?.s3?.object as { key?: unknown; eTag?: unknown; size?: unknown } | undefined;
    if (typeof bucket !== 'string' || typeof object?.key !== 'string') {
      throw new BadMessageError('a record has no bucket name or object key');
    }
    if (typeof object.eTag !== 'string' || object.eTag === '') {
      throw new BadMessageError(`object ${object.key} has no eTag`);
    }
    const [key, ...alternateKeys] = eventKeyCandidates(object.key, r?.eventSource);
    if (key === undefined) throw new BadMessageError(`object key ${object.key} is not URL-encoded`);
    out.push({
      bucket,
      key,
      ...(alternateKeys.length > 0 ? { alternateKeys } : {}),
      etag: object.eTag,
      ...(typeof object.size === 'number' ? { size: object.size } : {}),
    });
  }
  return out;
}

/** Options of {@link handleIngestBatch}. */
export interface BatchDeps extends IngestDeps {
  /**
   * Objects processed at once, at most.
   * @default 4
   */
  readonly objectConcurrency?: number;
  /**
   * Bytes the objects of one batch may take together (see `admission.ts`):
   * fewer objects run at once when their sizes say they might not fit.
   * @default - no limit beyond `objectConcurrency`
   */
  readonly memoryBudget?: number;
}

/**
 * Handles one SQS batch of S3 object-created events. Never throws for a
 * bad object or message: their records are reported in
 * `batchItemFailures`, so SQS redelivers just those (and after the queue's
 * limit moves them to the dead-letter queue).
 */
export async function handleIngestBatch(
  deps: BatchDeps,
  event: SQSEvent,
): Promise<SQSBatchResponse> {
  const logger = deps.logger ?? noopLogger;
  const failures: { itemIdentifier: string }[] = [];
  const gate = deps.memoryBudget === undefined ? null : new MemoryGate(deps.memoryBudget);
  await mapLimit(event.Records, deps.objectConcurrency ?? 4, async (record) => {
    try {
      const refs = parseS3EventBody(record.body);
      for (const ref of refs) {
        if (gate === null) await ingestObject(deps, ref);
        else await gate.run(objectMemory(ref.size), () => ingestObject(deps, ref));
      }
    } catch (err) {
      logger.error('ingest failed; the message will be retried', {
        messageId: record.messageId,
        error: errorText(err),
      });
      failures.push({ itemIdentifier: record.messageId });
    }
  });
  return { batchItemFailures: failures };
}
