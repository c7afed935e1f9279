/**
 * The reconciler: the single writer to WAF (DESIGN sections 1 and 5). One
 * run sweeps expired blocks, turns the active blocks into the addresses WAF
 * should hold (`plan.ts`), and brings the IP sets there with at most one
 * successful UpdateIPSet per set, paced under the account's API quotas
 * (`waf-writer.ts`).
 *
 * Safety rules, re-checked at write time whatever the state table says:
 * - only canonical keys no wider than `minPrefix` and overlapping no guarded
 *   range reach WAF;
 * - an address is removed only if the membership record says edgeban put it
 *   there; others' addresses are carried over untouched;
 * - an address edgeban put in a set and finds missing is judged by
 *   `removals.ts`: a stale read proves nothing, a reset is repaired (the
 *   addresses go back, with a `reset` event), and only a small loss in a
 *   fresh read with no deploy in between is a person's removal, recorded
 *   as an unblock of its key and never re-added;
 * - more new addresses than `maxNewBlocksPerRun` in one run trips the
 *   circuit breaker: nothing at all is written to WAF in that run (re-adds
 *   after a reset are not new);
 * - every state write carries the lease's fencing token and is refused once
 *   a newer reconcile has written the item: a reconcile that outlived its
 *   lease stops there;
 * - throttling delays, never aborts; at its deadline a run stops cleanly as
 *   partial and the next run continues.
 *
 * Modes: `block` and `count` maintain the sets alike (the web ACL rule's
 * action differs, which the deployment sets); `observe` sweeps and records
 * but neither reads nor writes WAF.
 */

import { randomUUID } from 'node:crypto';
import type { WAFV2Client } from '@aws-sdk/client-wafv2';
import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { IP_SET_CAPACITY } from '../core/config';
import type { Guard } from '../core/guard';
import type { EdgebanConfig } from '../core/types';
import { METRIC_DIMENSIONS, METRICS } from '../shared/contract';
import {
  type ActiveBlock,
  type IpSetStatus,
  lagSeconds,
  readActiveBlocks,
  readIngestStatus,
  readModeOverride,
  sweepExpired,
  writeReconcileStatus,
} from '../state/blocks';
import { readDeploysSince } from '../state/deploys';
import { FencedWriteError } from '../state/fence';
import { PairFencedError } from '../state/pairs';
import { acquireLease, type Lease, RUN_BUDGET_MS, releaseLease } from './lease';
import { LossHandler } from './losses';
import { claimMemberships, deleteMembership, type Membership, writeMembership } from './membership';
import { byPriority, desiredAddresses, place, type Wanted } from './plan';
import { DEPLOY_IN_PROGRESS_MS, isStale } from './removals';
import {
  emptyResult,
  type MutableResult,
  type ReconcileLogger,
  type ReconcileMetrics,
  type ReconcileResult,
} from './result';
import { SetRun } from './set-run';
import {
  DeadlineReached,
  errorName,
  type IpSetRef,
  isLockConflict,
  isTransient,
  type Pacing,
  ReconcileError,
  WafWriter,
} from './waf-writer';

export { parseIpSetRefs } from './ip-set-refs';
export type { ReconcileLogger, ReconcileMetrics, ReconcileResult } from './result';
export { type IpSetRef, type Pacing, ReconcileError } from './waf-writer';
export { IP_SET_CAPACITY };

/** Attempts after the first, per set and run, after a lock conflict, a stale read or a transient error. */
export const MAX_RETRIES = 5;

export { CONSOLE_ACTOR, RESET_ACTOR } from './losses';

