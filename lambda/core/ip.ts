/**
 * Client addresses and counting keys. Pure code: validation and canonical
 * text (IPv4 dotted quad, IPv6 per RFC 5952), masking to rule prefixes,
 * CIDR parsing and the numeric sort order of DESIGN section 4.
 *
 * IPv4 paths work on plain numbers (unsigned 32-bit); IPv6 goes through
 * eight 16-bit groups and, where ranges are compared, a BigInt.
 */

/** Base error of this module (invalid input where a canonical value was promised). */
export class IpError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'IpError';
  }
}

/** Longest textual IPv6 address: six groups plus an embedded dotted quad. */
const MAX_TEXT = 45;

/**
 * Bounded caches for the hot paths. Access logs repeat the same clients
 * line after line: returning one string instance per address skips the
 * decode and lets V8 reuse the string's hash in the callers' Maps. A full
 * cache is simply cleared.
 */
const CACHE_LIMIT = 1 << 16;
const V4_TEXT = new Map<number, string>();
const V6_TEXT = new Map<string, string | null>();
const MASKED: Map<string, string>[] = [];

/** A module-level cache of another module (the parsers' memos), emptied with these. */
export interface AddressCache {
  clear(): void;
  readonly size: number;
}

const OTHERS: AddressCache[] = [];

/** Registers a module-level cache of addresses for {@link resetIpCaches}. */
export function registerAddressCache(cache: AddressCache): void {
  OTHERS.push(cache);
}

/**
 * Empties every address cache (these and the registered ones), so that a
 * benchmark's timed run starts as a fresh process would. Results never
 * depend on them.
 */
export function resetIpCaches(): void {
  V4_TEXT.clear();
  V6_TEXT.clear();
  MASKED.length = 0;
  for (const cache of OTHERS) cache.clear();
}

/** Entries held by every address cache (for tests and the bench). */
export function ipCacheEntries(): number {
  const own = V4_TEXT.size + V6_TEXT.size + MASKED.reduce((n, m) => n + (m?.size ?? 0), 0);
  return OTHERS.reduce((n, c) => n + c.size, own);
}

function remember<K, V>(cache: Map<K, V>, key: K, value: V): V {
  if (cache.size >= CACHE_LIMIT) cache.clear();
  cache.set(key, value);
  return value;
}

// Scratch groups so the hot paths parse without allocating.
const SCRATCH = new Uint16Array(8);
const SCRATCH_B = new Uint16Array(8);

function hexValue(c: number): number {
  if (c >= 48 && c <= 57) return c - 48;
  if (c >= 97 && c <= 102) return c - 87;
  if (c >= 65 && c <= 70) return c - 55;
  return -1;
}

/**
 * Strict dotted quad in `s[start, end)` → unsigned 32-bit value, or -1.
 * Rejects empty octets, octets over 255, leading zeros (`010` is octal to
 * some parsers and decimal to others), signs and spaces.
 */
function parseV4(s: string, start: number, end: number): number {
  let value = 0;
  let octet = 0;
  let digits = 0;
  let dots = 0;
  let leadingZero = false;
  for (let i = start; i < end; i++) {
    const c = s.charCodeAt(i);
    if (c >= 48 && c <= 57) {
      if (leadingZero) return -1;
      if (digits === 0 && c === 48) leadingZero = true;
      octet = octet * 10 + (c - 48);
      if (octet > 255) return -1;
      digits++;
    } else if (c === 46) {
      if (digits === 0 || dots === 3) return -1;
      value = value * 256 + octet;
      octet = 0;
      digits = 0;
      leadingZero = false;
      dots++;
    } else {
      return -1;
    }
  }
  if (dots !== 3 || digits === 0) return -1;
  return value * 256 + octet;
}

/**
 * IPv6 text (RFC 4291 section 2.2 forms, embedded IPv4 tail allowed) →
 * eight groups in `out`. Returns false on anything else, including zone
 * ids, brackets and prefixes.
 */
