/**
 * The reconciler: the single writer to WAF (DESIGN sections 1 and 5). One
 * run sweeps expired blocks, turns the active blocks into the addresses WAF
 * should hold, and brings the IP sets there with at most one successful
 * UpdateIPSet per set.
 *
 * Safety rules, re-checked at write time whatever the state table says:
 * - only canonical keys no wider than `minPrefix` and overlapping no guarded
 *   range reach WAF;
 * - an address is removed only if the membership record says edgeban put it
 *   there; others' addresses are carried over untouched;
 * - an address edgeban put in a set and finds missing was removed by a
 *   person: that is recorded as an unblock of its key and never re-added;
 * - more new addresses than `maxNewBlocksPerRun` in one run trips the
 *   circuit breaker: nothing at all is written to WAF in that run, not even
 *   the removal of expired blocks (they leave with the next run that does
 *   not trip). Sweeps and console removals are still recorded in the table.
 *
 * Modes: `block` and `count` maintain the sets alike (the web ACL rule's
 * action differs, which the deployment sets); `observe` sweeps and records
 * but neither reads nor writes WAF.
 */

import { randomUUID } from 'node:crypto';
import {
  GetIPSetCommand,
  type IPAddressVersion,
  UpdateIPSetCommand,
  type WAFV2Client,
} from '@aws-sdk/client-wafv2';
import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { IP_SET_CAPACITY } from '../core/config';
import type { Guard } from '../core/guard';
import { compareKeys, keyToCidr, parseCidr } from '../core/ip';
import type { EdgebanConfig, Mode, Scope } from '../core/types';
import { METRIC_DIMENSIONS, METRICS } from '../shared/contract';
import {
  blockProblem,
  cidrToKey,
  endKeyBlocks,
  type IpSetStatus,
  lagSeconds,
  readActiveBlocks,
  readIngestStatus,
  readModeOverride,
  sweepExpired,
  writeReconcileStatus,
} from '../state/blocks';
import { acquireLease, releaseLease } from './lease';
import { type Membership, readMemberships, writeMembership } from './membership';

export { IP_SET_CAPACITY };

/** Retries after a failed GetIPSet or UpdateIPSet of one set, per run. */
export const MAX_RETRIES = 5;
/** Full-jitter backoff: the n-th retry waits up to min(cap, base x 2^n) ms. */
const BACKOFF_BASE_MS = 100;
const BACKOFF_CAP_MS = 3000;

/** Who a console removal is recorded as. */
export const CONSOLE_ACTOR = 'console';

/** One IP set the reconciler fills. */
export interface IpSetRef {
  readonly name: string;
  readonly id: string;
  readonly arn?: string;
  readonly version: IPAddressVersion;
  readonly scope: Scope;
}

/** Structured log lines; a Powertools `Logger` fits. */
export interface ReconcileLogger {
  info(message: string, ...attributes: Record<string, unknown>[]): void;
  warn(message: string, ...attributes: Record<string, unknown>[]): void;
}

/** Metric sink (the handler maps it to Powertools EMF). Every value is a count. */
export interface ReconcileMetrics {
  add(name: string, value: number, dimensions?: Readonly<Record<string, string>>): void;
}

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
  /** @default Math.random */
  readonly random?: () => number;
  /** @default - a timer */
  readonly sleep?: (ms: number) => Promise<void>;
  /** @default - no logging */
  readonly logger?: ReconcileLogger;
  /** @default - no metrics */
  readonly metrics?: ReconcileMetrics;
}

/** What one run did. Addresses are canonical CIDRs as written to WAF. */
export interface ReconcileResult {
  readonly mode: Mode;
  /** Another reconcile held the lease: this one did nothing. */
  readonly busy?: boolean;
  /** Distinct addresses the active blocks ask for, after the write-time checks. */
  readonly desired: number;
  /** Addresses added by successful updates. */
  readonly added: string[];
  /** Addresses removed by successful updates. */
  readonly removed: string[];
  /** Successful UpdateIPSet calls. */
  readonly updates: number;
  /** GetIPSet / UpdateIPSet calls repeated after a lock conflict, throttling or a transient error. */
  readonly retries: number;
  /** The circuit breaker tripped: nothing was written to WAF. */
  readonly tripped: boolean;
  /** Addresses left out of WAF for capacity (their blocks end soonest). */
  readonly evicted: string[];
  /** Keys found removed from an IP set by someone else, recorded as unblocks. */
  readonly consoleUnblocks: string[];
  /** Keys of the blocks swept because they ended (one entry per block). */
  readonly expired: string[];
  /** Active keys that failed the write-time checks, with the reason. */
  readonly refused: { readonly key: string; readonly reason: string }[];
  /** Sets that could not be brought up to date in this run. */
  readonly failedSets: string[];
}

