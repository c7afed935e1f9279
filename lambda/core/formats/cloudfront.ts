/**
 * CloudFront access logs in W3C form: standard logging (legacy) and
 * standard logging v2 delivered to S3 as W3C.
 *
 * Rows are tab-separated. A space-separated `#Fields:` header names the
 * columns, and the parser maps them **by name**, so any column count and
 * order works (legacy files have 18 to 34 columns over the years; v2 lets
 * the owner pick any subset in any order). A file without a header uses the
 * legacy 33-field order. A later `#Fields` line in the same file re-maps the
 * columns from there on.
 *
 * The hot path walks the row's bytes once, only up to the last column the
 * rules need, and decodes strings only for those columns: no regex, no
 * split, no string of the whole line.
 */
import { canonicalIpBytes, ipv4ToNumber, registerAddressCache } from '../ip';
import type { FieldNeeds, LineParser, ParsedRequest } from '../types';
import { minuteFromDateTime } from './time';

/**
 * The legacy column order (33 fields), as the CloudFront developer guide
 * lists it; used when a file has no `#Fields` header. Older files stop
 * earlier in the same order.
 */
export const LEGACY_FIELDS: readonly string[] = [
  'date',
  'time',
  'x-edge-location',
  'sc-bytes',
  'c-ip',
  'cs-method',
  'cs(Host)',
  'cs-uri-stem',
  'sc-status',
  'cs(Referer)',
  'cs(User-Agent)',
  'cs-uri-query',
  'cs(Cookie)',
  'x-edge-result-type',
  'x-edge-request-id',
  'x-host-header',
  'cs-protocol',
  'cs-bytes',
  'time-taken',
  'x-forwarded-for',
  'ssl-protocol',
  'ssl-cipher',
  'x-edge-response-result-type',
  'cs-protocol-version',
  'fle-status',
  'fle-encrypted-fields',
  'c-port',
  'time-to-first-byte',
  'x-edge-detailed-result-type',
  'sc-content-type',
  'sc-content-len',
  'sc-range-start',
  'sc-range-end',
];

/** Rejection reasons of CloudFront rows (W3C and JSON), one line each. */
export const CF_REJECT = {
  truncated: 'truncated row',
  client: 'invalid client address',
  time: 'invalid time',
  status: 'invalid status code',
} as const;

/** Skip reasons of a `#Fields` header edgeban cannot read. */
export const FIELDS_PROBLEM = {
  clientIp: '#Fields lacks c-ip',
  time: '#Fields lacks a time (date and time, or timestamp)',
} as const;

/** How a row tells its time. */
export type TimeSource = 'date-time' | 'timestamp-ms' | 'timestamp';

/** Column index of each field edgeban reads, or -1 when the header lacks it. */
export interface CloudFrontLayout {
  readonly date: number;
  readonly time: number;
  readonly timestampMs: number;
  readonly timestamp: number;
  readonly clientIp: number;
  readonly method: number;
  readonly hostHeader: number;
  readonly host: number;
  readonly uriStem: number;
  readonly status: number;
  /** `date` + `time` when both exist, else `timestamp(ms)`, else `timestamp`; null when none. */
  readonly timeSource: TimeSource | null;
  /** Why the header cannot be read ({@link FIELDS_PROBLEM}), or null. */
  readonly problem: string | null;
}

/**
 * Maps field names (a `#Fields` header, or {@link LEGACY_FIELDS}) to the
 * columns edgeban reads. The first occurrence of a name wins.
 */
export function layoutFromFields(names: readonly string[]): CloudFrontLayout {
  const at = (name: string): number => names.indexOf(name);
  const date = at('date');
  const time = at('time');
  const timestampMs = at('timestamp(ms)');
  const timestamp = at('timestamp');
  const clientIp = at('c-ip');
  let timeSource: TimeSource | null = null;
  if (date >= 0 && time >= 0) timeSource = 'date-time';
  else if (timestampMs >= 0) timeSource = 'timestamp-ms';
  else if (timestamp >= 0) timeSource = 'timestamp';
  let problem: string | null = null;
  if (clientIp < 0) problem = FIELDS_PROBLEM.clientIp;
  else if (timeSource === null) problem = FIELDS_PROBLEM.time;
  return {
    date,
    time,
    timestampMs,
    timestamp,
    clientIp,
    method: at('cs-method'),
    hostHeader: at('x-host-header'),
    host: at('cs(Host)'),
    uriStem: at('cs-uri-stem'),
    status: at('sc-status'),
    timeSource,
    problem,
  };
}

