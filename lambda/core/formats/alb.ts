/**
 * Application Load Balancer access logs, and the byte-level helpers the
 * Classic ELB parser (`./elb`) shares.
 *
 * An ALB entry is one line of space-separated fields; some are quoted and
 * may hold spaces and backslash escapes (`\"`, `\\`). Fields are only ever
 * appended, so a line has 20 to 36+ fields:
 *
 * ```text
 *  0 type  1 time  2 elb  3 client:port  4 target:port  5-7 processing times
 *  8 elb_status_code  9 target_status_code  10 received_bytes  11 sent_bytes
 * 12 "request"  13 "user_agent"  14 ssl_cipher  15 ssl_protocol
 * 16 target_group_arn  17 "trace_id"  18 "domain_name"  19 "chosen_cert_arn"
 * 20 matched_rule_priority  21 request_creation_time  22 ... (ignored)
 * ```
 *
 * The parser walks the bytes once, up to `request_creation_time`, and
 * decodes strings only for the fields the rules need: no regex, no split,
 * no string of the whole line. Short fields are scanned with a byte loop,
 * long ones with `Buffer#indexOf` (native, but with a call cost that only
 * pays off past a couple of dozen bytes).
 */
import type { FieldNeeds, LineParser, ParsedRequest } from '../types';
import { readClient } from './cloudfront';
import { minuteFromIso } from './time';

const SPACE = 32;
const QUOTE = 34;
const HASH = 35;
const DASH = 45;
const DOT = 46;
const SLASH = 47;
const COLON = 58;
const QUESTION = 63;
const AT = 64;
const OPEN_BRACKET = 91;
const BACKSLASH = 92;
const CLOSE_BRACKET = 93;
const LETTER_T = 84;
const LETTER_Z = 90;

/** Rejection reasons, one line each. */
export const REJECT = {
  truncated: 'truncated row',
  client: 'invalid client address',
  timestamp: 'invalid timestamp',
  status: 'invalid status code',
  request: 'malformed request field',
} as const;

/** What {@link classifyElbFamilyLine} recognises. */
export type ElbFamilyKind = 'alb' | 'elb' | 'nlb-tls' | 'alb-connection';

// ---------------------------------------------------------------------------
// Field scanning. Each `skip*` function takes the start of a field and
// returns the start of the next one (`end` when there is none, -1 when a
// quoted field is not closed), and leaves the end of the field it skipped
// in `fieldEnd`: module state keeps the hot path free of allocations.
// ---------------------------------------------------------------------------

let fieldEnd = 0;

/** The end (exclusive) of the field skipped by the last `skip*` call. */
export function lastFieldEnd(): number {
  return fieldEnd;
}

/** Skips a short unquoted field with a byte loop. */
export function skipToken(buf: Buffer, p: number, end: number): number {
  while (p < end && buf[p] !== SPACE) p++;
  fieldEnd = p;
  return p < end ? p + 1 : end;
}

/** Skips a long unquoted field with `indexOf`. */
export function skipLongToken(buf: Buffer, p: number, end: number): number {
  let i = buf.indexOf(SPACE, p);
  if (i < 0 || i > end) i = end;
  fieldEnd = i;
  return i < end ? i + 1 : end;
}

/**
 * Skips a quoted field that starts at `p` (a `"`). Inside, a backslash
 * escapes the next byte. The field ends at its closing quote even when no
 * space follows it (the next field then starts right after the quote).
 */
function skipQuoted(buf: Buffer, p: number, end: number): number {
  let q: number;
  if (buf[p + 1] === DASH && buf[p + 2] === QUOTE && p + 2 < end) {
    q = p + 2;
  } else {
    q = buf.indexOf(QUOTE, p + 1);
    // A quote after an odd run of backslashes is escaped.
    while (q > 0 && q < end && buf[q - 1] === BACKSLASH) {
      let k = q - 1;
      while (buf[k - 1] === BACKSLASH) k--;
      if (((q - k) & 1) === 0) break;
      q = buf.indexOf(QUOTE, q + 1);
    }
    if (q < 0 || q >= end) return -1;
  }
  fieldEnd = q + 1;
  return buf[q + 1] === SPACE ? q + 2 : q + 1;
}