function parseV6(s: string, out: Uint16Array): boolean {
  const n = s.length;
  if (n < 2 || n > MAX_TEXT) return false;
  let count = 0;
  let gap = -1;
  let i = 0;
  if (s.charCodeAt(0) === 58) {
    if (s.charCodeAt(1) !== 58) return false;
    gap = 0;
    i = 2;
  }
  while (i < n) {
    let j = i;
    let value = 0;
    while (j < n && j - i < 5) {
      const h = hexValue(s.charCodeAt(j));
      if (h < 0) break;
      value = value * 16 + h;
      j++;
    }
    if (j < n && s.charCodeAt(j) === 46) {
      // An embedded IPv4 tail fills the last two groups.
      if (count > 6) return false;
      const v4 = parseV4(s, i, n);
      if (v4 < 0) return false;
      out[count++] = Math.floor(v4 / 65536);
      out[count++] = v4 % 65536;
      i = n;
      break;
    }
    const digits = j - i;
    if (digits === 0 || digits > 4 || count === 8) return false;
    out[count++] = value;
    if (j === n) {
      i = n;
      break;
    }
    if (s.charCodeAt(j) !== 58) return false;
    j++;
    if (j < n && s.charCodeAt(j) === 58) {
      if (gap >= 0) return false;
      gap = count;
      j++;
    } else if (j === n) {
      return false;
    }
    i = j;
  }
  if (gap < 0) return count === 8;
  // `::` stands for at least one zero group.
  if (count > 7) return false;
  const tail = count - gap;
  for (let k = 0; k < tail; k++) out[7 - k] = out[count - 1 - k] ?? 0;
  for (let k = gap; k < 8 - tail; k++) out[k] = 0;
  return true;
}

function isMapped(g: Uint16Array): boolean {
  return g[0] === 0 && g[1] === 0 && g[2] === 0 && g[3] === 0 && g[4] === 0 && g[5] === 0xffff;
}

/** Unsigned 32-bit value → dotted quad. */
export function formatIpv4(v: number): string {
  return `${(v >>> 24) & 255}.${(v >>> 16) & 255}.${(v >>> 8) & 255}.${v & 255}`;
}

/** Eight groups → RFC 5952 text (lower case, longest zero run of two or more as `::`, first on ties). */
function formatV6(g: Uint16Array): string {
  let bestStart = -1;
  let bestLen = 1;
  let runStart = -1;
  for (let i = 0; i < 8; i++) {
    if (g[i] === 0) {
      if (runStart < 0) runStart = i;
      const len = i - runStart + 1;
      if (len > bestLen) {
        bestLen = len;
        bestStart = runStart;
      }
    } else {
      runStart = -1;
    }
  }
  let text = '';
  for (let i = 0; i < 8; i++) {
    if (i === bestStart) {
      text += i === 0 ? '::' : ':';
      i += bestLen - 1;
      continue;
    }
    text += (g[i] ?? 0).toString(16);
    if (i < 7) text += ':';
  }
  return text;
}

/**
 * Validates an address and writes it canonically: an IPv4 dotted quad, or
 * IPv6 per RFC 5952; an IPv4-mapped IPv6 address (`::ffff:a.b.c.d`)
 * becomes its IPv4 address.
 * @returns the canonical address, or null for anything else (`-`, hostnames,
 *   zone ids, brackets, `010.1.1.1`, CIDRs)
 * @example canonicalIp('2001:DB8:0:0:1::1') // '2001:db8::1:0:0:1'
 */
export function canonicalIp(text: string): string | null {
  if (typeof text !== 'string' || text.length > MAX_TEXT) return null;
  if (text.indexOf(':') < 0) {
    // A strictly valid dotted quad is already canonical.
    return parseV4(text, 0, text.length) < 0 ? null : text;
  }
  if (!parseV6(text, SCRATCH)) return null;
  if (isMapped(SCRATCH)) return formatIpv4((SCRATCH[6] ?? 0) * 65536 + (SCRATCH[7] ?? 0));
  return formatV6(SCRATCH);
}

