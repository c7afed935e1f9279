/**
 * WAFv2's API request quotas, played on the emulator's clock: one token
 * bucket per account, Region and action name.
 *
 * AWS documents one request per second, per account and Region, for each
 * individual Create, Put or Update action, shared by every caller in the
 * account (Security Automations for AWS WAF, "Quotas":
 * https://docs.aws.amazon.com/solutions/latest/security-automations-for-aws-waf/quotas.html;
 * aws-waf-security-automations issue #152 shows the error a person then
 * gets: `ThrottlingException: Rate exceeded`). AWS documents no number for
 * Get and List: 5 per second is our assumption. The bucket's size is not
 * documented either: by default it holds one second of the rate, so no
 * second ever sees more calls than the rate.
 */

/** Requests per second of each kind of action. Absent fields take the defaults. */
export interface WafQuotas {
  /**
   * Create*, Put* and Update* actions, each name its own bucket.
   * @default 1
   */
  readonly writesPerSecond?: number;
  /**
   * Get* and List* actions, each name its own bucket.
   * @default 5
   */
  readonly readsPerSecond?: number;
  /**
   * Seconds of the rate a bucket holds when full (its burst).
   * @default 1
   */
  readonly burstSeconds?: number;
  /** Per action name, overriding the kind's rate, e.g. `{ UpdateIPSet: 2 }`. */
  readonly perAction?: Readonly<Record<string, number>>;
}

/** AWS's documented write quota and our read assumption. */
export const DEFAULT_QUOTAS: Required<Omit<WafQuotas, 'perAction'>> = {
  writesPerSecond: 1,
  readsPerSecond: 5,
  burstSeconds: 1,
};

/** Misuse of the quota settings. */
export class QuotaError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'QuotaError';
  }
}

/** Checks a quota setting; throws {@link QuotaError} naming the bad field. */
export function validateQuotas(quotas: WafQuotas): void {
  const positive = (name: string, v: number | undefined): void => {
    if (v !== undefined && !(Number.isFinite(v) && v > 0)) {
      throw new QuotaError(`${name} must be a number > 0, got ${v}`);
    }
  };
  positive('writesPerSecond', quotas.writesPerSecond);
  positive('readsPerSecond', quotas.readsPerSecond);
  positive('burstSeconds', quotas.burstSeconds);
  for (const [action, rate] of Object.entries(quotas.perAction ?? {})) {
    positive(`perAction.${action}`, rate);
  }
}

interface Bucket {
  tokens: number;
  at: number;
}

/**
 * Token buckets keyed by Region and action. A request takes one token; a
 * bucket refills at its rate up to its size. A refused request takes none.
 */
export class QuotaBuckets {
  private readonly buckets = new Map<string, Bucket>();

  constructor(private readonly quotas: WafQuotas) {
    validateQuotas(quotas);
  }

  /** The rate that applies to an action, or null when it has no quota. */
  rate(action: string): number | null {
    const own = this.quotas.perAction?.[action];
    if (own !== undefined) return own;
    if (/^(Create|Put|Update)/.test(action)) {
      return this.quotas.writesPerSecond ?? DEFAULT_QUOTAS.writesPerSecond;
    }
    if (/^(Get|List)/.test(action)) {
      return this.quotas.readsPerSecond ?? DEFAULT_QUOTAS.readsPerSecond;
    }
    return null;
  }

  /**
   * Takes a token for one request at `nowMs`.
   * @returns false when the bucket is empty: the request is throttled
   */
  take(region: string, action: string, nowMs: number): boolean {
    const rate = this.rate(action);
    if (rate === null) return true;
    const size = Math.max(1, rate * (this.quotas.burstSeconds ?? DEFAULT_QUOTAS.burstSeconds));
    const id = `${region}|${action}`;
    const bucket = this.buckets.get(id) ?? { tokens: size, at: nowMs };
    // A clock that stands still refills nothing; one that jumps refills up to the size.
    const elapsed = Math.max(0, nowMs - bucket.at) / 1000;
    bucket.tokens = Math.min(size, bucket.tokens + elapsed * rate);
    bucket.at = Math.max(bucket.at, nowMs);
    this.buckets.set(id, bucket);
    // Within a float's error of a whole token counts as one.
    if (bucket.tokens < 1 - 1e-9) return false;
    bucket.tokens -= 1;
    return true;
  }

  /** The settings in force. */
  settings(): WafQuotas {
    return { ...DEFAULT_QUOTAS, ...this.quotas };
  }
}
