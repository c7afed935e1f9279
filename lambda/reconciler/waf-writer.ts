/**
 * The reconciler's WAF side: GetIPSet and UpdateIPSet paced under the
 * account's quotas, with throttling as a delay and the run's deadline as a
 * clean stop.
 *
 * AWS WAF allows one request per second, per account and Region, for each
 * individual Create, Put or Update action, and people and other tools in
 * the account share that budget (Security Automations for AWS WAF,
 * "Quotas": https://docs.aws.amazon.com/solutions/latest/security-automations-for-aws-waf/quotas.html;
 * aws-waf-security-automations issue #152: "ThrottlingException: Rate
 * exceeded" for people while a tool updates IP sets). So:
 * - UpdateIPSet calls, whatever their outcome, are at least
 *   `writeIntervalMs` (2 s) apart across all sets and across runs: half the
 *   budget stays free;
 * - GetIPSet calls are `readIntervalMs` (400 ms) apart: half of the 5 a
 *   second we assume for reads (AWS documents no number);
 * - a throttled call waits and is sent again: it never counts as a failed
 *   attempt, only the deadline ends the waiting.
 */
import {
  GetIPSetCommand,
  type IPAddressVersion,
  UpdateIPSetCommand,
  type WAFV2Client,
} from '@aws-sdk/client-wafv2';
import { parseCidr } from '../core/ip';
import type { Scope } from '../core/types';

/** One IP set the reconciler fills. */
export interface IpSetRef {
  readonly name: string;
  readonly id: string;
  readonly arn?: string;
  readonly version: IPAddressVersion;
  readonly scope: Scope;
}

/** How far apart the reconciler spaces its WAF calls. */
export interface Pacing {
  /** @default 400 */
  readonly readIntervalMs?: number;
  /** @default 2000 */
  readonly writeIntervalMs?: number;
}

export const READ_INTERVAL_MS = 400;
export const WRITE_INTERVAL_MS = 2_000;
/** Throttled answers one call may wait out before the run leaves it for the next. */
const MAX_THROTTLE_WAITS = 30;

/** Base error of the reconciler. */
export class ReconcileError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ReconcileError';
  }
}

/** The run reached its deadline: what is left waits for the next run. */
export class DeadlineReached extends ReconcileError {
  constructor() {
    super('the run reached its deadline');
    this.name = 'DeadlineReached';
  }
}

const THROTTLED = new Set([
  'ThrottlingException',
  'ThrottledException',
  'TooManyRequestsException',
  'RequestLimitExceeded',
]);
const TRANSIENT_NAMES = new Set([
  'WAFUnavailableEntityException',
  'WAFInternalErrorException',
  'TimeoutError',
]);
const TRANSIENT_CODES = new Set(['ECONNRESET', 'ECONNREFUSED', 'ETIMEDOUT', 'EPIPE']);

interface SdkError {
  name?: unknown;
  code?: unknown;
  $metadata?: { httpStatusCode?: number };
}

/** Throttling of any spelling AWS uses. */
export function isThrottled(err: unknown): boolean {
  if (typeof err !== 'object' || err === null) return false;
  const e = err as SdkError;
  return (
    (typeof e.name === 'string' && THROTTLED.has(e.name)) || e.$metadata?.httpStatusCode === 429
  );
}

/** A lock conflict: someone wrote the set since it was read. */
export function isLockConflict(err: unknown): boolean {
  return (err as SdkError | null)?.name === 'WAFOptimisticLockException';
}

/** Worth another attempt: a set not usable yet, a 5xx, a dropped connection. */
export function isTransient(err: unknown): boolean {
  if (typeof err !== 'object' || err === null) return false;
  const e = err as SdkError;
  if (typeof e.name === 'string' && TRANSIENT_NAMES.has(e.name)) return true;
  if (typeof e.code === 'string' && TRANSIENT_CODES.has(e.code)) return true;
  return (e.$metadata?.httpStatusCode ?? 0) >= 500;
}

export function errorName(err: unknown): string {
  return err instanceof Error ? err.name : String(err);
}

/** A set as one GetIPSet answered. */
export interface SetRead {
  /** Canonical CIDR → the address as stored (others' spelling is kept). */
  readonly addresses: Map<string, string>;
  readonly lockToken: string;
  readonly description: string | undefined;
}

/** What the writer counts for the run's result and metrics. */
export interface WafTally {
  throttled: number;
  reads: number;
  writes: number;
}