/** Base error of this module. */
export class ReconcileError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ReconcileError';
  }
}

/** An address the active blocks ask for. */
interface Wanted {
  readonly cidr: string;
  readonly key: string;
  readonly version: IPAddressVersion;
  /** Epoch seconds: the latest end of the key's blocks (eviction keeps the latest). */
  end: number;
}

/** Highest priority first: the blocks that last longest, then address order. */
function byPriority(a: Wanted, b: Wanted): number {
  return b.end - a.end || compareKeys(a.key, b.key);
}

const RETRYABLE_NAMES = new Set([
  'WAFOptimisticLockException',
  'WAFUnavailableEntityException',
  'WAFInternalErrorException',
  'ThrottlingException',
  'ThrottledException',
  'TooManyRequestsException',
  'RequestLimitExceeded',
  'TimeoutError',
]);
const RETRYABLE_CODES = new Set(['ECONNRESET', 'ECONNREFUSED', 'ETIMEDOUT', 'EPIPE']);

/** Lock conflicts, throttling and transient faults: read the set again and retry. */
function isRetryable(err: unknown): boolean {
  if (typeof err !== 'object' || err === null) return false;
  const e = err as { name?: unknown; code?: unknown; $metadata?: { httpStatusCode?: number } };
  if (typeof e.name === 'string' && RETRYABLE_NAMES.has(e.name)) return true;
  if (typeof e.code === 'string' && RETRYABLE_CODES.has(e.code)) return true;
  const status = e.$metadata?.httpStatusCode ?? 0;
  return status === 429 || status >= 500;
}

function errorName(err: unknown): string {
  return err instanceof Error ? err.name : String(err);
}

/** One IP set during a run: what it holds and what of it is ours. */
class SetRun {
  /** Latest read: canonical CIDR → address as stored (others' spelling is kept). */
  current = new Map<string, string>();
  lockToken = '';
  description: string | undefined;
  /** Addresses we may have put there: confirmed, or sent by an update whose fate is unknown. */
  readonly owned: Set<string>;
  /** Addresses a successful update confirmed, minus those found removed by someone else. */
  readonly confirmed: Set<string>;
  /** Addresses an update took out, or may have. */
  readonly removing: Set<string>;
  /** Our addresses this set should hold after the run. */
  readonly target = new Set<string>();
  /** The stored record differs from what the run knows. */
  dirty: boolean;

  constructor(
    readonly ref: IpSetRef,
    stored: Membership | undefined,
  ) {
    this.confirmed = new Set(stored?.confirmed ?? []);
    this.owned = new Set([...this.confirmed, ...(stored?.pendingAdd ?? [])]);
    this.removing = new Set(stored?.pendingRemove ?? []);
    this.dirty = (stored?.pendingAdd.length ?? 0) > 0 || (stored?.pendingRemove.length ?? 0) > 0;
  }

  /** Our addresses in the set now. */
  mine(): string[] {
    return [...this.owned].filter((c) => this.current.has(c));
  }

  /** Addresses others put there (and ones we may have put, if not ours on record). */
  othersCount(): number {
    let n = 0;
    for (const c of this.current.keys()) if (!this.owned.has(c)) n++;
    return n;
  }

  /** Confirmed addresses missing from the set that no update of ours took out. */
  removedByOthers(): string[] {
    return [...this.confirmed].filter((c) => !this.current.has(c) && !this.removing.has(c));
  }

  forget(cidr: string): void {
    this.confirmed.delete(cidr);
    this.owned.delete(cidr);
    this.target.delete(cidr);
    this.dirty = true;
  }

  /** The membership record: pending while an update is in flight, settled after. */
  record(at: number, settled: boolean): Membership {
    if (settled) return { confirmed: this.mine(), pendingAdd: [], pendingRemove: [], at };
    return {
      confirmed: [...this.confirmed],
      pendingAdd: [...this.owned].filter((c) => !this.confirmed.has(c)),
      pendingRemove: [...this.removing],
      at,
    };
  }
}

/**
 * Runs one reconcile. Call it one at a time (the Lambda has reserved
 * concurrency 1): it is the only writer of the IP sets and of their
 * membership records.
 *
 * @returns what the run did; sets that could not be updated after
 *   {@link MAX_RETRIES} retries are listed in `failedSets` (the next run
 *   picks them up)
 * @throws ReconcileError when a set cannot be read or is not of its configured version
 */
