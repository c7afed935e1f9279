/**
 * The whole edgeban pipeline on the local cloud, wired as the CDK stack
 * wires it in AWS: the log bucket's object-created events go to an ingest
 * queue (the S3 event notification JSON as the message body), the ingest
 * handler consumes it in batches and nudges a reconciler queue when blocks
 * change, and the reconciler runs on each nudge and on a schedule, one at
 * a time (the reconciler queue is FIFO with one message group, and ingest's
 * nudges are deduplicated per time bucket, as in AWS). The handler modules
 * are the Lambda's; only the endpoints and the clock differ.
 */
import { randomUUID } from 'node:crypto';
import { PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import type { WAFV2Client } from '@aws-sdk/client-wafv2';
import { DynamoDBDocumentClient, paginateScan } from '@aws-sdk/lib-dynamodb';
import type { SQSEvent } from 'aws-lambda';
import { sortDecisions } from '../lambda/core/engine';
import { type Guard, guardFor } from '../lambda/core/guard';
import { compareKeys } from '../lambda/core/ip';
import type { Decision, EdgebanConfig } from '../lambda/core/types';
import { decodeEventKey, handleIngestBatch } from '../lambda/ingest/ingest';
import { handleRealtimeBatch } from '../lambda/realtime/consume';
import { type IpSetRef, type ReconcileResult, reconcile } from '../lambda/reconciler/reconcile';
import {
  coalescedTrigger,
  type ReconcileTriggerSource,
  uniqueTrigger,
} from '../lambda/shared/reconcile-trigger';
import { ledgerKey, pairKey } from '../lambda/shared/schema';
import { ensureTable } from '../lambda/state/table';
import { type Clock, SimulatedClock } from './clock';
import {
  type LocalClients,
  type LocalCloud,
  type LocalCloudOptions,
  localClients,
  startLocalCloud,
} from './cloud';
import { KinesisPoller } from './kinesis-poller';
import { LocalQueue } from './queue';

/** The log calls the handlers make; Powertools' Logger and a console adapter fit. */
export interface PipelineLogger {
  info(message: string, ...extra: Record<string, unknown>[]): void;
  warn(message: string, ...extra: Record<string, unknown>[]): void;
  error(message: string, ...extra: Record<string, unknown>[]): void;
}

/** Why a reconcile ran. */
export type ReconcileTrigger = 'message' | 'schedule' | 'settle';

/** One reconcile run, as the pipeline reports it. */
export interface ReconcileRun {
  readonly trigger: ReconcileTrigger;
  /** Pipeline clock at the start of the run, epoch ms. */
  readonly at: number;
  readonly result: ReconcileResult;
  /** WAF API calls the run made (the emulator's call log). */
  readonly wafCalls: number;
}

/** Options of {@link startPipeline}. */
export interface PipelineOptions {
  readonly config: EdgebanConfig;
  /** The pipeline clock (simulated, or the real one for `--serve`). */
  readonly clock: Clock;
  /**
   * Apply the live horizon in ingest.
   * @default true - `--logs` turns it off
   */
  readonly horizon?: boolean;
  /** @default - `config.logs.bucketName`, else `edgeban-logs` */
  readonly bucket?: string;
  /** @default 'edgeban-state' */
  readonly tableName?: string;
  /** Options of the local cloud (fault proxies, WAF faults, seed). */
  readonly cloud?: Omit<LocalCloudOptions, 'buckets'>;
  /**
   * Real milliseconds a failed message stays invisible before redelivery.
   * @default 200
   */
  readonly visibilityTimeoutMs?: number;
  /** @default 5 */
  readonly maxReceiveCount?: number;
  /**
   * Extra deliveries of every ingest message (at-least-once, for tests).
   * @default 0
   */
  readonly duplicates?: number;
  /**
   * Concurrent ingest invocations.
   * @default 2
   */
  readonly ingestConcurrency?: number;
  /**
   * The reconciler's backoff sleep between WAF retries.
   * @default - a real timer
   */
  readonly sleep?: (ms: number) => Promise<void>;
  /** @default Math.random */
  readonly random?: () => number;
  /** @default - no logging */
  readonly logger?: PipelineLogger;
  /** Told about every reconcile run, in order. */
  readonly onReconcile?: (run: ReconcileRun) => void;
  /**
   * The real-time source: a kinesalite stream polled as the event source
   * mapping would, into the real-time handler.
   * @default - on when `config.realtime.distributionIds` is not empty
   */
  readonly realtime?: RealtimeOptions | false;
  /**
   * Coalescing of ingest's reconciler messages, as the deployed queue does
   * it (lambda/shared/reconcile-trigger.ts): their deduplication ids are
   * buckets of this width on the pipeline clock, and the queue delays every
   * message this many real milliseconds.
   * @default 0 - no coalescing: each message its own deduplication id, no delay
   */
  readonly reconcileCoalesceMs?: number;
}

/** The local real-time source. */
export interface RealtimeOptions {
  /** @default 1 */
  readonly shards?: number;
  /** @default 100 */
  readonly batchSize?: number;
  /** Real milliseconds between polls. @default 100 */
  readonly intervalMs?: number;
  /** Extra deliveries of every batch (at-least-once, for tests). @default 0 */
  readonly redeliveries?: number;
}

/** One decided (key, rule) pair, read from the state table (its pair-state item). */
export type StoredDecision = Decision;

/** Totals of the object ledger: what ingest read. */
export interface LedgerTotals {
  readonly objects: number;
  readonly lines: number;
  readonly requests: number;
  readonly rejected: number;
  readonly skipped: number;
  readonly damaged: number;
}

/** Base error of this module. */
export class PipelineError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PipelineError';
  }
}