/** Skips a field, quoted or not; unquoted ones are expected to be short. */
export function skipField(buf: Buffer, p: number, end: number): number {
  return buf[p] === QUOTE ? skipQuoted(buf, p, end) : skipToken(buf, p, end);
}

/** Skips a field, quoted or not; unquoted ones are expected to be long. */
export function skipLongField(buf: Buffer, p: number, end: number): number {
  return buf[p] === QUOTE ? skipQuoted(buf, p, end) : skipLongToken(buf, p, end);
}

/**
 * Skips a field that is usually an ALB timestamp
 * (`2024-05-01T10:00:00.123456Z`, 27 bytes): its separators are checked in
 * place instead of scanning, else it is scanned. The value itself is
 * validated by whoever decodes it.
 */
function skipTime(buf: Buffer, p: number, end: number): number {
  const e = p + 27;
  if (
    e <= end &&
    (e === end || buf[e] === SPACE) &&
    buf[p + 26] === LETTER_Z &&
    buf[p + 19] === DOT &&
    buf[p + 10] === LETTER_T &&
    buf[p + 16] === COLON &&
    buf[p + 13] === COLON &&
    buf[p + 7] === DASH &&
    buf[p + 4] === DASH
  ) {
    fieldEnd = e;
    return e < end ? e + 1 : end;
  }
  return skipField(buf, p, end);
}

// ---------------------------------------------------------------------------
// Field values
// ---------------------------------------------------------------------------

/**
 * The colon of a `client:port` field: the last one, since ALB and Classic
 * ELB write IPv6 without brackets. -1 when the port is not 1 to 5 digits
 * up to 65535.
 */
function portColon(buf: Buffer, start: number, end: number): number {
  let colon = end - 1;
  while (colon > start && buf[colon] !== COLON) colon--;
  if (colon <= start) return -1;
  const portLen = end - colon - 1;
  if (portLen < 1 || portLen > 5) return -1;
  let port = 0;
  for (let i = colon + 1; i < end; i++) {
    const d = (buf[i] ?? 0) - 48;
    if (d < 0 || d > 9) return -1;
    port = port * 10 + d;
  }
  return port > 65535 ? -1 : colon;
}

/** A status field: three digits (100 to 999) → the number, `-` → null, anything else → -1. */
export function statusCode(buf: Buffer, start: number, end: number): number | null {
  const len = end - start;
  if (len === 1 && buf[start] === DASH) return null;
  if (len !== 3) return -1;
  const a = (buf[start] ?? 0) - 48;
  const b = (buf[start + 1] ?? 0) - 48;
  const c = (buf[start + 2] ?? 0) - 48;
  if (a < 1 || a > 9 || b < 0 || b > 9 || c < 0 || c > 9) return -1;
  return a * 100 + b * 10 + c;
}

/**
 * {@link minuteFromIso} behind a one-entry cache. Consecutive log lines
 * nearly always fall in the same minute: when the first 16 bytes
 * (`YYYY-MM-DDTHH:MM`) equal those of the last valid timestamp, only the
 * rest (`:SS`, an optional `.fraction`, `Z`) is checked, by the same rules.
 */
export class MinuteCache {
  private readonly prefix = new Uint8Array(16);
  private minute = -1;

  /** Epoch minute of the ISO timestamp in `buf[s, e)`, or -1 when invalid. */
  get(buf: Buffer, s: number, e: number): number {
    if (this.minute >= 0 && e - s >= 20 && buf[e - 1] === LETTER_Z && buf[s + 16] === COLON) {
      const prefix = this.prefix;
      let same = true;
      // Minute digits first: they are the ones that change.
      for (let i = 15; i >= 0; i--) {
        if (prefix[i] !== buf[s + i]) {
          same = false;
          break;
        }
      }
      if (same) {
        const tens = (buf[s + 17] ?? 0) - 48;
        const units = (buf[s + 18] ?? 0) - 48;
        if (tens < 0 || tens > 6 || units < 0 || units > 9 || tens * 10 + units > 60) return -1;
        const rest = s + 19;
        if (rest === e - 1) return this.minute;
        if (buf[rest] !== DOT || rest + 1 >= e - 1) return -1;
        for (let i = rest + 1; i < e - 1; i++) {
          const c = buf[i] ?? 0;
          if (c < 48 || c > 57) return -1;
        }
        return this.minute;
      }
    }
    const minute = minuteFromIso(buf, s, e);
    if (minute >= 0) {
      for (let i = 0; i < 16; i++) this.prefix[i] = buf[s + i] ?? 0;
      this.minute = minute;
    }
    return minute;
  }
}