/**
 * {@link canonicalIp} on the bytes `buf[start, end)`, for the log parsers'
 * hot path. IPv4 is scanned byte by byte and allocates only the returned
 * string; an invalid IPv4 field allocates nothing.
 */
export function canonicalIpBytes(buf: Buffer, start: number, end: number): string | null {
  const len = end - start;
  if (len < 2 || len > MAX_TEXT) return null;
  let value = 0;
  let octet = 0;
  let digits = 0;
  let dots = 0;
  let leadingZero = false;
  for (let p = start; p < end; p++) {
    const c = buf[p] ?? 0;
    if (c >= 48 && c <= 57) {
      if (leadingZero) return canonicalIpv6Bytes(buf, start, end);
      if (digits === 0 && c === 48) leadingZero = true;
      octet = octet * 10 + (c - 48);
      // An IPv6 group such as `2001` starts like a large octet.
      if (octet > 255) return canonicalIpv6Bytes(buf, start, end);
      digits++;
    } else if (c === 46) {
      if (digits === 0 || dots === 3) return null;
      value = value * 256 + octet;
      octet = 0;
      digits = 0;
      leadingZero = false;
      dots++;
    } else {
      return canonicalIpv6Bytes(buf, start, end);
    }
  }
  if (dots !== 3 || digits === 0) return null;
  value = value * 256 + octet;
  // A strictly valid dotted quad is its own canonical text.
  return V4_TEXT.get(value) ?? remember(V4_TEXT, value, buf.toString('latin1', start, end));
}

function canonicalIpv6Bytes(buf: Buffer, start: number, end: number): string | null {
  // Only text with a colon can be IPv6: anything else fails without a decode.
  let p = start;
  while (p < end && buf[p] !== 58) p++;
  if (p === end) return null;
  const text = buf.toString('latin1', start, end);
  const known = V6_TEXT.get(text);
  return known !== undefined ? known : remember(V6_TEXT, text, canonicalIp(text));
}

/** 4 for an address or CIDR without a colon, else 6. */
export function ipVersion(key: string): 4 | 6 {
  return key.indexOf(':') < 0 ? 4 : 6;
}

/** Dotted quad → unsigned 32-bit value, or -1 when it is not a strict dotted quad. */
export function ipv4ToNumber(ip: string): number {
  return parseV4(ip, 0, ip.length);
}

/** IPv4 netmask of a prefix length as an unsigned 32-bit value. */
function mask4(prefix: number): number {
  return prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
}

function maskGroups(g: Uint16Array, prefix: number): void {
  for (let i = 0; i < 8; i++) {
    const bits = prefix - i * 16;
    if (bits >= 16) continue;
    g[i] = bits <= 0 ? 0 : (g[i] ?? 0) & ((0xffff << (16 - bits)) & 0xffff);
  }
}

/**
 * The rule counting key of a canonical address: the address masked to the
 * rule's prefix, written bare at /32 and /128 and as canonical CIDR otherwise.
 * @param ip canonical address (from {@link canonicalIp})
 * @example maskKey('192.0.2.77', 24, 64) // '192.0.2.0/24'
 * @example maskKey('2001:db8:1:2::9', 32, 48) // '2001:db8:1::/48'
 */
