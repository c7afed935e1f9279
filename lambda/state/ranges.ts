/**
 * CloudFront's origin-facing ranges at runtime: fetched from AWS's
 * published `ip-ranges.json`, cached in memory for hours, and falling back
 * to the dated snapshot shipped with the code when the source can not be
 * read. An ALB behind CloudFront sees these addresses as its clients, so
 * they must never be blocked (DESIGN section 1, guarded addresses).
 */
import { loadCloudFrontSnapshot, parseIpRangesJson } from '../core/guard';

/** AWS's published address ranges. */
export const IP_RANGES_URL = 'https://ip-ranges.amazonaws.com/ip-ranges.json';

/** Where a set of ranges came from. */
export type RangesSource = 'published' | 'snapshot';

/** CloudFront origin-facing ranges and their origin. */
export interface CloudFrontRangeSet {
  /** Canonical CIDRs, sorted. */
  readonly ranges: readonly string[];
  readonly source: RangesSource;
  /** The document's `createDate` (published) or the snapshot's date. */
  readonly createDate: string;
}

/** The subset of `fetch` the fetcher uses (tests pass a mock). */
export type FetchLike = (
  url: string,
  init: { signal: AbortSignal },
) => Promise<{ ok: boolean; status: number; json(): Promise<unknown> }>;

/** Options of {@link CloudFrontRanges}. */
export interface CloudFrontRangesOptions {
  /**
   * The HTTP client.
   * @default - the global `fetch`
   */
  readonly fetch?: FetchLike;
  /** @default {@link IP_RANGES_URL} */
  readonly url?: string;
  /**
   * Give up on one fetch after this many milliseconds.
   * @default 3000
   */
  readonly timeoutMs?: number;
  /**
   * Keep published ranges this long before fetching again.
   * @default 6 hours
   */
  readonly ttlMs?: number;
  /**
   * After a failed fetch, wait this long before trying again (the cached or
   * shipped ranges are served meanwhile).
   * @default 5 minutes
   */
  readonly retryMs?: number;
  /**
   * Clock in epoch milliseconds.
   * @default - Date.now
   */
  readonly now?: () => number;
  /** Told about failed fetches. */
  readonly onError?: (err: unknown) => void;
}

/**
 * Serves CloudFront's origin-facing ranges with an in-memory cache.
 * Never rejects: a failed or malformed fetch keeps the last published
 * ranges, or the shipped snapshot when there are none.
 *
 * @example
 * const ranges = new CloudFrontRanges();
 * const guard = new Guard({ allowlist, cloudfrontRanges: (await ranges.get()).ranges });
 */
export class CloudFrontRanges {
  private readonly fetchFn: FetchLike;
  private readonly url: string;
  private readonly timeoutMs: number;
  private readonly ttlMs: number;
  private readonly retryMs: number;
  private readonly now: () => number;
  private readonly onError: (err: unknown) => void;
  private current: CloudFrontRangeSet | null = null;
  /** When `current` must be refreshed (epoch ms). */
  private refreshAt = 0;
  private inflight: Promise<CloudFrontRangeSet> | null = null;
  /** Fetches attempted, for tests and metrics. */
  fetches = 0;

  constructor(options: CloudFrontRangesOptions = {}) {
    this.fetchFn = options.fetch ?? ((url, init) => fetch(url, init));
    this.url = options.url ?? IP_RANGES_URL;
    this.timeoutMs = options.timeoutMs ?? 3000;
    this.ttlMs = options.ttlMs ?? 6 * 3600_000;
    this.retryMs = options.retryMs ?? 5 * 60_000;
    this.now = options.now ?? Date.now;
    this.onError = options.onError ?? (() => {});
  }

  /** The ranges to guard now; fetches when the cache is due (one fetch at a time). */
  get(): Promise<CloudFrontRangeSet> {
    if (this.current !== null && this.now() < this.refreshAt) return Promise.resolve(this.current);
    this.inflight ??= this.refresh().finally(() => {
      this.inflight = null;
    });
    return this.inflight;
  }

  private async refresh(): Promise<CloudFrontRangeSet> {
    this.fetches++;
    const controller = new AbortController();
    let timer: NodeJS.Timeout | undefined;
    // The race also bounds a source that ignores the abort signal or stalls in the body.
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        controller.abort();
        reject(new Error(`GET ${this.url} took over ${this.timeoutMs} ms`));
      }, this.timeoutMs);
    });
    try {
      const work = (async () => {
        const res = await this.fetchFn(this.url, { signal: controller.signal });
        if (!res.ok) throw new Error(`GET ${this.url} answered HTTP ${res.status}`);
        return res.json();
      })();
      // A late failure after the timeout has nobody left to tell.
      work.catch(() => {});
      const doc = await Promise.race([work, timeout]);
      const ranges = parseIpRangesJson(doc);
      const createDate = String((doc as Record<string, unknown>).createDate ?? '');
      this.current = { ranges, source: 'published', createDate };
      this.refreshAt = this.now() + this.ttlMs;
    } catch (err) {
      this.onError(err);
      if (this.current === null) {
        const snap = loadCloudFrontSnapshot();
        this.current = { ranges: snap.ranges, source: 'snapshot', createDate: snap.createDate };
      }
      this.refreshAt = this.now() + this.retryMs;
    } finally {
      clearTimeout(timer);
    }
    return this.current;
  }
}