/** The layout of a file without a `#Fields` header. */
export const LEGACY_LAYOUT: CloudFrontLayout = layoutFromFields(LEGACY_FIELDS);

const FIELDS_PREFIX = Buffer.from('#Fields:', 'latin1');

/**
 * The field names of a `#Fields:` header line (space or tab separated), or
 * null when the line is not one. Runs once per header, not per row.
 */
export function parseFieldsLine(buf: Buffer, start: number, end: number): string[] | null {
  const n = FIELDS_PREFIX.length;
  if (end - start < n || buf.compare(FIELDS_PREFIX, 0, n, start, start + n) !== 0) return null;
  return buf
    .toString('latin1', start + n, end)
    .split(/[ \t]+/)
    .filter((name) => name.length > 0);
}

// ---------------------------------------------------------------------------
// Byte helpers shared with the JSON parser.
// ---------------------------------------------------------------------------

interface FastSlices {
  latin1Slice(start: number, end: number): string;
  utf8Slice(start: number, end: number): string;
}

/** `buf.toString('latin1', start, end)` without the encoding lookup. */
export function latin1(buf: Buffer, start: number, end: number): string {
  return (buf as unknown as FastSlices).latin1Slice(start, end);
}

/** `buf.toString('utf8', start, end)` without the encoding lookup. */
export function utf8(buf: Buffer, start: number, end: number): string {
  return (buf as unknown as FastSlices).utf8Slice(start, end);
}

/**
 * A bounded memo: a plain Map that is emptied when it reaches `limit`
 * entries, so memory stays flat on hostile input while the common case
 * (few distinct clients and hosts per file) hits.
 */
class Memo<V> {
  private map = new Map<string, V>();
  constructor(private readonly limit: number) {}
  get(key: string): V | undefined {
    return this.map.get(key);
  }
  set(key: string, value: V): void {
    if (this.map.size >= this.limit) this.map.clear();
    this.map.set(key, value);
  }
  clear(): void {
    this.map.clear();
  }
  get size(): number {
    return this.map.size;
  }
}

// Shared by every parser of the process: one canonical string instance per
// client also lets the counters' Map lookups reuse its cached hash.
const ipv4Memo = new Map<number, string>();
const ipTextMemo = new Memo<string | null>(1 << 14);
const hostMemo = new Memo<string | null>(1 << 12);
// Room for the clients of a busy file (bench: 450,000 in 1M lines) at about
// 40 bytes each: a smaller memo is cleared over and over there, and every
// line then makes its address string anew (about a tenth more CPU).
const IPV4_MEMO_LIMIT = 1 << 19;
for (const memo of [ipv4Memo, ipTextMemo, hostMemo]) registerAddressCache(memo);

/** Set by {@link strictIpv4}: whether its result is an address. */
let ipv4Valid = false;

/**
 * A strict dotted quad (no empty octet, no leading zero, octets <= 255) as a
 * signed 32-bit value, the memo key of the IPv4 fast path; `ipv4Valid` says
 * whether the bytes were one. Strict text and value map one to one, and
 * the text is canonical: exactly the dotted quads `canonicalIpBytes`
 * accepts as they are (lambda/core/ip.ts), so the value stands for it.
 */
function strictIpv4(buf: Buffer, start: number, end: number): number {
  ipv4Valid = false;
  let value = 0;
  let octet = 0;
  let digits = 0;
  let dots = 0;
  for (let p = start; p < end; p++) {
    const c = buf[p]!;
    if (c >= 48 && c <= 57) {
      if (digits === 1 && octet === 0) return 0;
      octet = octet * 10 + c - 48;
      if (octet > 255) return 0;
      digits++;
    } else if (c === 46) {
      if (digits === 0 || dots === 3) return 0;
      value = (value << 8) | octet;
      octet = 0;
      digits = 0;
      dots++;
    } else {
      return 0;
    }
  }
  if (dots !== 3 || digits === 0) return 0;
  ipv4Valid = true;
  return (value << 8) | octet;
}

