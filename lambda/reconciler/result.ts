/** What a reconcile reports, and the sinks it reports to. */
import type { Mode } from '../core/types';

/** Structured log lines; a Powertools `Logger` fits. */
export interface ReconcileLogger {
  info(message: string, ...attributes: Record<string, unknown>[]): void;
  warn(message: string, ...attributes: Record<string, unknown>[]): void;
}

/** Metric sink (the handler maps it to Powertools EMF). Every value is a count. */
export interface ReconcileMetrics {
  add(name: string, value: number, dimensions?: Readonly<Record<string, string>>): void;
}

/** What one run did. Addresses are canonical CIDRs as written to WAF. */
export interface ReconcileResult {
  readonly mode: Mode;
  /** Another reconcile held the lease: this one did nothing. */
  readonly busy?: boolean;
  /** Distinct addresses the active blocks ask for, after the write-time checks. */
  readonly desired: number;
  /** Addresses added by successful updates (re-adds after a reset included). */
  readonly added: string[];
  /** Addresses removed by successful updates. */
  readonly removed: string[];
  /** Successful UpdateIPSet calls. */
  readonly updates: number;
  /** Set reads and updates repeated after a lock conflict, a stale read or a transient error. */
  readonly retries: number;
  /** The circuit breaker tripped: nothing was written to WAF. */
  readonly tripped: boolean;
  /** Addresses left out of WAF for capacity (their blocks end soonest). */
  readonly evicted: string[];
  /** Keys found removed from an IP set by someone else, recorded as unblocks. */
  readonly consoleUnblocks: string[];
  /** Keys found lost in a reset, put back, with a `reset` event (not an unblock). */
  readonly resets: string[];
  /** Keys of the blocks swept because they ended (one entry per block). */
  readonly expired: string[];
  /** Active keys that failed the write-time checks, with the reason. */
  readonly refused: { readonly key: string; readonly reason: string }[];
  /** Sets that could not be brought up to date in this run (errors, retries exhausted). */
  readonly failedSets: string[];
  /** The run reached its deadline with these sets left: the next run continues. */
  readonly deferredSets: string[];
  /** Reads answering a LockToken the pipeline's own writes had superseded. */
  readonly staleReads: number;
  /** WAF calls answered with throttling (each one waited, none failed the run). */
  readonly throttled: number;
  /** GetIPSet and UpdateIPSet calls sent. */
  readonly wafCalls: number;
  /** A newer reconcile's fencing token refused a state write: this run stopped. */
  readonly fenced: boolean;
  /** The run stopped at its deadline with work left (`deferredSets`). */
  readonly partial: boolean;
}

export type MutableResult = { -readonly [K in keyof ReconcileResult]: ReconcileResult[K] };

export function emptyResult(mode: Mode): MutableResult {
  return {
    mode,
    desired: 0,
    added: [],
    removed: [],
    updates: 0,
    retries: 0,
    tripped: false,
    evicted: [],
    consoleUnblocks: [],
    resets: [],
    expired: [],
    refused: [],
    failedSets: [],
    deferredSets: [],
    staleReads: 0,
    throttled: 0,
    wafCalls: 0,
    fenced: false,
    partial: false,
  };
}