// ---------------------------------------------------------------------------
// The request field: `"METHOD scheme://host:port/path?query VERSION"`.
// ---------------------------------------------------------------------------

function bytesEqual(buf: Buffer, s: number, text: string): boolean {
  for (let i = 0; i < text.length; i++) {
    if (buf[s + i] !== text.charCodeAt(i)) return false;
  }
  return true;
}

const COMMON_METHODS = [
  'GET',
  'POST',
  'HEAD',
  'PUT',
  'DELETE',
  'OPTIONS',
  'PATCH',
  'TRACE',
  'CONNECT',
];

/** The method as logged (common ones interned, no allocation), or null for `-`. */
function methodString(buf: Buffer, s: number, e: number): string | null {
  const len = e - s;
  if (len === 3 && buf[s] === 71 && buf[s + 1] === 69 && buf[s + 2] === 84) return 'GET';
  if (len === 1 && buf[s] === DASH) return null;
  for (const m of COMMON_METHODS) {
    if (m.length === len && bytesEqual(buf, s, m)) return m;
  }
  return latin1(buf, s, e);
}

/**
 * Host strings through a one-entry cache: consecutive lines of an access
 * log nearly always name the same host, so its string is reused instead
 * of decoded again.
 */
class HostCache {
  private readonly bytes = new Uint8Array(256);
  private len = -1;
  private value = '';

  /** The lower-case string of `buf[s, e)`. */
  get(buf: Buffer, s: number, e: number): string {
    const len = e - s;
    if (len === this.len) {
      let i = 0;
      while (i < len && this.bytes[i] === buf[s + i]) i++;
      if (i === len) return this.value;
    }
    const text = utf8(buf, s, e);
    let upper = false;
    for (let i = s; i < e; i++) {
      const c = buf[i] ?? 0;
      if (c >= 65 && c <= 90) {
        upper = true;
        break;
      }
    }
    const value = upper ? text.toLowerCase() : text;
    if (len <= this.bytes.length) {
      for (let i = 0; i < len; i++) this.bytes[i] = buf[s + i] ?? 0;
      this.len = len;
      this.value = value;
    }
    return value;
  }
}

/** Node's Buffer decoders without `toString`'s argument handling. */
interface BufferSlices {
  latin1Slice(start: number, end: number): string;
  utf8Slice(start: number, end: number): string;
}

function utf8(buf: Buffer, s: number, e: number): string {
  return (buf as unknown as BufferSlices).utf8Slice(s, e);
}

function latin1(buf: Buffer, s: number, e: number): string {
  return (buf as unknown as BufferSlices).latin1Slice(s, e);
}

/** A copy of `buf[s, e)` with its backslash escapes removed. */
function unescapeBytes(buf: Buffer, s: number, e: number): Buffer {
  const out = Buffer.allocUnsafe(e - s);
  let n = 0;
  for (let i = s; i < e; i++) {
    let c = buf[i] ?? 0;
    if (c === BACKSLASH && i + 1 < e) {
      i++;
      c = buf[i] ?? 0;
    }
    out[n++] = c;
  }
  return out.subarray(0, n);
}

/** Whether `buf[at, at + 9)` is ` HTTP/x.y` (x, y any bytes but a space). */
function isHttpVersion(buf: Buffer, at: number): boolean {
  return (
    buf[at] === SPACE &&
    buf[at + 1] === 72 &&
    buf[at + 2] === 84 &&
    buf[at + 3] === 84 &&
    buf[at + 4] === 80 &&
    buf[at + 5] === SLASH &&
    buf[at + 6] !== SPACE &&
    buf[at + 7] !== SPACE &&
    buf[at + 8] !== SPACE
  );
}