/** A running local pipeline. */
export interface LocalPipeline {
  readonly cloud: LocalCloud;
  readonly config: EdgebanConfig;
  readonly clock: Clock;
  readonly bucket: string;
  readonly tableName: string;
  /** The IP sets, in config order (IPv4 sets first). */
  readonly ipSets: readonly IpSetRef[];
  readonly ddb: DynamoDBDocumentClient;
  readonly guard: Guard;
  readonly ingestQueue: LocalQueue;
  readonly reconcilerQueue: LocalQueue;
  /** Every reconcile run so far, oldest first. */
  readonly runs: readonly ReconcileRun[];
  /** The real-time stream's poller (the event source mapping), when the source is on. */
  readonly poller: KinesisPoller | undefined;
  /**
   * Puts an object into the log bucket, as CloudFront or a load balancer
   * delivers it, and resolves once its event is on the ingest queue.
   * @returns the object's ETag (without quotes)
   */
  upload(key: string, body: Buffer | string): Promise<string>;
  /** Runs one reconcile now (after any run in progress). */
  reconcileNow(trigger: ReconcileTrigger): Promise<ReconcileRun>;
  /**
   * Waits until both queues are empty and a reconcile changes nothing.
   * @throws PipelineError when that does not happen within `maxRounds` reconciles
   */
  settle(maxRounds?: number): Promise<void>;
  /** Runs the reconciler every `intervalMs` real milliseconds (the schedule). */
  startSchedule(intervalMs: number): void;
  /** Addresses in the pipeline's IP sets, all sets of a version together, sorted like keys. */
  wafAddresses(): { IPV4: string[]; IPV6: string[] };
  /** Every decided (key, rule) pair of the state table, in replay's decision order. */
  decisions(): Promise<StoredDecision[]>;
  /** Totals over the object ledger. */
  ledger(): Promise<LedgerTotals>;
  /** Stops the schedule, the queues and the local cloud. */
  stop(): Promise<void>;
}

/** The names a deployment gives the IP sets: `edgeban-ipv4-1`, `edgeban-ipv6-1`, ... */
export function ipSetNames(config: EdgebanConfig): { name: string; version: 'IPV4' | 'IPV6' }[] {
  const out: { name: string; version: 'IPV4' | 'IPV6' }[] = [];
  for (let i = 1; i <= config.ipSets.ipv4; i++)
    out.push({ name: `edgeban-ipv4-${i}`, version: 'IPV4' });
  for (let i = 1; i <= config.ipSets.ipv6; i++)
    out.push({ name: `edgeban-ipv6-${i}`, version: 'IPV6' });
  return out;
}

type Item = Record<string, unknown>;

async function scanPrefix(
  ddb: DynamoDBDocumentClient,
  table: string,
  prefix: string,
): Promise<Item[]> {
  const items: Item[] = [];
  const pages = paginateScan(
    { client: ddb },
    {
      TableName: table,
      FilterExpression: 'begins_with(pk, :p)',
      ExpressionAttributeValues: { ':p': prefix },
      ConsistentRead: true,
    },
  );
  for await (const page of pages) for (const item of page.Items ?? []) items.push(item);
  return items;
}