export async function reconcile(deps: ReconcileDeps): Promise<ReconcileResult> {
  const owner = randomUUID();
  if (!(await acquireLease(deps.ddb, deps.tableName, owner))) {
    deps.logger?.info('another reconcile holds the lease; this run does nothing');
    return busyResult((await readModeOverride(deps.ddb, deps.tableName))?.mode ?? deps.config.mode);
  }
  try {
    return await reconcileLeased(deps);
  } finally {
    // A lease that cannot be given back expires by itself.
    await releaseLease(deps.ddb, deps.tableName, owner).catch((err: unknown) =>
      deps.logger?.warn('reconciler lease not released', { error: String(err) }),
    );
  }
}

function busyResult(mode: Mode): ReconcileResult {
  return {
    mode,
    busy: true,
    desired: 0,
    added: [],
    removed: [],
    updates: 0,
    retries: 0,
    tripped: false,
    evicted: [],
    consoleUnblocks: [],
    expired: [],
    refused: [],
    failedSets: [],
  };
}

async function reconcileLeased(deps: ReconcileDeps): Promise<ReconcileResult> {
  const { ddb, tableName: table, config, guard, waf } = deps;
  const log = deps.logger;
  const random = deps.random ?? Math.random;
  const sleep = deps.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
  const nowMs = deps.now();
  const nowS = Math.floor(nowMs / 1000);

  const mode = (await readModeOverride(ddb, table))?.mode ?? config.mode;
  const swept = await sweepExpired(ddb, table, await readActiveBlocks(ddb, table), nowS);
  const lag = lagSeconds(await readIngestStatus(ddb, table), nowMs);

  const result = {
    mode,
    desired: 0,
    added: [] as string[],
    removed: [] as string[],
    updates: 0,
    retries: 0,
    tripped: false,
    evicted: [] as string[],
    consoleUnblocks: [] as string[],
    expired: swept.expired.map((b) => b.key),
    refused: [] as { key: string; reason: string }[],
    failedSets: [] as string[],
  };

  // Desired state, with the write-time checks.
  const wanted = new Map<string, Wanted>();
  const checked = new Map<string, string | null>();
  for (const b of swept.active) {
    let problem = checked.get(b.key);
    if (problem === undefined) {
      problem = blockProblem(b.key, config, guard);
      checked.set(b.key, problem);
      if (problem !== null) {
        result.refused.push({ key: b.key, reason: problem });
        log?.warn('active block refused at write time', { key: b.key, reason: problem });
      }
    }
    if (problem !== null) continue;
    const cidr = keyToCidr(b.key);
    const w = wanted.get(cidr);
    if (w === undefined) {
      const version = cidr.indexOf(':') < 0 ? 'IPV4' : 'IPV6';
      wanted.set(cidr, { cidr, key: b.key, version, end: b.until });
    } else if (b.until > w.end) {
      w.end = b.until;
    }
  }

  const finish = async (ipSets: IpSetStatus[] | null): Promise<ReconcileResult> => {
    result.desired = wanted.size;
    await writeReconcileStatus(ddb, table, {
      at: nowMs,
      mode,
      ipSets,
      lagSeconds: lag,
      tripped: result.tripped,
    });
    const m = deps.metrics;
    if (m !== undefined) {
      m.add(METRICS.activeBlocks, swept.active.length);
      m.add(METRICS.reconcileUpdates, result.updates);
      m.add(METRICS.reconcileRetries, result.retries);
      m.add(METRICS.circuitBreakerTrips, result.tripped ? 1 : 0);
      m.add(METRICS.evictions, result.evicted.length);
      for (const s of ipSets ?? [])
        m.add(METRICS.ipSetSize, s.size, { [METRIC_DIMENSIONS.ipSet]: s.name });
    }
    log?.info('reconciled', {
      mode,
      desired: result.desired,
      added: result.added.length,
      removed: result.removed.length,
      updates: result.updates,
      retries: result.retries,
      tripped: result.tripped,
      evicted: result.evicted.length,
      consoleUnblocks: result.consoleUnblocks.length,
      expired: result.expired.length,
      refused: result.refused.length,
      failedSets: result.failedSets,
    });
    return result;
  };

  // Observe: decisions and expiries are recorded, WAF is not touched, not even read.
  if (mode === 'observe') return finish(null);

  const backoff = (attempt: number): Promise<void> =>
    sleep(random() * Math.min(BACKOFF_CAP_MS, BACKOFF_BASE_MS * 2 ** attempt));

  const read = async (run: SetRun): Promise<void> => {
    const out = await waf.send(
      new GetIPSetCommand({ Name: run.ref.name, Id: run.ref.id, Scope: run.ref.scope }),
    );
    const set = out.IPSet;
    if (set === undefined || out.LockToken === undefined) {
      throw new ReconcileError(`GetIPSet of ${run.ref.name} returned no IP set`);
    }
    if (set.IPAddressVersion !== run.ref.version) {
      throw new ReconcileError(
        `IP set ${run.ref.name} holds ${set.IPAddressVersion} addresses, configured as ${run.ref.version}`,
      );
    }
    run.current = new Map();
    for (const address of set.Addresses ?? []) {
      run.current.set(parseCidr(address)?.cidr ?? address, address);
    }
    run.lockToken = out.LockToken;
    run.description = set.Description;
  };

  const readWithRetries = async (run: SetRun): Promise<void> => {
    for (let attempt = 0; ; attempt++) {
      try {
        await read(run);
        return;
      } catch (err) {
        if (!isRetryable(err) || attempt >= MAX_RETRIES) {
          throw new ReconcileError(`cannot read IP set ${run.ref.name}: ${errorName(err)}`);
        }
        result.retries++;
        await backoff(attempt);
      }
    }
  };

  const unblocked = new Set<string>();
  /** Records removals by someone else as unblocks, and drops them from the run. */
  const takeConsoleRemovals = async (run: SetRun): Promise<void> => {
    for (const cidr of run.removedByOthers()) {
      const key = wanted.get(cidr)?.key ?? cidrToKey(cidr);
      run.forget(cidr);
      wanted.delete(cidr);
      if (unblocked.has(key)) continue;
      unblocked.add(key);
      await endKeyBlocks(ddb, table, config, key, swept.active, {
        ms: nowMs,
        by: CONSOLE_ACTOR,
        reason: `removed from IP set ${run.ref.name}`,
      });
      result.consoleUnblocks.push(key);
      log?.info('address removed from an IP set by someone else: recorded as an unblock', {
        key,
        ipSet: run.ref.name,
      });
    }
  };

  const memberships = await readMemberships(ddb, table);
  const runs = deps.ipSets.map((ref) => new SetRun(ref, memberships.get(ref.name)));
  for (const run of runs) await readWithRetries(run);
  for (const run of runs) await takeConsoleRemovals(run);

  // Place the wanted addresses: keep each where it is, fill sets in config order,
  // and over capacity leave out the blocks that end soonest.
  let fresh = 0;
  for (const version of ['IPV4', 'IPV6'] as const) {
    const sets = runs.filter((r) => r.ref.version === version);
    const room = sets.map((r) => IP_SET_CAPACITY - r.othersCount());
    const heldByOthers = (cidr: string): boolean =>
      sets.some((r) => r.current.has(cidr) && !r.owned.has(cidr));
    const candidates = [...wanted.values()]
      .filter((w) => w.version === version && !heldByOthers(w.cidr))
      .sort(byPriority);
    const total = room.reduce((a, b) => a + Math.max(0, b), 0);
    for (const w of candidates.slice(total)) result.evicted.push(w.cidr);
    const kept = candidates.slice(0, total);
    const placed = new Set<string>();
    sets.forEach((run, i) => {
      for (const w of kept) {
        if ((room[i] ?? 0) <= 0) break;
        if (run.owned.has(w.cidr) && run.current.has(w.cidr)) {
          run.target.add(w.cidr);
          placed.add(w.cidr);
          room[i] = (room[i] ?? 0) - 1;
        }
      }
    });
    for (const w of kept) {
      if (placed.has(w.cidr)) continue;
      const i = room.findIndex((n) => n > 0);
      if (i < 0) break;
      sets[i]?.target.add(w.cidr);
      room[i] = (room[i] ?? 0) - 1;
      if (!sets.some((r) => r.current.has(w.cidr))) fresh++;
    }
  }
  if (result.evicted.length > 0) {
    log?.warn('IP sets full: blocks that end soonest left out', { evicted: result.evicted.length });
  }

  if (fresh > config.maxNewBlocksPerRun) {
    result.tripped = true;
    log?.warn('circuit breaker tripped: nothing written to WAF', {
      newAddresses: fresh,
      maxNewBlocksPerRun: config.maxNewBlocksPerRun,
    });
    // Only what was read is recorded (console removals, updates that did land).
    for (const run of runs) {
      if (run.dirty) await writeMembership(ddb, table, run.ref.name, run.record(nowMs, true));
    }
    return finish(runs.map((r) => setStatus(r)));
  }

  const apply = async (run: SetRun): Promise<void> => {
    for (let attempt = 0; ; attempt++) {
      if (attempt > 0) {
        await backoff(attempt - 1);
        try {
          await read(run);
        } catch (err) {
          if (!isRetryable(err) || attempt >= MAX_RETRIES) throw err;
          result.retries++;
          continue;
        }
        await takeConsoleRemovals(run);
      }
      const mine = run.mine();
      const toRemove = mine.filter((c) => !run.target.has(c));
      const toAdd = [...run.target]
        .filter((c) => !run.current.has(c))
        .sort((a, b) => byPriority(wanted.get(a)!, wanted.get(b)!));
      // Others may have added addresses since the plan: the soonest-ending of ours give way.
      const over = run.current.size - toRemove.length + toAdd.length - IP_SET_CAPACITY;
      for (const cidr of over > 0 ? toAdd.splice(toAdd.length - over, over) : []) {
        run.target.delete(cidr);
        result.evicted.push(cidr);
      }
      if (toRemove.length === 0 && toAdd.length === 0) {
        if (run.dirty) {
          await writeMembership(ddb, table, run.ref.name, run.record(nowMs, true));
        }
        return;
      }
      for (const c of toAdd) run.owned.add(c);
      for (const c of toRemove) run.removing.add(c);
      await writeMembership(ddb, table, run.ref.name, run.record(nowMs, false));
      const gone = new Set(toRemove);
      const addresses = [...run.current].filter(([c]) => !gone.has(c)).map(([, a]) => a);
      addresses.push(...toAdd);
      try {
        await waf.send(
          new UpdateIPSetCommand({
            Name: run.ref.name,
            Id: run.ref.id,
            Scope: run.ref.scope,
            Addresses: addresses,
            Description: run.description,
            LockToken: run.lockToken,
          }),
        );
      } catch (err) {
        if (!isRetryable(err) || attempt >= MAX_RETRIES) throw err;
        result.retries++;
        log?.info('IP set update to retry', {
          ipSet: run.ref.name,
          error: errorName(err),
          attempt,
        });
        continue;
      }
      result.updates++;
      for (const c of toRemove) {
        run.current.delete(c);
        run.owned.delete(c);
      }
      for (const c of toAdd) run.current.set(c, c);
      run.confirmed.clear();
      for (const c of run.mine()) run.confirmed.add(c);
      run.removing.clear();
      result.added.push(...toAdd);
      result.removed.push(...toRemove);
      await writeMembership(ddb, table, run.ref.name, run.record(nowMs, true));
      run.dirty = false;
      return;
    }
  };

  for (const run of runs) {
    try {
      await apply(run);
    } catch (err) {
      if (err instanceof ReconcileError) throw err;
      result.failedSets.push(run.ref.name);
      log?.warn('IP set not updated in this run', { ipSet: run.ref.name, error: errorName(err) });
    }
  }
  return finish(runs.map((r) => setStatus(r)));
}