/**
 * Decodes the content of a quoted request field into `out.method`,
 * `out.path` and `out.host`, each only when `needs` asks (null
 * otherwise). The request is split on its first and last spaces into
 * method, URL and version; the URL's host is lower-cased without its port
 * (IPv6 keeps its brackets); the path stops before `?` or `#`. A `-`
 * method or URL (`"- - -"`, TCP and SSL listeners) gives null. With
 * `needs.pathBytes` the path is handed out undecoded instead (`pathBuf`
 * from `pathStart` to `pathEnd`, the unescaped copy when the field had
 * escapes), for the rules' byte test.
 */
export class RequestDecoder {
  private readonly hosts = new HostCache();

  constructor(private readonly needs: FieldNeeds) {}

  /** Decodes `buf[s, e)`, the bytes between the request field's quotes. */
  decode(buf: Buffer, s: number, e: number, out: ParsedRequest): void {
    this.run(buf, s, e, out, true);
  }

  private run(buf: Buffer, s: number, e: number, out: ParsedRequest, raw: boolean): void {
    const needs = this.needs;
    out.method = null;
    out.path = null;
    out.host = null;
    if (needs.pathBytes === true) out.pathBuf = null;
    // Classic ELB TCP and SSL listeners log `"- - - "`.
    while (e > s && buf[e - 1] === SPACE) e--;
    let i = s;
    for (; i < e; i++) {
      const c = buf[i];
      if (c === SPACE) break;
      if (c === BACKSLASH && raw) {
        this.runUnescaped(buf, s, e, out);
        return;
      }
    }
    if (needs.method) out.method = methodString(buf, s, i);
    if ((!needs.path && !needs.host) || i >= e) return;

    // The URL ends at the last space, before the version.
    const urlS = i + 1;
    let urlE = e - 9;
    if (!(urlE > urlS && isHttpVersion(buf, urlE))) {
      urlE = e - 1;
      while (urlE > i && buf[urlE] !== SPACE) urlE--;
      if (urlE === i) urlE = e;
    }
    if (urlE <= urlS || (urlE - urlS === 1 && buf[urlS] === DASH)) return;

    // Absolute form `scheme://authority/path`, else the URL is the path.
    let k = urlS;
    while (k < urlE) {
      const c = buf[k];
      if (c === COLON || c === SLASH || c === QUESTION || c === HASH) break;
      k++;
    }
    let pathS = urlS;
    if (buf[k] === COLON && k + 2 < urlE && buf[k + 1] === SLASH && buf[k + 2] === SLASH) {
      // Load balancers write `scheme://` + Host header + `:port` + the
      // request target: the path starts at the first slash after `://`.
      const authS = k + 3;
      let authE = buf.indexOf(SLASH, authS);
      if (authE < 0 || authE > urlE) authE = urlE;
      pathS = authE;
      if (needs.host) {
        let hostS = authS;
        let hostEnd = authE;
        for (let j = authS; j < authE; j++) {
          const c = buf[j];
          if (c === AT) {
            hostS = j + 1;
          } else if (c === QUESTION || c === HASH) {
            hostEnd = j;
            break;
          } else if (c === BACKSLASH && raw) {
            this.runUnescaped(buf, s, e, out);
            return;
          }
        }
        let hostE = hostS;
        if (buf[hostS] === OPEN_BRACKET) {
          while (hostE < hostEnd && buf[hostE] !== CLOSE_BRACKET) hostE++;
          if (hostE < hostEnd) hostE++;
        } else {
          while (hostE < hostEnd && buf[hostE] !== COLON) hostE++;
        }
        if (hostE > hostS) out.host = this.hosts.get(buf, hostS, hostE);
      }
    }
    if (needs.path && pathS < urlE) {
      let pathE = pathS;
      for (; pathE < urlE; pathE++) {
        const c = buf[pathE];
        if (c === QUESTION || c === HASH) break;
        if (c === BACKSLASH && raw) {
          this.runUnescaped(buf, s, e, out);
          return;
        }
      }
      if (pathE > pathS) {
        if (needs.pathBytes !== true) out.path = utf8(buf, pathS, pathE);
        else {
          // Left undecoded: the rules test it as bytes (rules.ts, pathFilter).
          out.pathBuf = buf;
          out.pathStart = pathS;
          out.pathEnd = pathE;
        }
      }
    }
  }

  private runUnescaped(buf: Buffer, s: number, e: number, out: ParsedRequest): void {
    const plain = unescapeBytes(buf, s, e);
    this.run(plain, 0, plain.length, out, false);
  }
}