/** What {@link reconcile} works with. */
export interface ReconcileDeps {
  readonly ddb: DynamoDBDocumentClient;
  readonly tableName: string;
  /** A client for the sets' region (us-east-1 for CLOUDFRONT). */
  readonly waf: WAFV2Client;
  /** In config order: the first set of a version fills first. */
  readonly ipSets: readonly IpSetRef[];
  readonly config: EdgebanConfig;
  readonly guard: Guard;
  /** The pipeline clock, epoch milliseconds. */
  readonly now: () => number;
  /**
   * The clock WAF calls are paced on and the run's deadline runs on, epoch
   * ms: `sleep` moves it. A simulated pipeline keeps its own clock for
   * decisions and lets WAF time run ahead by the sleeps.
   * @default now
   */
  readonly wafNow?: () => number;
  /** @default Math.random */
  readonly random?: () => number;
  /** @default - a timer */
  readonly sleep?: (ms: number) => Promise<void>;
  /**
   * The lease's clock (real time, epoch ms): a lease outlives a paused
   * holder by this clock.
   * @default Date.now
   */
  readonly leaseNow?: () => number;
  /**
   * How long the run may work on WAF (on `now`) before it stops as partial.
   * @default RUN_BUDGET_MS
   */
  readonly budgetMs?: number;
  /** @default - 400 ms between reads, 2 s between updates */
  readonly pacing?: Pacing;
  /** @default - no logging */
  readonly logger?: ReconcileLogger;
  /** @default - no metrics */
  readonly metrics?: ReconcileMetrics;
}

/**
 * Runs one reconcile under the lease: the only writer of the IP sets and
 * of their membership records while it holds it.
 *
 * @returns what the run did; sets that could not be updated are listed in
 *   `failedSets`, sets left at the deadline in `deferredSets` (the next run
 *   picks both up)
 * @throws ReconcileError when a set cannot be read or is not of its configured version
 */
export async function reconcile(deps: ReconcileDeps): Promise<ReconcileResult> {
  const owner = randomUUID();
  const leaseNow = deps.leaseNow ?? Date.now;
  const lease = await acquireLease(deps.ddb, deps.tableName, owner, leaseNow());
  if (lease === null) {
    deps.logger?.info('another reconcile holds the lease; this run does nothing');
    const mode = (await readModeOverride(deps.ddb, deps.tableName))?.mode ?? deps.config.mode;
    return { ...emptyResult(mode), busy: true };
  }
  const run = new Run(deps, lease);
  try {
    return await run.go();
  } catch (err) {
    if (!(err instanceof FencedWriteError || err instanceof PairFencedError)) throw err;
    return run.fencedOff(err);
  } finally {
    // A lease that cannot be given back expires by itself.
    await releaseLease(deps.ddb, deps.tableName, owner, run.writer?.lastWriteAt).catch(
      (err: unknown) => deps.logger?.warn('reconciler lease not released', { error: String(err) }),
    );
  }
}

/** One reconcile run under a lease. */
class Run {
  private readonly result: MutableResult;
  private readonly log: ReconcileLogger | undefined;
  private readonly fence: number;
  private readonly nowMs: number;
  private wanted = new Map<string, Wanted>();
  private active: ActiveBlock[] = [];
  private losses: LossHandler | undefined;
  writer: WafWriter | undefined;

  constructor(
    private readonly deps: ReconcileDeps,
    private readonly lease: Lease,
  ) {
    this.result = emptyResult(deps.config.mode);
    this.log = deps.logger;
    this.fence = lease.fence;
    this.nowMs = deps.now();
  }