export function maskKey(ip: string, ipv4Prefix: number, ipv6Prefix: number): string {
  const v4 = ip.indexOf(':') < 0;
  const prefix = v4 ? ipv4Prefix : ipv6Prefix;
  if (prefix >= (v4 ? 32 : 128)) return ip;
  // IPv4 and IPv6 prefixes share one cache slot per length: the texts never collide.
  let cache = MASKED[prefix];
  if (cache === undefined) {
    cache = new Map();
    MASKED[prefix] = cache;
  }
  const known = cache.get(ip);
  if (known !== undefined) return known;
  if (v4) {
    const v = parseV4(ip, 0, ip.length);
    if (v < 0) throw new IpError(`not an IPv4 address: ${ip}`);
    return remember(cache, ip, `${formatIpv4((v & mask4(prefix)) >>> 0)}/${prefix}`);
  }
  if (!parseV6(ip, SCRATCH)) throw new IpError(`not an IPv6 address: ${ip}`);
  maskGroups(SCRATCH, prefix);
  return remember(cache, ip, `${formatV6(SCRATCH)}/${prefix}`);
}

/** A parsed, canonical CIDR. */
export interface Cidr {
  /** Canonical `addr/len`, host bits cleared. */
  readonly cidr: string;
  readonly version: 4 | 6;
  readonly prefix: number;
}

function parsePrefixLength(text: string): number {
  // Decimal without sign or leading zeros, like the addresses.
  if (!/^(0|[1-9][0-9]{0,2})$/.test(text)) return -1;
  return Number(text);
}

/**
 * Parses an address (as /32 or /128) or `addr/len`; host bits are cleared.
 * An IPv4-mapped IPv6 CIDR of /96 or longer becomes the IPv4 CIDR.
 * @returns the canonical CIDR, or null when `text` is neither
 * @example parseCidr('192.0.2.77/24') // { cidr: '192.0.2.0/24', version: 4, prefix: 24 }
 */
export function parseCidr(text: string): Cidr | null {
  if (typeof text !== 'string') return null;
  const slash = text.indexOf('/');
  const addr = slash < 0 ? text : text.slice(0, slash);
  let prefix = slash < 0 ? -2 : parsePrefixLength(text.slice(slash + 1));
  if (prefix === -1) return null;
  if (addr.indexOf(':') < 0) {
    const v = parseV4(addr, 0, addr.length);
    if (v < 0) return null;
    if (prefix === -2) prefix = 32;
    if (prefix > 32) return null;
    return { cidr: `${formatIpv4((v & mask4(prefix)) >>> 0)}/${prefix}`, version: 4, prefix };
  }
  if (!parseV6(addr, SCRATCH)) return null;
  if (prefix === -2) prefix = 128;
  if (prefix > 128) return null;
  if (isMapped(SCRATCH) && prefix >= 96) {
    const p4 = prefix - 96;
    const v = (SCRATCH[6] ?? 0) * 65536 + (SCRATCH[7] ?? 0);
    return { cidr: `${formatIpv4((v & mask4(p4)) >>> 0)}/${p4}`, version: 4, prefix: p4 };
  }
  maskGroups(SCRATCH, prefix);
  return { cidr: `${formatV6(SCRATCH)}/${prefix}`, version: 6, prefix };
}

/** A bare key as CIDR (`/32` or `/128`); a CIDR unchanged. */
export function keyToCidr(key: string): string {
  if (key.indexOf('/') >= 0) return key;
  return key.indexOf(':') < 0 ? `${key}/32` : `${key}/128`;
}

/** The first and last address of a CIDR (or bare address). */
export type CidrBounds =
  | { readonly version: 4; readonly prefix: number; readonly start: number; readonly end: number }
  | { readonly version: 6; readonly prefix: number; readonly start: bigint; readonly end: bigint };

function groupsToBigInt(g: Uint16Array): bigint {
  let v = 0n;
  for (let i = 0; i < 8; i++) v = (v << 16n) | BigInt(g[i] ?? 0);
  return v;
}

const ALL_V6 = (1n << 128n) - 1n;

/**
 * Numeric bounds of an address or CIDR (any valid spelling), or null.
 * @example cidrBounds('10.0.0.0/8') // { version: 4, prefix: 8, start: 167772160, end: 184549375 }
 */