/**
 * Reads a client address into `out`: `ipv4` gets a strict dotted quad's
 * unsigned value (else -1) and `ip` the canonical text, except that with
 * `text4` false an IPv4 client's text is left empty (for callers that read
 * `ipv4`, see {@link FieldNeeds.addressValue}): no memo lookup per line.
 * Returns false, leaving `out` as it was, when the bytes are no address.
 */
export function readClient(
  buf: Buffer,
  start: number,
  end: number,
  out: ParsedRequest,
  text4: boolean,
): boolean {
  const v4 = strictIpv4(buf, start, end);
  if (ipv4Valid) {
    out.ip = text4 ? ipv4Text(v4, buf, start, end) : '';
    out.ipv4 = v4 >>> 0;
    return true;
  }
  const ip = otherIp(buf, start, end);
  if (ip === null) return false;
  out.ip = ip;
  // An IPv4-mapped IPv6 address is an IPv4 client.
  out.ipv4 = ipv4ToNumber(ip);
  return true;
}

/** The canonical text of a strict dotted quad (its {@link strictIpv4} value), memoised. */
function ipv4Text(v4: number, buf: Buffer, start: number, end: number): string {
  let ip = ipv4Memo.get(v4);
  if (ip === undefined) {
    // A strict dotted quad is its own canonical text.
    ip = latin1(buf, start, end);
    if (ipv4Memo.size >= IPV4_MEMO_LIMIT) ipv4Memo.clear();
    ipv4Memo.set(v4, ip);
  }
  return ip;
}

/** Any address but a strict dotted quad: canonical text or null, memoised. */
function otherIp(buf: Buffer, start: number, end: number): string | null {
  const raw = latin1(buf, start, end);
  let ip = ipTextMemo.get(raw);
  if (ip === undefined) {
    ip = canonicalIpBytes(buf, start, end);
    ipTextMemo.set(raw, ip);
  }
  return ip;
}

const DASH = 45;

/** HTTP method as logged; null for `-` or empty. */
export function methodOf(buf: Buffer, start: number, end: number): string | null {
  const n = end - start;
  const c = buf[start];
  if (n === 3 && c === 71 && buf[start + 1] === 69 && buf[start + 2] === 84) return 'GET';
  if (
    n === 4 &&
    c === 80 &&
    buf[start + 1] === 79 &&
    buf[start + 2] === 83 &&
    buf[start + 3] === 84
  ) {
    return 'POST';
  }
  if (n === 0 || (n === 1 && c === DASH)) return null;
  return latin1(buf, start, end);
}

/** URI path as logged; null for `-` or empty. */
export function pathOf(buf: Buffer, start: number, end: number): string | null {
  const n = end - start;
  if (n === 0 || (n === 1 && buf[start] === DASH)) return null;
  return utf8(buf, start, end);
}

/** Status code; null for `-` or anything that is not 1 to 3 digits. */
export function statusOf(buf: Buffer, start: number, end: number): number | null {
  const n = end - start;
  if (n < 1 || n > 3) return null;
  let v = 0;
  for (let i = start; i < end; i++) {
    const d = (buf[i] ?? 0) - 48;
    if (d < 0 || d > 9) return null;
    v = v * 10 + d;
  }
  return v;
}

/** Lower-case host without port, or null for `-` or empty; memoised. */
export function hostOf(buf: Buffer, start: number, end: number): string | null {
  const n = end - start;
  if (n === 0 || (n === 1 && buf[start] === DASH)) return null;
  const raw = latin1(buf, start, end);
  let host = hostMemo.get(raw);
  if (host === undefined) {
    host = normalizeHost(utf8(buf, start, end));
    hostMemo.set(raw, host);
  }
  return host;
}

/** Lower-cases a host and strips its port (`[v6]:port` keeps the brackets). */
export function normalizeHost(text: string): string | null {
  let host = text;
  if (host.startsWith('[')) {
    const close = host.indexOf(']');
    if (close > 0) host = host.slice(0, close + 1);
  } else {
    const colon = host.indexOf(':');
    if (colon >= 0) host = host.slice(0, colon);
  }
  host = host.toLowerCase();
  return host.length === 0 || host === '-' ? null : host;
}