  async go(): Promise<ReconcileResult> {
    const { ddb, tableName: table, config, guard } = this.deps;
    const mode = (await readModeOverride(ddb, table))?.mode ?? config.mode;
    this.result.mode = mode;
    const nowS = Math.floor(this.nowMs / 1000);
    const swept = await sweepExpired(
      ddb,
      table,
      await readActiveBlocks(ddb, table),
      nowS,
      this.fence,
    );
    this.result.expired = swept.expired.map((b) => b.key);
    this.active = swept.active;
    const desired = desiredAddresses(swept.active, config, guard);
    this.wanted = desired.wanted;
    this.result.refused = desired.refused;
    for (const r of desired.refused) {
      this.log?.warn('active block refused at write time', { key: r.key, reason: r.reason });
    }

    // Observe: decisions and expiries are recorded, WAF is not touched, not even read.
    if (mode === 'observe') return this.finish(null);

    const memberships = await claimMemberships(
      ddb,
      table,
      this.deps.ipSets.map((r) => r.name),
      this.fence,
    );
    const runs = this.deps.ipSets.map(
      (ref) => new SetRun(ref, memberships.get(ref.name), this.nowMs),
    );
    const configured = new Set(this.deps.ipSets.map((r) => r.name));
    const orphans = [...memberships.entries()].filter(([name]) => !configured.has(name));
    // Everything the pipeline had put in some set, removed sets included: putting it back is no new block.
    const known = new Set<string>();
    for (const m of memberships.values()) for (const c of knownOf(m)) known.add(c);
    const oldestRead = Math.min(...runs.map((r) => r.readAt), this.nowMs);
    this.losses = new LossHandler({
      ddb,
      tableName: table,
      config,
      now: this.deps.now,
      fence: this.fence,
      wanted: this.wanted,
      active: this.active,
      deploys: await readDeploysSince(ddb, table, oldestRead + 1 - DEPLOY_IN_PROGRESS_MS),
      result: this.result,
      ...(this.log ? { log: this.log } : {}),
    });

    const wafNow = this.deps.wafNow ?? this.deps.now;
    this.writer = new WafWriter({
      waf: this.deps.waf,
      now: wafNow,
      sleep: this.deps.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms))),
      random: this.deps.random ?? Math.random,
      deadline: wafNow() + (this.deps.budgetMs ?? RUN_BUDGET_MS),
      lastWriteAt: this.lease.lastWriteAt,
      ...(this.deps.pacing ? { pacing: this.deps.pacing } : {}),
    });

    // Each set read once; stale ones again, after the others, until fresh.
    const unread = await this.readAll(runs);
    const readable = runs.filter((r) => !unread.has(r));

    const { evicted, fresh } = place(readable, this.wanted, known);
    this.result.evicted.push(...evicted);
    if (evicted.length > 0) {
      this.log?.warn('IP sets full: blocks that end soonest left out', { evicted: evicted.length });
    }
    if (fresh > config.maxNewBlocksPerRun) {
      this.result.tripped = true;
      this.log?.warn('circuit breaker tripped: nothing written to WAF', {
        newAddresses: fresh,
        maxNewBlocksPerRun: config.maxNewBlocksPerRun,
      });
      // Only what was read is recorded (removals, resets, updates that did land).
      for (const r of readable) if (r.dirty) await this.save(r, true);
      return this.finish(runs);
    }

    for (const r of readable) {
      if (this.result.partial) {
        this.result.deferredSets.push(r.ref.name);
        if (r.dirty) await this.save(r, true);
        continue;
      }
      try {
        await this.apply(r);
      } catch (err) {
        if (err instanceof DeadlineReached) {
          this.result.partial = true;
          this.result.deferredSets.push(r.ref.name);
          if (r.dirty) await this.save(r, true);
          continue;
        }
        if (
          err instanceof ReconcileError ||
          err instanceof FencedWriteError ||
          err instanceof PairFencedError
        ) {
          throw err;
        }
        this.result.failedSets.push(r.ref.name);
        this.log?.warn('IP set not updated in this run', {
          ipSet: r.ref.name,
          error: errorName(err),
        });
      }
    }
    for (const r of unread) this.result.deferredSets.push(r.ref.name);
    if (unread.size > 0) this.result.partial = true;
    // A set no longer configured: its addresses live elsewhere now; forget its record.
    if (!this.result.partial && this.result.failedSets.length === 0) {
      for (const [name] of orphans) await deleteMembership(ddb, table, name, this.fence);
    }
    return this.finish(runs);
  }

  /** What a fenced-off run reports: nothing more was written. */
  fencedOff(err: Error): ReconcileResult {
    this.result.fenced = true;
    this.log?.warn('a newer reconcile holds the state: this run stops', { error: err.message });
    this.deps.metrics?.add(METRICS.fencedWrites, 1);
    return { ...this.result, wafCalls: this.calls() };
  }

  private calls(): number {
    return (this.writer?.tally.reads ?? 0) + (this.writer?.tally.writes ?? 0);
  }

  /**
   * Reads every set once, spaced; a stale answer is read again after the
   * others, with a backoff, up to {@link MAX_RETRIES} times.
   * @returns the sets with no fresh read in this run
   */
  private async readAll(runs: readonly SetRun[]): Promise<Set<SetRun>> {
    let pending = [...runs];
    for (let attempt = 0; pending.length > 0 && attempt <= MAX_RETRIES; attempt++) {
      const again: SetRun[] = [];
      try {
        if (attempt > 0) await this.writer!.wait(this.writer!.backoff(attempt - 1, 1_000, 8_000));
        for (const r of pending) {
          if (attempt > 0) this.result.retries++;
          if (!(await this.readFresh(r))) again.push(r);
        }
      } catch (err) {
        if (!(err instanceof DeadlineReached)) throw err;
        return new Set(pending.filter((r) => !r.fresh));
      }
      pending = again;
    }
    return new Set(pending);
  }

  /**
   * Reads a set and, when the read is fresh, judges what it lacks.
   * @returns false when the read was stale or failed transiently (try again later)
   */
  private async readFresh(r: SetRun): Promise<boolean> {
    let read: Awaited<ReturnType<WafWriter['read']>>;
    try {
      read = await this.writer!.read(r.ref);
    } catch (err) {
      if (err instanceof DeadlineReached || err instanceof ReconcileError) throw err;
      if (!isTransient(err)) {
        throw new ReconcileError(`cannot read IP set ${r.ref.name}: ${errorName(err)}`);
      }
      return false;
    }
    if (isStale(read.lockToken, r.superseded)) {
      this.result.staleReads++;
      this.log?.info('stale read of an IP set: it proves nothing', { ipSet: r.ref.name });
      return false;
    }
    const before = r.readAt;
    r.take(read, this.deps.now());
    await this.losses!.judge(r, before);
    return true;
  }

  /** Brings one set to its target: at most one successful update. */
  private async apply(r: SetRun): Promise<void> {
    const writer = this.writer!;
    for (let attempt = 0; ; attempt++) {
      if (attempt > 0) {
        this.result.retries++;
        await writer.wait(writer.backoff(attempt - 1));
        if (!(await this.readFresh(r))) {
          if (attempt >= MAX_RETRIES) throw new ReconcileAttemptsError(r.ref.name);
          continue;
        }
      }
      const toRemove = r.mine().filter((c) => !r.target.has(c));
      const toAdd = [...r.target]
        .filter((c) => !r.current.has(c))
        .sort((a, b) => byPriority(this.wanted.get(a)!, this.wanted.get(b)!));
      // Others may have added addresses since the plan: the soonest-ending of ours give way.
      const over = r.current.size - toRemove.length + toAdd.length - IP_SET_CAPACITY;
      for (const cidr of over > 0 ? toAdd.splice(toAdd.length - over, over) : []) {
        r.target.delete(cidr);
        this.result.evicted.push(cidr);
      }
      if (toRemove.length === 0 && toAdd.length === 0) {
        if (r.dirty || r.resetAt !== null) {
          r.resetAt = null;
          r.readd.clear();
          await this.save(r, true);
        }
        return;
      }
      for (const c of toAdd) r.owned.add(c);
      for (const c of toRemove) r.removing.add(c);
      // The intent first, fenced: a reconcile past its lease stops before it writes WAF.
      await this.save(r, false);
      const gone = new Set(toRemove);
      const addresses = [...r.current].filter(([c]) => !gone.has(c)).map(([, a]) => a);
      addresses.push(...toAdd);
      const sent = r.lockToken;
      let next: string;
      try {
        next = await writer.update(r.ref, addresses, r.description, sent);
      } catch (err) {
        if (err instanceof DeadlineReached) throw err;
        if (!(isLockConflict(err) || isTransient(err)) || attempt >= MAX_RETRIES) throw err;
        this.log?.info('IP set update to retry', {
          ipSet: r.ref.name,
          error: errorName(err),
          attempt,
        });
        continue;
      }
      this.result.updates++;
      this.result.added.push(...toAdd);
      this.result.removed.push(...toRemove);
      r.updated(sent, next, toAdd, toRemove);
      await this.save(r, true);
      r.dirty = false;
      return;
    }
  }

  private async save(r: SetRun, settled: boolean): Promise<void> {
    await writeMembership(
      this.deps.ddb,
      this.deps.tableName,
      r.ref.name,
      r.record(this.deps.now(), settled),
      this.fence,
    );
  }

  private async finish(runs: readonly SetRun[] | null): Promise<ReconcileResult> {
    const { ddb, tableName: table } = this.deps;
    const result = this.result;
    result.desired = this.wanted.size;
    result.throttled = this.writer?.tally.throttled ?? 0;
    result.wafCalls = this.calls();
    const ipSets = runs?.map((r) => setStatus(r)) ?? null;
    await writeReconcileStatus(
      ddb,
      table,
      {
        at: this.nowMs,
        mode: result.mode,
        ipSets,
        lagSeconds: lagSeconds(await readIngestStatus(ddb, table), this.nowMs),
        tripped: result.tripped,
      },
      this.fence,
    );
    const m = this.deps.metrics;
    if (m !== undefined) {
      m.add(METRICS.activeBlocks, this.active.length);
      m.add(METRICS.reconcileUpdates, result.updates);
      m.add(METRICS.reconcileRetries, result.retries);
      m.add(METRICS.circuitBreakerTrips, result.tripped ? 1 : 0);
      m.add(METRICS.evictions, result.evicted.length);
      m.add(METRICS.resets, result.resets.length);
      m.add(METRICS.wafThrottled, result.throttled);
      m.add(METRICS.staleReads, result.staleReads);
      m.add(METRICS.fencedWrites, 0);
      m.add(METRICS.partialRuns, result.partial ? 1 : 0);
      m.add(METRICS.reconcileRuns, 1);
      for (const s of ipSets ?? [])
        m.add(METRICS.ipSetSize, s.size, { [METRIC_DIMENSIONS.ipSet]: s.name });
    }
    this.log?.info('reconciled', {
      mode: result.mode,
      desired: result.desired,
      added: result.added.length,
      removed: result.removed.length,
      updates: result.updates,
      retries: result.retries,
      tripped: result.tripped,
      evicted: result.evicted.length,
      consoleUnblocks: result.consoleUnblocks.length,
      resets: result.resets.length,
      expired: result.expired.length,
      refused: result.refused.length,
      failedSets: result.failedSets,
      deferredSets: result.deferredSets,
      staleReads: result.staleReads,
      throttled: result.throttled,
      wafCalls: result.wafCalls,
    });
    return { ...result };
  }
}

/** A set whose reads stayed stale or failed for every attempt of a run. */
class ReconcileAttemptsError extends Error {
  constructor(setName: string) {
    super(`IP set ${setName}: no fresh read within ${MAX_RETRIES} retries`);
    this.name = 'ReconcileAttemptsError';
  }
}

/** Every address a record says the pipeline put, or may have put, in its set. */
function knownOf(m: Membership): string[] {
  return [...m.confirmed, ...m.pendingAdd];
}

function setStatus(run: SetRun): IpSetStatus {
  return {
    name: run.ref.name,
    version: run.ref.version,
    size: run.current.size,
    capacity: IP_SET_CAPACITY,
  };
}