export function cidrBounds(text: string): CidrBounds | null {
  const c = parseCidr(text);
  if (c === null) return null;
  const slash = c.cidr.indexOf('/');
  const addr = c.cidr.slice(0, slash);
  if (c.version === 4) {
    const start = parseV4(addr, 0, addr.length);
    const size = 2 ** (32 - c.prefix);
    return { version: 4, prefix: c.prefix, start, end: start + size - 1 };
  }
  parseV6(addr, SCRATCH);
  const start = groupsToBigInt(SCRATCH);
  const hostMask = ALL_V6 >> BigInt(c.prefix);
  return { version: 6, prefix: c.prefix, start, end: start | hostMask };
}

/**
 * IPv6 address → 128-bit value, or null. Used by range lookups; the hot
 * IPv4 path uses {@link ipv4ToNumber} instead.
 */
export function ipv6ToBigInt(ip: string): bigint | null {
  if (!parseV6(ip, SCRATCH)) return null;
  return groupsToBigInt(SCRATCH);
}

/** Whether `outer` contains `inner` (addresses or CIDRs; false across versions or when invalid). */
export function cidrContains(outer: string, inner: string): boolean {
  const a = cidrBounds(outer);
  const b = cidrBounds(inner);
  if (a === null || b === null || a.version !== b.version) return false;
  return a.start <= b.start && b.end <= a.end;
}

/** Whether two addresses or CIDRs share any address (false across versions or when invalid). */
export function cidrsOverlap(a: string, b: string): boolean {
  const x = cidrBounds(a);
  const y = cidrBounds(b);
  if (x === null || y === null || x.version !== y.version) return false;
  return x.start <= y.end && y.start <= x.end;
}

function splitKey(key: string): { addr: string; prefix: number } {
  const slash = key.indexOf('/');
  if (slash < 0) return { addr: key, prefix: key.indexOf(':') < 0 ? 32 : 128 };
  return { addr: key.slice(0, slash), prefix: Number(key.slice(slash + 1)) };
}

/**
 * Sort order of addresses and keys (DESIGN section 4): IPv4 before IPv6,
 * then numeric address value, then prefix length (a bare address counts as
 * /32 or /128). Text that is neither sorts last, by code unit.
 * @example ['2001:db8::1', '10.0.0.0/8', '9.9.9.9'].sort(compareKeys) // ['9.9.9.9', '10.0.0.0/8', '2001:db8::1']
 */
export function compareKeys(a: string, b: string): number {
  const ka = splitKey(a);
  const kb = splitKey(b);
  const va = ka.addr.indexOf(':') < 0 ? 4 : 6;
  const vb = kb.addr.indexOf(':') < 0 ? 4 : 6;
  let na = 0;
  let nb = 0;
  let okA: boolean;
  let okB: boolean;
  if (va === 4) {
    na = parseV4(ka.addr, 0, ka.addr.length);
    okA = na >= 0 && Number.isInteger(ka.prefix);
  } else {
    okA = parseV6(ka.addr, SCRATCH) && Number.isInteger(ka.prefix);
  }
  if (vb === 4) {
    nb = parseV4(kb.addr, 0, kb.addr.length);
    okB = nb >= 0 && Number.isInteger(kb.prefix);
  } else {
    okB = parseV6(kb.addr, SCRATCH_B) && Number.isInteger(kb.prefix);
  }
  if (!okA || !okB) {
    if (okA !== okB) return okA ? -1 : 1;
    return a < b ? -1 : a > b ? 1 : 0;
  }
  if (va !== vb) return va - vb;
  if (va === 4) {
    if (na !== nb) return na - nb;
  } else {
    for (let i = 0; i < 8; i++) {
      const d = (SCRATCH[i] ?? 0) - (SCRATCH_B[i] ?? 0);
      if (d !== 0) return d;
    }
  }
  return ka.prefix - kb.prefix;
}