/** The partition-key prefix shared by every item of a kind (`PAIR#`, `OBJ#`), from the schema. */
function kindPrefix(pk: string): string {
  return pk.slice(0, pk.indexOf('#') + 1);
}

function num(item: Item, name: string): number {
  const v = item[name];
  return typeof v === 'number' && Number.isFinite(v) ? v : 0;
}

/**
 * Starts the local cloud and wires the pipeline on it: log bucket, state
 * table, IP sets (per `config.ipSets` and `config.scope`, as the stack
 * creates them), queues and consumers.
 */
export async function startPipeline(options: PipelineOptions): Promise<LocalPipeline> {
  const { config, clock } = options;
  const bucket = options.bucket ?? config.logs.bucketName ?? 'edgeban-logs';
  const tableName = options.tableName ?? 'edgeban-state';
  const realtime = options.realtime ?? (config.realtime.distributionIds.length > 0 ? {} : false);
  // The reconciler paces its WAF calls by sleeping. On a simulated clock the
  // sleeps move WAF time only: it runs ahead of the pipeline clock by them,
  // so decisions keep their times. The emulator's quotas run on WAF time.
  const simulated = clock instanceof SimulatedClock;
  let wafAhead = 0;
  const wafClock: Clock = simulated ? { now: () => clock.now() + wafAhead } : clock;
  const reconcilerSleep = async (ms: number): Promise<void> => {
    if (simulated) wafAhead += ms;
    if (options.sleep) await options.sleep(ms);
    else if (!simulated) await new Promise((r) => setTimeout(r, ms));
  };
  // WAF as AWS runs it: its API quotas.
  const cloud = await startLocalCloud({
    ...options.cloud,
    waf: { clock: wafClock, quotas: true, ...options.cloud?.waf },
    buckets: [bucket],
    ...(realtime === false ? {} : { kinesis: { shards: realtime.shards ?? 1 } }),
  });
  let poller: KinesisPoller | undefined;
  let uploader: LocalClients | undefined;
  const queues: LocalQueue[] = [];
  let timer: NodeJS.Timeout | undefined;
  let stopped: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    stopped ??= (async () => {
      if (timer !== undefined) clearInterval(timer);
      await poller?.stop();
      for (const q of queues) q.stop();
      await Promise.all(queues.map((q) => q.drain()));
      await reconcileChain.catch(() => undefined);
      if (uploader !== undefined) for (const c of Object.values(uploader)) c.destroy();
      await cloud.stop();
    })();
    return stopped;
  };
  let reconcileChain: Promise<unknown> = Promise.resolve();

  try {
    const { s3, dynamodb } = cloud.clients();
    // One attempt per WAF call, as the reconciler Lambda: it retries itself, re-reading the set.
    const waf: WAFV2Client = cloud.clients({ maxAttempts: 1 }).wafv2;
    const ddb = DynamoDBDocumentClient.from(dynamodb, {
      marshallOptions: { removeUndefinedValues: true },
    });
    await ensureTable(dynamodb, tableName);
    const ipSets: IpSetRef[] = ipSetNames(config).map(({ name, version }) => {
      const s = cloud.waf.createIpSet({
        name,
        scope: config.scope,
        ipAddressVersion: version,
        description: 'edgeban blocklist',
      });
      return { name: s.name, id: s.id, arn: s.arn, version, scope: config.scope };
    });
    const guard = guardFor(config.allowlist);
    const logger = options.logger;
    const runs: ReconcileRun[] = [];

    const coalesceMs = options.reconcileCoalesceMs ?? 0;
    const reconcilerQueue = new LocalQueue({
      name: 'edgeban-reconcile.fifo',
      fifo: true,
      contentBasedDeduplication: true,
      deliveryDelayMs: coalesceMs,
      visibilityTimeoutMs: options.visibilityTimeoutMs ?? 200,
      maxReceiveCount: options.maxReceiveCount ?? 5,
      clock,
    });
    const ingestQueue = new LocalQueue({
      name: 'edgeban-ingest',
      visibilityTimeoutMs: options.visibilityTimeoutMs ?? 200,
      maxReceiveCount: options.maxReceiveCount ?? 5,
      duplicates: options.duplicates ?? 0,
      clock,
    });
    queues.push(ingestQueue, reconcilerQueue);

    const reconcileNow = (trigger: ReconcileTrigger): Promise<ReconcileRun> => {
      const run = reconcileChain.then(async () => {
        const at = clock.now();
        const before = cloud.waf.calls().length;
        const deps = {
          ddb,
          tableName,
          waf,
          ipSets,
          config,
          guard,
          now: () => clock.now(),
          wafNow: () => wafClock.now(),
          sleep: reconcilerSleep,
          ...(options.random ? { random: options.random } : {}),
          ...(logger ? { logger } : {}),
        };
        let result = await reconcile(deps);
        // An operator's `--local` command may hold the lease for a moment.
        for (let tries = 0; result.busy && tries < 100; tries++) {
          await new Promise((r) => setTimeout(r, 100));
          result = await reconcile(deps);
        }
        const entry: ReconcileRun = {
          trigger,
          at,
          result,
          wafCalls: cloud.waf.calls().length - before,
        };
        runs.push(entry);
        options.onReconcile?.(entry);
        return entry;
      });
      reconcileChain = run.catch(() => undefined);
      return run;
    };

    // As the Lambdas do: one reconciler message per batch that changed blocks.
    // As the Lambdas: one message in the reconciler's FIFO group, coalesced per bucket.
    const nudge = (source: ReconcileTriggerSource): void => {
      const m =
        coalesceMs > 0
          ? coalescedTrigger(source, clock.now(), coalesceMs)
          : uniqueTrigger(source, clock.now(), randomUUID());
      reconcilerQueue.send(m.MessageBody, {
        groupId: m.MessageGroupId,
        deduplicationId: m.MessageDeduplicationId,
      });
    };

    // As the counting Lambdas: one reconciler message per batch that changed blocks.
    const nudgingOnce = async <R>(
      source: ReconcileTriggerSource,
      batch: (notifyReconciler: () => Promise<void>) => Promise<R>,
    ): Promise<R> => {
      let changed = false;
      const response = await batch(async () => {
        changed = true;
      });
      if (changed) nudge(source);
      return response;
    };
    const counting = {
      ddb,
      tableName,
      config,
      guard,
      now: () => clock.now(),
      horizon: options.horizon ?? true,
      ...(logger ? { logger } : {}),
    };

    ingestQueue.subscribe(
      (event: SQSEvent) =>
        nudgingOnce('ingest', (notifyReconciler) =>
          handleIngestBatch({ ...counting, s3, notifyReconciler }, event),
        ),
      {
        concurrency: options.ingestConcurrency ?? 2,
        onError: (err) => logger?.error('ingest invocation failed', { error: String(err) }),
      },
    );
    reconcilerQueue.subscribe(
      async () => {
        const { result } = await reconcileNow('message');
        // As the reconciler Lambda: a set left behind fails the message, so it comes back.
        if (result.failedSets.length > 0) {
          throw new PipelineError(
            `IP sets not updated in this run: ${result.failedSets.join(', ')}`,
          );
        }
        return undefined;
      },
      {
        concurrency: 1,
        onError: (err) => logger?.warn('reconcile invocation failed', { error: String(err) }),
      },
    );

    const kinesis = cloud.kinesis;
    if (realtime !== false && kinesis !== undefined) {
      poller = new KinesisPoller({
        client: kinesis.client,
        streamName: kinesis.streamName,
        streamArn: kinesis.streamArn,
        region: kinesis.region,
        batchSize: realtime.batchSize ?? 100,
        intervalMs: realtime.intervalMs ?? 100,
        redeliveries: realtime.redeliveries ?? 0,
        handler: (event) =>
          nudgingOnce('realtime', (notifyReconciler) =>
            handleRealtimeBatch({ ...counting, notifyReconciler }, event),
          ),
        onError: (err) => logger?.error('real-time invocation failed', { error: String(err) }),
        onDiscard: (records, reason) =>
          logger?.error('real-time records discarded', { records: records.length, reason }),
      });
      poller.start();
    }

    // Events of objects created, by bucket/key#etag, and uploads waiting for theirs.
    const seen = new Set<string>();
    const waiting = new Map<string, () => void>();
    cloud.onObjectCreated((record) => {
      if (record.s3.bucket.name !== bucket) return;
      ingestQueue.send(JSON.stringify({ Records: [record] }));
      const id = `${decodeEventKey(record.s3.object.key)}#${record.s3.object.eTag}`;
      const resolve = waiting.get(id);
      if (resolve === undefined) seen.add(id);
      else {
        waiting.delete(id);
        resolve();
      }
    });

    const upload = async (key: string, body: Buffer | string): Promise<string> => {
      uploader ??= localClients(cloud.direct);
      const s3direct: S3Client = uploader.s3;
      const out = await s3direct.send(
        new PutObjectCommand({ Bucket: bucket, Key: key, Body: body }),
      );
      const etag = (out.ETag ?? '').replace(/"/g, '');
      const id = `${key}#${etag}`;
      if (seen.delete(id)) return etag;
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => {
          waiting.delete(id);
          reject(new PipelineError(`no object-created event for ${key} within 30 s`));
        }, 30_000);
        waiting.set(id, () => {
          clearTimeout(timer);
          resolve();
        });
      });
      return etag;
    };

    const quiet = (r: ReconcileResult): boolean =>
      r.updates === 0 &&
      r.expired.length === 0 &&
      r.consoleUnblocks.length === 0 &&
      r.failedSets.length === 0 &&
      !r.partial &&
      !r.fenced;

    const settle = async (maxRounds = 30): Promise<void> => {
      let lastError: unknown = null;
      for (let round = 0; round < maxRounds; round++) {
        await poller?.drain();
        await ingestQueue.drain();
        await reconcilerQueue.drain();
        let run: ReconcileRun;
        try {
          run = await reconcileNow('settle');
        } catch (err) {
          lastError = err;
          continue;
        }
        if (quiet(run.result) && ingestQueue.depth === 0 && reconcilerQueue.depth === 0) return;
      }
      throw new PipelineError(
        `the pipeline did not settle after ${maxRounds} reconciles${lastError ? `: ${String(lastError)}` : ''}`,
      );
    };

    const ours = new Set(ipSets.map((s) => s.id));
    const wafAddresses = (): { IPV4: string[]; IPV6: string[] } => {
      const out = { IPV4: [] as string[], IPV6: [] as string[] };
      for (const s of cloud.waf.ipSets()) {
        if (ours.has(s.id)) out[s.ipAddressVersion].push(...s.addresses);
      }
      out.IPV4.sort(compareKeys);
      out.IPV6.sort(compareKeys);
      return out;
    };

    const ruleIndex = new Map(config.rules.map((r, i) => [r.name, i]));
    const decisions = async (): Promise<StoredDecision[]> => {
      const out: StoredDecision[] = [];
      for (const item of await scanPrefix(ddb, tableName, kindPrefix(pairKey('r', 'k').pk))) {
        const rule = typeof item.rule === 'string' ? item.rule : null;
        const index = rule === null ? undefined : ruleIndex.get(rule);
        if (typeof item.firstExceeded !== 'number' || index === undefined) continue;
        const blocks = (Array.isArray(item.blocks) ? (item.blocks as Item[]) : []).map((b) => ({
          offence: num(b, 'offence'),
          start: num(b, 'start'),
          until: num(b, 'until'),
        }));
        const last = blocks[blocks.length - 1];
        if (last === undefined) continue;
        out.push({
          key: String(item.key),
          rule: rule!,
          ruleIndex: index,
          peak: num(item, 'peak'),
          firstExceeded: item.firstExceeded,
          blockedUntil: last.until,
          offences: last.offence,
          blocks,
        });
      }
      return sortDecisions(out);
    };

    const ledger = async (): Promise<LedgerTotals> => {
      const totals = { objects: 0, lines: 0, requests: 0, rejected: 0, skipped: 0, damaged: 0 };
      for (const item of await scanPrefix(
        ddb,
        tableName,
        kindPrefix(ledgerKey('b', 'k', 'e').pk),
      )) {
        totals.objects++;
        totals.lines += num(item, 'lines');
        totals.requests += num(item, 'requests');
        totals.rejected += num(item, 'rejected');
        if (typeof item.skipped === 'string') totals.skipped++;
        if (typeof item.damaged === 'string') totals.damaged++;
      }
      return totals;
    };

    return {
      cloud,
      config,
      clock,
      bucket,
      tableName,
      ipSets,
      ddb,
      guard,
      ingestQueue,
      reconcilerQueue,
      runs,
      poller,
      upload,
      reconcileNow,
      settle,
      startSchedule(intervalMs: number) {
        if (timer !== undefined) clearInterval(timer);
        timer = setInterval(() => {
          reconcileNow('schedule').catch((err: unknown) =>
            logger?.warn('scheduled reconcile failed', { error: String(err) }),
          );
        }, intervalMs);
      },
      wafAddresses,
      decisions,
      ledger,
      stop,
    };
  } catch (err) {
    await stop().catch(() => undefined);
    throw err;
  }
}