/** Options of {@link WafWriter}. */
export interface WafWriterOptions {
  readonly waf: WAFV2Client;
  /** The pipeline clock, epoch ms: sleeping moves it. */
  readonly now: () => number;
  readonly sleep: (ms: number) => Promise<void>;
  readonly random: () => number;
  /** Epoch ms on `now`: no call starts after it. */
  readonly deadline: number;
  readonly pacing?: Pacing;
  /** Epoch ms of the last UpdateIPSet any run sent (from the lease). */
  readonly lastWriteAt: number;
}

/** Paced GetIPSet and UpdateIPSet for one run. */
export class WafWriter {
  readonly tally: WafTally = { throttled: 0, reads: 0, writes: 0 };
  private nextRead: number;
  private nextWrite: number;
  private readonly readInterval: number;
  private readonly writeInterval: number;
  /** Epoch ms of this run's last UpdateIPSet, if it sent one. */
  lastWriteAt: number | undefined;

  constructor(private readonly o: WafWriterOptions) {
    this.readInterval = o.pacing?.readIntervalMs ?? READ_INTERVAL_MS;
    this.writeInterval = o.pacing?.writeIntervalMs ?? WRITE_INTERVAL_MS;
    this.nextRead = o.now();
    this.nextWrite = o.lastWriteAt > 0 ? o.lastWriteAt + this.writeInterval : o.now();
  }

  /** Reads a set (once, plus waits for throttling). @throws DeadlineReached */
  async read(ref: IpSetRef): Promise<SetRead> {
    const out = await this.paced('read', () =>
      this.o.waf.send(new GetIPSetCommand({ Name: ref.name, Id: ref.id, Scope: ref.scope })),
    );
    this.tally.reads++;
    const set = out.IPSet;
    if (set === undefined || out.LockToken === undefined) {
      throw new ReconcileError(`GetIPSet of ${ref.name} returned no IP set`);
    }
    if (set.IPAddressVersion !== ref.version) {
      throw new ReconcileError(
        `IP set ${ref.name} holds ${set.IPAddressVersion} addresses, configured as ${ref.version}`,
      );
    }
    const addresses = new Map<string, string>();
    for (const address of set.Addresses ?? []) {
      addresses.set(parseCidr(address)?.cidr ?? address, address);
    }
    return { addresses, lockToken: out.LockToken, description: set.Description };
  }

  /**
   * Sends one UpdateIPSet (plus waits for throttling).
   * @returns the next LockToken
   * @throws DeadlineReached, or the service's error (a lock conflict, ...)
   */
  async update(
    ref: IpSetRef,
    addresses: string[],
    description: string | undefined,
    lockToken: string,
  ): Promise<string> {
    const out = await this.paced('write', () =>
      this.o.waf.send(
        new UpdateIPSetCommand({
          Name: ref.name,
          Id: ref.id,
          Scope: ref.scope,
          Addresses: addresses,
          Description: description,
          LockToken: lockToken,
        }),
      ),
    );
    this.tally.writes++;
    return out.NextLockToken ?? '';
  }

  /** Waits `ms` (a backoff), unless that passes the deadline. @throws DeadlineReached */
  async wait(ms: number): Promise<void> {
    if (this.o.now() + ms > this.o.deadline) throw new DeadlineReached();
    await this.o.sleep(ms);
  }

  /** Full-jitter backoff of the n-th retry: up to min(cap, base x 2^n). */
  backoff(attempt: number, baseMs = 250, capMs = 4_000): number {
    return Math.floor(this.o.random() * Math.min(capMs, baseMs * 2 ** attempt));
  }

  private async paced<T>(kind: 'read' | 'write', call: () => Promise<T>): Promise<T> {
    const interval = kind === 'read' ? this.readInterval : this.writeInterval;
    for (let waits = 0; ; waits++) {
      const due = kind === 'read' ? this.nextRead : this.nextWrite;
      const now = this.o.now();
      if (Math.max(now, due) > this.o.deadline) throw new DeadlineReached();
      if (due > now) await this.o.sleep(due - now);
      const sentAt = this.o.now();
      // Every call sent counts against the quota, whatever its answer.
      if (kind === 'read') this.nextRead = sentAt + interval;
      else {
        this.nextWrite = sentAt + interval;
        this.lastWriteAt = sentAt;
      }
      try {
        return await call();
      } catch (err) {
        if (!isThrottled(err)) throw err;
        this.tally.throttled++;
        if (waits >= MAX_THROTTLE_WAITS) throw new DeadlineReached();
        // Someone else is using the budget: wait a whole interval and a jitter more.
        const extra = interval + this.backoff(waits, interval, 8 * interval);
        if (kind === 'read') this.nextRead = sentAt + extra;
        else this.nextWrite = sentAt + extra;
      }
    }
  }
}