/** Epoch minute of `timestamp(ms)` digits, or -1. */
export function minuteFromEpochMs(buf: Buffer, start: number, end: number): number {
  const n = end - start;
  if (n < 1 || n > 15) return -1;
  let v = 0;
  for (let i = start; i < end; i++) {
    const d = (buf[i] ?? 0) - 48;
    if (d < 0 || d > 9) return -1;
    v = v * 10 + d;
  }
  return Math.floor(v / 60000);
}

/** Epoch minute of `timestamp` (epoch seconds, optional `.fraction`), or -1. */
export function minuteFromEpochSeconds(buf: Buffer, start: number, end: number): number {
  let v = 0;
  let i = start;
  for (; i < end; i++) {
    const c = buf[i] ?? 0;
    if (c === 46) break;
    const d = c - 48;
    if (d < 0 || d > 9) return -1;
    v = v * 10 + d;
  }
  const digits = i - start;
  if (digits < 1 || digits > 12) return -1;
  if (i < end) {
    if (i + 1 === end) return -1;
    for (let k = i + 1; k < end; k++) {
      const d = (buf[k] ?? 0) - 48;
      if (d < 0 || d > 9) return -1;
    }
  }
  return Math.floor(v / 60);
}

// ---------------------------------------------------------------------------
// Detection.
// ---------------------------------------------------------------------------

const TAB = 9;

/** Start and end of column `col` of a tab-separated row, or null when the row is shorter. */
function column(buf: Buffer, start: number, end: number, col: number): [number, number] | null {
  let s = start;
  for (let c = 0; c < col; c++) {
    const tab = buf.indexOf(TAB, s);
    if (tab < 0 || tab >= end) return null;
    s = tab + 1;
  }
  const tab = buf.indexOf(TAB, s);
  return [s, tab < 0 || tab >= end ? end : tab];
}

/** Epoch minute of a row under `layout`, or -1 (slow path, for detection and tests). */
function rowMinute(buf: Buffer, start: number, end: number, layout: CloudFrontLayout): number {
  if (layout.timeSource === 'date-time') {
    const d = column(buf, start, end, layout.date);
    const t = column(buf, start, end, layout.time);
    return d === null || t === null ? -1 : minuteFromDateTime(buf, d[0], d[1], t[0], t[1]);
  }
  if (layout.timeSource === 'timestamp-ms') {
    const c = column(buf, start, end, layout.timestampMs);
    return c === null ? -1 : minuteFromEpochMs(buf, c[0], c[1]);
  }
  if (layout.timeSource === 'timestamp') {
    const c = column(buf, start, end, layout.timestamp);
    return c === null ? -1 : minuteFromEpochSeconds(buf, c[0], c[1]);
  }
  return -1;
}

/**
 * Whether a line has the structure of a CloudFront W3C row under `layout`:
 * tab-separated, with a valid time where the layout puts it. The client
 * address is not checked (a row with a bad client still shows the format).
 */
export function isCloudFrontRow(
  buf: Buffer,
  start: number,
  end: number,
  layout: CloudFrontLayout,
): boolean {
  const tab = buf.indexOf(TAB, start);
  if (tab < 0 || tab >= end) return false;
  return rowMinute(buf, start, end, layout) >= 0;
}

// ---------------------------------------------------------------------------
// The parser.
// ---------------------------------------------------------------------------

/** A CloudFront W3C parser whose columns a `#Fields` header can re-map. */
export interface CloudFrontParser extends LineParser {
  /** Maps the columns from now on (a header's layout, or {@link LEGACY_LAYOUT}). */
  setLayout(layout: CloudFrontLayout): void;
}

// Slots of the columns a row is scanned for.
const S_DATE = 0;
const S_TIME = 1;
const S_TS = 2;
const S_IP = 3;
const S_METHOD = 4;
const S_PATH = 5;
const S_STATUS = 6;
const S_HOST_HEADER = 7;
const S_HOST = 8;
const SLOTS = 9;

