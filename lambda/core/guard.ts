/**
 * The guarded-address predicate of DESIGN section 1, shared by replay,
 * ingest, the reconciler and the CLI `block` command: addresses that
 * must never be blocked (special-purpose ranges, the configured
 * allowlist, CloudFront's origin-facing ranges).
 */
import snapshot from './data/cloudfront-origin-facing.json';
import { cidrBounds, compareKeys, ipv4ToNumber, ipv6ToBigInt, parseCidr } from './ip';

/** Base error of this module. */
export class GuardError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'GuardError';
  }
}

/** The `service` value of CloudFront's origin-facing entries in AWS `ip-ranges.json`. */
export const CLOUDFRONT_ORIGIN_FACING = 'CLOUDFRONT_ORIGIN_FACING';

/**
 * Built-in guarded ranges (DESIGN section 1), with the label shown in
 * reasons. Documentation ranges (192.0.2.0/24, 198.51.100.0/24,
 * 203.0.113.0/24, 2001:db8::/32) are deliberately absent.
 */
export const BUILTIN_GUARDED: readonly { readonly cidr: string; readonly label: string }[] = [
  { cidr: '0.0.0.0/8', label: 'this network' },
  { cidr: '10.0.0.0/8', label: 'private' },
  { cidr: '100.64.0.0/10', label: 'shared address space' },
  { cidr: '127.0.0.0/8', label: 'loopback' },
  { cidr: '169.254.0.0/16', label: 'link-local' },
  { cidr: '172.16.0.0/12', label: 'private' },
  { cidr: '192.168.0.0/16', label: 'private' },
  { cidr: '224.0.0.0/4', label: 'multicast' },
  { cidr: '240.0.0.0/4', label: 'reserved' },
  { cidr: '::/128', label: 'unspecified' },
  { cidr: '::1/128', label: 'loopback' },
  { cidr: 'fc00::/7', label: 'unique local' },
  { cidr: 'fe80::/10', label: 'link-local' },
  { cidr: 'ff00::/8', label: 'multicast' },
];

/** What a {@link Guard} is built from. */
export interface GuardProps {
  /** The config's `allowlist` (canonical CIDRs or addresses). */
  readonly allowlist: readonly string[];
  /** CloudFront origin-facing ranges, e.g. {@link loadCloudFrontSnapshot}`().ranges`. */
  readonly cloudfrontRanges: readonly string[];
}

interface Table<T extends number | bigint> {
  starts: T[];
  ends: T[];
  reasons: string[];
}

/**
 * Index of the last range whose start is <= x, or -1. One copy per number
 * kind keeps each monomorphic: IPv4 lookups sit on the ingest hot path.
 */
function lastStartAtMost4(starts: readonly number[], x: number): number {
  let lo = 0;
  let hi = starts.length - 1;
  let found = -1;
  while (lo <= hi) {
    const mid = (lo + hi) >>> 1;
    if ((starts[mid] as number) <= x) {
      found = mid;
      lo = mid + 1;
    } else {
      hi = mid - 1;
    }
  }
  return found;
}

function lastStartAtMost6(starts: readonly bigint[], x: bigint): number {
  let lo = 0;
  let hi = starts.length - 1;
  let found = -1;
  while (lo <= hi) {
    const mid = (lo + hi) >>> 1;
    if ((starts[mid] as bigint) <= x) {
      found = mid;
      lo = mid + 1;
    } else {
      hi = mid - 1;
    }
  }
  return found;
}

/** Sorted, disjoint ranges; a range nested in another keeps the outer one's reason. */
function buildTable<T extends number | bigint>(
  ranges: { start: T; end: T; reason: string }[],
): Table<T> {
  ranges.sort((a, b) =>
    a.start < b.start ? -1 : a.start > b.start ? 1 : a.end > b.end ? -1 : a.end < b.end ? 1 : 0,
  );
  const table: Table<T> = { starts: [], ends: [], reasons: [] };
  for (const r of ranges) {
    const last = table.ends.length - 1;
    // CIDRs nest or are disjoint, and outer ranges sort first: a range that
    // starts inside the last kept one lies wholly inside it.
    if (last >= 0 && r.start <= (table.ends[last] as T)) continue;
    table.starts.push(r.start);
    table.ends.push(r.end);
    table.reasons.push(r.reason);
  }
  return table;
}

/** Reason of the lowest range that shares an address with [start, end], or null. */
function overlapIn<T extends number | bigint>(table: Table<T>, start: T, end: T): string | null {
  // Ends are sorted like starts (the ranges are disjoint): find the first end >= start.
  let lo = 0;
  let hi = table.ends.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if ((table.ends[mid] as T) < start) lo = mid + 1;
    else hi = mid;
  }
  if (lo === table.ends.length || (table.starts[lo] as T) > end) return null;
  return table.reasons[lo] ?? null;
}

/**
 * Answers whether an address or key is guarded, and why. Lookups are a
 * binary search over sorted disjoint ranges, so thousands of allowlist
 * entries cost a dozen comparisons; IPv4 stays on plain numbers.
 */
export class Guard {
  private readonly v4: Table<number>;
  private readonly v6: Table<bigint>;