function setStatus(run: SetRun): IpSetStatus {
  return {
    name: run.ref.name,
    version: run.ref.version,
    size: run.current.size,
    capacity: IP_SET_CAPACITY,
  };
}

/**
 * Reads the `EDGEBAN_IP_SETS` value: a JSON array of `{ name, id, version,
 * arn? }` in config order (the scope comes from `EDGEBAN_WAF_SCOPE`).
 * @throws ReconcileError naming the bad entry
 */
export function parseIpSetRefs(text: string, scope: Scope): IpSetRef[] {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    throw new ReconcileError(`IP sets must be a JSON array, got ${text.slice(0, 80)}`);
  }
  if (!Array.isArray(doc))
    throw new ReconcileError(`IP sets must be a JSON array, got ${text.slice(0, 80)}`);
  return doc.map((entry, i) => {
    const e = (typeof entry === 'object' && entry !== null ? entry : {}) as Record<string, unknown>;
    const { name, id, version, arn } = e;
    if (typeof name !== 'string' || name === '' || typeof id !== 'string' || id === '') {
      throw new ReconcileError(
        `IP sets[${i}] needs a name and an id, got ${JSON.stringify(entry)}`,
      );
    }
    if (version !== 'IPV4' && version !== 'IPV6') {
      throw new ReconcileError(
        `IP sets[${i}].version must be IPV4 or IPV6, got ${String(version)}`,
      );
    }
    if (arn !== undefined && typeof arn !== 'string') {
      throw new ReconcileError(`IP sets[${i}].arn must be a string, got ${String(arn)}`);
    }
    return arn === undefined ? { name, id, version, scope } : { name, id, version, scope, arn };
  });
}