// ---------------------------------------------------------------------------
// Detection
// ---------------------------------------------------------------------------

const ALB_TYPES = ['http', 'https', 'h2', 'grpcs', 'ws', 'wss'];

function tokenIs(buf: Buffer, s: number, e: number, text: string): boolean {
  return e - s === text.length && bytesEqual(buf, s, text);
}

function allDigits(buf: Buffer, s: number, e: number): boolean {
  if (e <= s) return false;
  for (let i = s; i < e; i++) {
    const c = buf[i] ?? 0;
    if (c < 48 || c > 57) return false;
  }
  return true;
}

/** `YYYY-MM-DDTHH:MM:SS...` by shape only (the value is checked when parsing). */
function looksIsoTime(buf: Buffer, s: number, e: number): boolean {
  const shape = 'dddd-dd-ddTdd:dd:dd';
  if (e - s < shape.length) return false;
  for (let i = 0; i < shape.length; i++) {
    const c = buf[s + i] ?? 0;
    const want = shape.charCodeAt(i);
    if (want === 100 ? c < 48 || c > 57 : c !== want) return false;
  }
  return true;
}

/**
 * Which load-balancer log a line belongs to, by structure only (used to
 * detect a file's format from its first lines):
 * - `alb`: an ALB access log line, `http|https|h2|grpcs|ws|wss <time> app/...`;
 * - `elb`: a Classic ELB line, `<time> <name> <client:port> ...`;
 * - `nlb-tls`: an NLB TLS line, `tls <version> <time> ...`;
 * - `alb-connection`: an ALB connection log line,
 *   `<time> <client_ip> <client_port> <listener_port> ...`;
 * - null: anything else.
 *
 * Values are not validated: a line whose client address is invalid still
 * classifies by its layout (and is then rejected by the parser).
 */
export function classifyElbFamilyLine(
  buf: Buffer,
  start: number,
  end: number,
): ElbFamilyKind | null {
  const starts: number[] = [];
  const ends: number[] = [];
  let p = start;
  while (starts.length < 4 && p < end) {
    const next = skipField(buf, p, end);
    if (next < 0) break;
    starts.push(p);
    ends.push(fieldEnd);
    p = next;
  }
  if (starts.length < 3) return null;
  const s = (n: number): number => starts[n] ?? 0;
  const e = (n: number): number => ends[n] ?? 0;

  if (tokenIs(buf, s(0), e(0), 'tls')) {
    const version = e(1) - s(1) >= 3 && allDigits(buf, s(1), s(1) + 1) && buf[s(1) + 1] === DOT;
    return version && looksIsoTime(buf, s(2), e(2)) ? 'nlb-tls' : null;
  }
  if (starts.length < 4) return null;
  if (ALB_TYPES.some((type) => tokenIs(buf, s(0), e(0), type))) {
    const app = e(2) - s(2) > 4 && bytesEqual(buf, s(2), 'app/');
    return app && looksIsoTime(buf, s(1), e(1)) ? 'alb' : null;
  }
  if (!looksIsoTime(buf, s(0), e(0))) return null;
  if (allDigits(buf, s(2), e(2)) && allDigits(buf, s(3), e(3))) return 'alb-connection';
  for (let i = s(2); i < e(2); i++) if (buf[i] === COLON) return 'elb';
  return null;
}

// ---------------------------------------------------------------------------
// The ALB parser
// ---------------------------------------------------------------------------

/**
 * What the ALB and Classic ELB parsers share: the request decoder, the
 * minute cache, and the end of a row (client, minute and status checked,
 * then `out` filled).
 */
export abstract class ElbFamilyParser implements LineParser {
  protected readonly minutes = new MinuteCache();
  private readonly request: RequestDecoder | null;
  /** IPv4 clients get their text too (no {@link FieldNeeds.addressValue}). */
  private readonly text4: boolean;

  constructor(needs: FieldNeeds) {
    this.request = needs.method || needs.path || needs.host ? new RequestDecoder(needs) : null;
    this.text4 = needs.addressValue !== true;
  }

  abstract parse(buf: Buffer, start: number, end: number, out: ParsedRequest): string | null;