  constructor(props: GuardProps) {
    const v4: { start: number; end: number; reason: string }[] = [];
    const v6: { start: bigint; end: bigint; reason: string }[] = [];
    const add = (text: string, reason: (cidr: string) => string, what: string): void => {
      const c = parseCidr(text);
      const b = cidrBounds(text);
      if (c === null || b === null) throw new GuardError(`${what} must be a CIDR, got ${text}`);
      if (b.version === 4) v4.push({ start: b.start, end: b.end, reason: reason(c.cidr) });
      else v6.push({ start: b.start, end: b.end, reason: reason(c.cidr) });
    };
    for (const { cidr, label } of BUILTIN_GUARDED) add(cidr, (c) => `${c} (${label})`, 'range');
    for (const a of props.allowlist) add(a, (c) => `allowlist ${c}`, 'allowlist entry');
    for (const r of props.cloudfrontRanges) {
      add(r, (c) => `CloudFront origin-facing ${c}`, 'CloudFront range');
    }
    this.v4 = buildTable(v4);
    this.v6 = buildTable(v6);
  }

  /**
   * Whether a canonical bare address is guarded. On the hot path: IPv4 is
   * parsed to a number without allocating. Text that is not an address
   * counts as guarded, so nothing unexplained can reach a decision.
   */
  isGuarded(ip: string): boolean {
    if (ip.indexOf(':') < 0) {
      const n = ipv4ToNumber(ip);
      if (n < 0) return true;
      const i = lastStartAtMost4(this.v4.starts, n);
      return i >= 0 && (this.v4.ends[i] as number) >= n;
    }
    const v = ipv6ToBigInt(ip);
    if (v === null) return true;
    const i = lastStartAtMost6(this.v6.starts, v);
    return i >= 0 && (this.v6.ends[i] as bigint) >= v;
  }

  /**
   * Why an address, or any address of a CIDR, is guarded: a short reason
   * naming the range (`10.0.0.0/8 (private)`, `allowlist 203.0.113.5/32`,
   * `CloudFront origin-facing 13.32.0.0/15`), or null when nothing is.
   * @throws GuardError when `ipOrCidr` is neither an address nor a CIDR
   */
  guardedBy(ipOrCidr: string): string | null {
    const b = cidrBounds(ipOrCidr);
    if (b === null) throw new GuardError(`not an IP address or CIDR: ${ipOrCidr}`);
    return b.version === 4
      ? overlapIn(this.v4, b.start, b.end)
      : overlapIn(this.v6, b.start, b.end);
  }

  /**
   * For a masked counting key (bare or CIDR): the reason of a guarded
   * range it overlaps (contains, or is contained in), or null. Such a key
   * gets no decision.
   */
  overlapsGuarded(key: string): string | null {
    return this.guardedBy(key);
  }
}

/**
 * CloudFront origin-facing prefixes (IPv4 and IPv6) of an AWS
 * `ip-ranges.json` document, canonical, deduplicated and sorted.
 * @throws GuardError when the document does not have the published shape,
 *   holds an invalid prefix, or has no origin-facing entry at all (a
 *   refresher should then keep what it had)
 */
export function parseIpRangesJson(doc: unknown): string[] {
  if (typeof doc !== 'object' || doc === null) {
    throw new GuardError('ip-ranges document is not a JSON object');
  }
  const { prefixes, ipv6_prefixes: ipv6Prefixes } = doc as Record<string, unknown>;
  if (!Array.isArray(prefixes)) throw new GuardError('ip-ranges document has no prefixes list');
  if (ipv6Prefixes !== undefined && !Array.isArray(ipv6Prefixes)) {
    throw new GuardError('ip-ranges document has an ipv6_prefixes that is not a list');
  }
  const found = new Set<string>();
  const collect = (list: readonly unknown[], field: string, version: 4 | 6): void => {
    for (const entry of list) {
      if (typeof entry !== 'object' || entry === null) continue;
      const e = entry as Record<string, unknown>;
      if (e.service !== CLOUDFRONT_ORIGIN_FACING) continue;
      const text = e[field];
      const c = typeof text === 'string' ? parseCidr(text) : null;
      if (c === null || c.version !== version) {
        throw new GuardError(`ip-ranges ${field} is not an IPv${version} CIDR: ${String(text)}`);
      }
      found.add(c.cidr);
    }
  };
  collect(prefixes, 'ip_prefix', 4);
  collect(ipv6Prefixes ?? [], 'ipv6_prefix', 6);
  if (found.size === 0) {
    throw new GuardError(`ip-ranges document has no ${CLOUDFRONT_ORIGIN_FACING} prefixes`);
  }
  return [...found].sort(compareKeys);
}

let cached: { createDate: string; ranges: string[] } | null = null;

/**
 * The bundled dated snapshot of CloudFront's origin-facing ranges
 * (`data/cloudfront-origin-facing.json`, see its `source`), canonical and
 * sorted. A runtime refresher may replace it with {@link parseIpRangesJson}.
 */
export function loadCloudFrontSnapshot(): { createDate: string; ranges: string[] } {
  if (cached === null) {
    const ranges = new Set<string>();
    for (const text of [...snapshot.prefixes, ...snapshot.ipv6Prefixes]) {
      const c = parseCidr(text);
      if (c === null)
        throw new GuardError(`bundled CloudFront snapshot holds an invalid CIDR: ${text}`);
      ranges.add(c.cidr);
    }
    cached = { createDate: snapshot.createDate, ranges: [...ranges].sort(compareKeys) };
  }
  return { createDate: cached.createDate, ranges: [...cached.ranges] };
}

/** A {@link Guard} over the built-in ranges, `allowlist` and the bundled CloudFront snapshot. */
export function guardFor(allowlist: readonly string[]): Guard {
  return new Guard({ allowlist, cloudfrontRanges: loadCloudFrontSnapshot().ranges });
}