class W3cParser implements CloudFrontParser {
  private readonly needs: FieldNeeds;
  /** IPv4 clients get their text too (no {@link FieldNeeds.addressValue}). */
  private readonly text4: boolean;
  /** Column index → slot, or -1; covers columns 0 to `lastCol`. */
  private slotOf = new Int8Array(0);
  private lastCol = 0;
  /** Columns every needed slot but the two hosts lies within. */
  private requiredCol = 0;
  private hostHeaderCol = -1;
  private hostCol = -1;
  private timeSource: TimeSource = 'date-time';
  private readMethod = false;
  private readPath = false;
  private hasStatus = false;
  private problem: string | null = null;
  private readonly fs = new Int32Array(SLOTS);
  private readonly fe = new Int32Array(SLOTS);
  /** Last row's `date` and `HH:MM`, and its minute (-1: none yet). */
  private readonly lastKey = Buffer.alloc(15);
  private lastMinute = -1;

  constructor(needs: FieldNeeds, layout: CloudFrontLayout) {
    this.needs = needs;
    this.text4 = needs.addressValue !== true;
    this.setLayout(layout);
  }

  setLayout(layout: CloudFrontLayout): void {
    this.problem = layout.problem;
    this.lastMinute = -1;
    if (layout.problem !== null || layout.timeSource === null) return;
    this.timeSource = layout.timeSource;
    const wanted: [number, number][] = [[S_IP, layout.clientIp]];
    if (layout.timeSource === 'date-time') {
      wanted.push([S_DATE, layout.date], [S_TIME, layout.time]);
    } else {
      wanted.push([
        S_TS,
        layout.timeSource === 'timestamp-ms' ? layout.timestampMs : layout.timestamp,
      ]);
    }
    // The status is validated on every row, needed or not, and a row must
    // reach every request column its header declares (hosts aside, they
    // fall back on each other): so rows are rejected the same way whatever
    // the rules.
    this.hasStatus = layout.status >= 0;
    if (this.hasStatus) wanted.push([S_STATUS, layout.status]);
    const needs = this.needs;
    // A needed field the header lacks stays null: such a row matches no filter on it.
    this.readMethod = needs.method && layout.method >= 0;
    this.readPath = needs.path && layout.uriStem >= 0;
    if (this.readMethod) wanted.push([S_METHOD, layout.method]);
    if (this.readPath) wanted.push([S_PATH, layout.uriStem]);
    this.requiredCol = Math.max(...wanted.map(([, col]) => col), layout.method, layout.uriStem);
    this.hostHeaderCol = -1;
    this.hostCol = -1;
    if (needs.host) {
      if (layout.hostHeader >= 0) {
        wanted.push([S_HOST_HEADER, layout.hostHeader]);
        this.hostHeaderCol = layout.hostHeader;
      }
      if (layout.host >= 0) {
        wanted.push([S_HOST, layout.host]);
        this.hostCol = layout.host;
      }
    }
    const last = Math.max(this.requiredCol, ...wanted.map(([, col]) => col));
    const slotOf = new Int8Array(last + 1).fill(-1);
    for (const [slot, col] of wanted) slotOf[col] = slot;
    this.slotOf = slotOf;
    this.lastCol = last;
  }