  /** Validates the fields found and fills `out`; `minute` is -1 when invalid. */
  protected emit(
    buf: Buffer,
    out: ParsedRequest,
    clientS: number,
    clientE: number,
    minute: number,
    statusS: number,
    statusE: number,
    reqS: number,
    reqE: number,
  ): string | null {
    const colon = portColon(buf, clientS, clientE);
    if (colon < 0 || !readClient(buf, clientS, colon, out, this.text4)) return REJECT.client;
    if (minute < 0) return REJECT.timestamp;
    const status = statusCode(buf, statusS, statusE);
    if (status === -1) return REJECT.status;
    out.minute = minute;
    out.status = status;
    if (this.request !== null) {
      this.request.decode(buf, reqS, reqE, out);
    } else {
      out.method = null;
      out.path = null;
      out.host = null;
    }
    return null;
  }
}

class AlbParser extends ElbFamilyParser {
  parse(buf: Buffer, start: number, end: number, out: ParsedRequest): string | null {
    const T = REJECT.truncated;
    // 0 type
    let p = skipToken(buf, start, end);
    if (p >= end) return T;
    // 1 time
    const timeS = p;
    p = skipTime(buf, p, end);
    const timeE = fieldEnd;
    if (p < 0 || p >= end) return T;
    // 2 elb
    p = skipLongToken(buf, p, end);
    if (p >= end) return T;
    // 3 client:port
    const clientS = p;
    p = skipToken(buf, p, end);
    const clientE = fieldEnd;
    // 4 target:port, 5-7 processing times
    for (let k = 4; k <= 7; k++) {
      if (p >= end) return T;
      p = skipToken(buf, p, end);
    }
    if (p >= end) return T;
    // 8 elb_status_code
    const statusS = p;
    p = skipToken(buf, p, end);
    const statusE = fieldEnd;
    // 9 target_status_code, 10 received_bytes, 11 sent_bytes
    for (let k = 9; k <= 11; k++) {
      if (p >= end) return T;
      p = skipToken(buf, p, end);
    }
    if (p >= end) return T;
    // 12 "request": the last field a row must have.
    if (buf[p] !== QUOTE) return REJECT.request;
    const reqS = p + 1;
    p = skipQuoted(buf, p, end);
    if (p < 0) return T;
    const reqE = fieldEnd - 1;
    let createdS = -1;
    let createdE = -1;
    if (p < end) {
      // 13 "user_agent"
      p = skipLongField(buf, p, end);
      if (p < 0) return T;
      // 14 ssl_cipher, 15 ssl_protocol and 16 target_group_arn are never
      // quoted: the next quote opens 17 "trace_id".
      const q = p < end ? buf.indexOf(QUOTE, p) : -1;
      if (q >= 0 && q < end) {
        // 17 "trace_id", 18 "domain_name", 19 "chosen_cert_arn"
        p = q;
        for (let k = 17; k <= 19 && p < end; k++) {
          p = skipLongField(buf, p, end);
          if (p < 0) return T;
        }
        // 20 matched_rule_priority
        if (p < end) p = skipField(buf, p, end);
        if (p < 0) return T;
        // 21 request_creation_time
        if (p < end) {
          createdS = p;
          p = skipTime(buf, p, end);
          if (p < 0) return T;
          createdE = fieldEnd;
        }
      }
    }

    let minute = createdS >= 0 ? this.minutes.get(buf, createdS, createdE) : -1;
    if (minute < 0) minute = this.minutes.get(buf, timeS, timeE);
    return this.emit(buf, out, clientS, clientE, minute, statusS, statusE, reqS, reqE);
  }
}

/**
 * A line parser for ALB access logs. `ip` and `minute` are always decoded
 * (minute from `request_creation_time` when present and valid, else
 * `time`), and `status` too (`elb_status_code`, validated on every line so
 * that a row is accepted or rejected the same way whatever the rules);
 * `method`, `path` and `host` only when `needs` asks, null otherwise.
 * A row must reach the `request` field (13 fields); later ones may be
 * missing, extra ones are ignored.
 *
 * @param needs which request fields the rules read
 * @example
 * const parser = createAlbParser({ method: true, path: true, host: false, status: true });
 * const reason = parser.parse(buf, lineStart, lineEnd, out); // null: `out` holds the request
 */
export function createAlbParser(needs: FieldNeeds): LineParser {
  return new AlbParser(needs);
}
