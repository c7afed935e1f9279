/**
 * One IP set during a reconcile: what it holds, what of it is the
 * pipeline's, and the record the run will write back.
 */
import type { Membership } from './membership';
import { SUPERSEDED_TOKENS } from './membership';
import { supersede } from './removals';
import type { IpSetRef, SetRead } from './waf-writer';

/** How long another writer's pending adds stay the pipeline's though not seen in the set. */
export const PENDING_GRACE_MS = 120_000;

export class SetRun {
  /** Latest fresh read: canonical CIDR → address as stored. */
  current = new Map<string, string>();
  lockToken = '';
  description: string | undefined;
  /** A fresh read happened in this run. */
  fresh = false;
  /** Addresses we may have put there: confirmed, or sent by an update whose fate is unknown. */
  readonly owned: Set<string>;
  /** Addresses a successful update confirmed, minus those found removed by someone else. */
  readonly confirmed: Set<string>;
  /** Addresses an update took out, or may have. */
  readonly removing: Set<string>;
  /** Our addresses this set should hold after the run. */
  readonly target = new Set<string>();
  /** Addresses a reset took out that the run puts back. */
  readonly readd = new Set<string>();
  /** Another writer's pending adds, still the pipeline's for a while (it may yet land them). */
  private readonly graceAdds: Set<string>;
  private readonly pendingAt: number;
  superseded: string[];
  lastToken: string | null;
  readAt: number;
  resetAt: number | null;
  /** The stored record differs from what the run knows. */
  dirty: boolean;

  constructor(
    readonly ref: IpSetRef,
    stored: Membership | undefined,
    nowMs: number,
  ) {
    this.confirmed = new Set(stored?.confirmed ?? []);
    this.owned = new Set([...this.confirmed, ...(stored?.pendingAdd ?? [])]);
    this.removing = new Set(stored?.pendingRemove ?? []);
    this.pendingAt = stored?.pendingAt ?? stored?.at ?? 0;
    this.graceAdds = new Set(
      this.pendingAt + PENDING_GRACE_MS > nowMs ? (stored?.pendingAdd ?? []) : [],
    );
    this.superseded = [...(stored?.superseded ?? [])];
    this.lastToken = stored?.lastToken ?? null;
    this.readAt = stored?.readAt ?? stored?.at ?? 0;
    this.resetAt = stored?.resetAt ?? null;
    this.dirty = (stored?.pendingAdd.length ?? 0) > 0 || (stored?.pendingRemove.length ?? 0) > 0;
  }

  get version(): IpSetRef['version'] {
    return this.ref.version;
  }

  /** Takes a fresh read in. */
  take(read: SetRead, atMs: number): void {
    this.current = read.addresses;
    this.lockToken = read.lockToken;
    this.description = read.description;
    this.fresh = true;
    this.readAt = atMs;
  }

  /** Our addresses in the set now. */
  mine(): string[] {
    return [...this.owned].filter((c) => this.current.has(c));
  }

  /** Confirmed addresses missing from the set that no update of ours took out. */
  missing(): string[] {
    return [...this.confirmed].filter((c) => !this.current.has(c) && !this.removing.has(c));
  }

  forget(cidr: string): void {
    this.confirmed.delete(cidr);
    this.owned.delete(cidr);
    this.target.delete(cidr);
    this.graceAdds.delete(cidr);
    this.dirty = true;
  }

  /** A successful update that replaced `sent` and returned `next`. */
  updated(sent: string, next: string, added: readonly string[], removed: readonly string[]): void {
    for (const c of removed) {
      this.current.delete(c);
      this.owned.delete(c);
    }
    for (const c of added) {
      this.current.set(c, c);
      this.graceAdds.delete(c);
    }
    this.confirmed.clear();
    for (const c of this.mine()) this.confirmed.add(c);
    this.removing.clear();
    this.superseded = supersede(this.superseded, this.lastToken, sent, SUPERSEDED_TOKENS);
    this.lastToken = next;
    this.lockToken = next;
    this.readd.clear();
    this.resetAt = null;
    this.dirty = true;
  }

  /** The membership record: pending while an update is in flight, settled after. */
  record(at: number, settled: boolean): Membership {
    const common = {
      at,
      superseded: this.superseded,
      lastToken: this.lastToken,
      readAt: this.readAt,
      resetAt: this.resetAt,
    };
    if (settled) {
      const stillPending = [...this.graceAdds].filter(
        (c) => this.owned.has(c) && !this.current.has(c),
      );
      // Re-adds not written yet stay confirmed: the next run sees them missing again.
      return {
        ...common,
        confirmed: [...new Set([...this.mine(), ...this.readd])],
        pendingAdd: stillPending,
        pendingRemove: [],
        pendingAt: this.pendingAt,
      };
    }
    return {
      ...common,
      confirmed: [...this.confirmed],
      pendingAdd: [...this.owned].filter((c) => !this.confirmed.has(c)),
      pendingRemove: [...this.removing],
      pendingAt: at,
    };
  }
}