  parse(buf: Buffer, start: number, end: number, out: ParsedRequest): string | null {
    if (this.problem !== null) return this.problem;
    const slotOf = this.slotOf;
    const last = this.lastCol;
    const fs = this.fs;
    const fe = this.fe;
    // Walk the tabs up to the last needed column only. One memchr per
    // column: as fast as a byte loop on short fields, far faster on the
    // long ones (user agent, request id) before `x-host-header`.
    let col = 0;
    let s = start;
    for (;;) {
      let tab = buf.indexOf(TAB, s);
      if (tab < 0 || tab > end) tab = end;
      const slot = slotOf[col]!;
      if (slot >= 0) {
        fs[slot] = s;
        fe[slot] = tab;
      }
      if (col === last || tab === end) break;
      col++;
      s = tab + 1;
    }
    if (col < this.requiredCol) return CF_REJECT.truncated;

    if (!readClient(buf, fs[S_IP]!, fe[S_IP]!, out, this.text4)) return CF_REJECT.client;

    let minute: number;
    if (this.timeSource === 'date-time') {
      minute = this.dateTimeMinute(buf, fs[S_DATE]!, fe[S_DATE]!, fs[S_TIME]!, fe[S_TIME]!);
    } else if (this.timeSource === 'timestamp-ms') {
      minute = minuteFromEpochMs(buf, fs[S_TS]!, fe[S_TS]!);
    } else {
      minute = minuteFromEpochSeconds(buf, fs[S_TS]!, fe[S_TS]!);
    }
    if (minute < 0) return CF_REJECT.time;
    out.minute = minute;

    let status: number | null = null;
    if (this.hasStatus) {
      const ss = fs[S_STATUS]!;
      const se = fe[S_STATUS]!;
      status = statusOf(buf, ss, se);
      if (status === null && !(se - ss === 1 && buf[ss] === DASH)) return CF_REJECT.status;
    }

    const needs = this.needs;
    if (needs.status) out.status = status;
    if (needs.method)
      out.method = this.readMethod ? methodOf(buf, fs[S_METHOD]!, fe[S_METHOD]!) : null;
    if (needs.path) {
      out.path = null;
      if (this.readPath) {
        const ps = fs[S_PATH]!;
        const pe = fe[S_PATH]!;
        if (needs.pathBytes !== true) out.path = pathOf(buf, ps, pe);
        else if (pe === ps || (pe - ps === 1 && buf[ps] === DASH)) out.pathBuf = null;
        else {
          // Left undecoded: the rules test it as bytes (rules.ts, pathFilter).
          out.pathBuf = buf;
          out.pathStart = ps;
          out.pathEnd = pe;
        }
      } else if (needs.pathBytes === true) out.pathBuf = null;
    }
    if (needs.host) {
      let host: string | null = null;
      if (this.hostHeaderCol >= 0 && this.hostHeaderCol <= col) {
        host = hostOf(buf, fs[S_HOST_HEADER]!, fe[S_HOST_HEADER]!);
      }
      if (host === null && this.hostCol >= 0 && this.hostCol <= col) {
        host = hostOf(buf, fs[S_HOST]!, fe[S_HOST]!);
      }
      out.host = host;
    }
    return null;
  }

  /** Epoch minute of `date` and `time`, reusing the last row's when they share the minute. */
  private dateTimeMinute(buf: Buffer, ds: number, de: number, ts: number, te: number): number {
    if (de - ds !== 10 || te - ts !== 8) return -1;
    const key = this.lastKey;
    let same = this.lastMinute >= 0;
    for (let k = 0; same && k < 10; k++) same = buf[ds + k] === key[k];
    for (let k = 0; same && k < 5; k++) same = buf[ts + k] === key[10 + k];
    if (same) {
      // Same date and HH:MM: only the seconds are left to check.
      const s1 = (buf[ts + 6] ?? 0) - 48;
      const s2 = (buf[ts + 7] ?? 0) - 48;
      if (buf[ts + 5] === 58 && s1 >= 0 && s1 <= 6 && s2 >= 0 && s2 <= 9 && s1 * 10 + s2 <= 60) {
        return this.lastMinute;
      }
      return -1;
    }
    const minute = minuteFromDateTime(buf, ds, de, ts, te);
    if (minute >= 0) {
      buf.copy(key, 0, ds, de);
      buf.copy(key, 10, ts, ts + 5);
      this.lastMinute = minute;
    }
    return minute;
  }
}

/**
 * Builds the parser of a CloudFront W3C file.
 *
 * @param needs which optional fields the rules need decoded
 * @param layout the columns; a `#Fields` header later in the file re-maps them
 * @default layout - {@link LEGACY_LAYOUT}
 * @example
 * const parser = createCloudFrontParser({ method: true, path: true, host: false, status: true });
 * const reason = parser.parse(row, 0, row.length, out); // null: `out` holds the request
 */
export function createCloudFrontParser(
  needs: FieldNeeds,
  layout: CloudFrontLayout = LEGACY_LAYOUT,
): CloudFrontParser {
  return new W3cParser(needs, layout);
}
