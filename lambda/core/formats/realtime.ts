/**
 * CloudFront real-time log records (DESIGN section 8): one record per
 * request in a Kinesis data stream, tab-separated values of the real-time
 * log config's fields. CloudFront always writes the chosen fields in its
 * own fixed order, not in the order the config lists them ("Creating a
 * Kinesis Data Streams consumer", CloudFront Developer Guide, real-time
 * logs), so the columns are mapped by name from {@link REALTIME_FIELD_ORDER}.
 *
 * Same discipline as the W3C parser: one pass over the record's bytes, no
 * regex, no split, strings decoded only for the fields the rules need. A
 * record must hold exactly one value per configured field: a record
 * written under another field list (the config changed while records were
 * in the stream) is rejected rather than read with its columns shifted.
 */

import { MAX_LINE_BYTES } from '../lines';
import type { EdgebanConfig, FieldNeeds, LineParser, ParsedRequest } from '../types';
import {
  CF_REJECT,
  hostOf,
  latin1,
  methodOf,
  minuteFromEpochSeconds,
  pathOf,
  readClient,
  statusOf,
} from './cloudfront';

/**
 * Every real-time log field, in the order CloudFront writes them
 * (CloudFront Developer Guide, "Real-time log configuration fields").
 */
export const REALTIME_FIELD_ORDER: readonly string[] = [
  'timestamp',
  'c-ip',
  'time-to-first-byte',
  'sc-status',
  'sc-bytes',
  'cs-method',
  'cs-protocol',
  'cs-host',
  'cs-uri-stem',
  'cs-bytes',
  'x-edge-location',
  'x-edge-request-id',
  'x-host-header',
  'time-taken',
  'cs-protocol-version',
  'c-ip-version',
  'cs-user-agent',
  'cs-referer',
  'cs-cookie',
  'cs-uri-query',
  'x-edge-response-result-type',
  'x-forwarded-for',
  'ssl-protocol',
  'ssl-cipher',
  'x-edge-result-type',
  'fle-encrypted-fields',
  'fle-status',
  'sc-content-type',
  'sc-content-len',
  'sc-range-start',
  'sc-range-end',
  'c-port',
  'x-edge-detailed-result-type',
  'c-country',
  'cs-accept-encoding',
  'cs-accept',
  'cache-behavior-path-pattern',
  'cs-headers',
  'cs-header-names',
  'cs-headers-count',
];

/** Fields every edgeban real-time log config carries. */
export const REALTIME_BASE_FIELDS: readonly string[] = [
  'timestamp',
  'c-ip',
  'sc-status',
  'cs-method',
  'cs-uri-stem',
  // Duplicates inside a batch (CloudFront's producer retries) are dropped by it.
  'x-edge-request-id',
];

/** Rejection reasons of real-time records, one line each (CloudFront's row reasons too). */
export const REALTIME_REJECT = {
  ...CF_REJECT,
  fieldCount: 'wrong field count',
  tooLong: 'record too long',
  nul: 'NUL byte in record',
} as const;

/** The field list is not one edgeban can count from. */
export class RealtimeFieldsError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'RealtimeFieldsError';
  }
}

/**
 * The fields of edgeban's real-time log config for `config`, in
 * CloudFront's order: the base fields, plus `x-host-header` when a rule
 * filters on host.
 */
export function realtimeFields(config: Pick<EdgebanConfig, 'rules'>): string[] {
  const wanted = new Set(REALTIME_BASE_FIELDS);
  if (config.rules.some((r) => r.host !== undefined)) wanted.add('x-host-header');
  return REALTIME_FIELD_ORDER.filter((f) => wanted.has(f));
}

/** A real-time record parser; also yields the request id of the record it last parsed. */
export interface RealtimeParser extends LineParser {
  /** The configured fields, in record order. */
  readonly fields: readonly string[];
  /** `x-edge-request-id` of the last record parsed without rejection, or null. */
  requestId(): string | null;
}

const TAB = 9;
const LF = 10;
const CR = 13;
const QUERY = 63;
const DASH = 45;

class Parser implements RealtimeParser {
  readonly fields: readonly string[];
  private readonly needs: FieldNeeds;
  private readonly ipCol: number;
  private readonly tsCol: number;
  private readonly methodCol: number;
  private readonly pathCol: number;
  private readonly statusCol: number;
  private readonly hostHeaderCol: number;
  private readonly hostCol: number;
  private readonly idCol: number;
  /** Start and end of every column of the current record. */
  private readonly fs: Int32Array;
  private readonly fe: Int32Array;
  private buf: Buffer = Buffer.alloc(0);
  private hasId = false;

  constructor(needs: FieldNeeds, fields: readonly string[]) {
    this.needs = needs;
    this.fields = [...fields];
    const at = (name: string): number => fields.indexOf(name);
    this.ipCol = at('c-ip');
    this.tsCol = at('timestamp');
    if (this.ipCol < 0) throw new RealtimeFieldsError('real-time log fields lack c-ip');
    if (this.tsCol < 0) throw new RealtimeFieldsError('real-time log fields lack timestamp');
    this.methodCol = at('cs-method');
    this.pathCol = at('cs-uri-stem');
    this.statusCol = at('sc-status');
    this.hostHeaderCol = at('x-host-header');
    this.hostCol = at('cs-host');
    this.idCol = at('x-edge-request-id');
    this.fs = new Int32Array(fields.length);
    this.fe = new Int32Array(fields.length);
  }

  requestId(): string | null {
    if (!this.hasId || this.idCol < 0) return null;
    const s = this.fs[this.idCol]!;
    const e = this.fe[this.idCol]!;
    if (e === s || (e - s === 1 && this.buf[s] === DASH)) return null;
    return latin1(this.buf, s, e);
  }

  parse(buf: Buffer, start: number, end: number, out: ParsedRequest): string | null {
    this.hasId = false;
    // CloudFront ends each record with a newline.
    let stop = end;
    if (stop > start && buf[stop - 1] === LF) stop--;
    if (stop > start && buf[stop - 1] === CR) stop--;
    if (stop - start > MAX_LINE_BYTES) return REALTIME_REJECT.tooLong;
    const nul = buf.indexOf(0, start);
    if (nul >= 0 && nul < stop) return REALTIME_REJECT.nul;

    const fs = this.fs;
    const fe = this.fe;
    const n = this.fields.length;
    let s = start;
    for (let col = 0; ; col++) {
      let tab = buf.indexOf(TAB, s);
      if (tab < 0 || tab > stop) tab = stop;
      if (col >= n) return REALTIME_REJECT.fieldCount;
      fs[col] = s;
      fe[col] = tab;
      if (tab === stop) {
        if (col !== n - 1) return REALTIME_REJECT.fieldCount;
        break;
      }
      s = tab + 1;
    }

    if (!readClient(buf, fs[this.ipCol]!, fe[this.ipCol]!, out, this.needs.addressValue !== true)) {
      return REALTIME_REJECT.client;
    }
    const minute = minuteFromEpochSeconds(buf, fs[this.tsCol]!, fe[this.tsCol]!);
    if (minute < 0) return REALTIME_REJECT.time;

    let status: number | null = null;
    if (this.statusCol >= 0) {
      const ss = fs[this.statusCol]!;
      const se = fe[this.statusCol]!;
      status = statusOf(buf, ss, se);
      if (status === null && !(se - ss === 1 && buf[ss] === DASH)) return REALTIME_REJECT.status;
    }
    out.minute = minute;

    const needs = this.needs;
    if (needs.status) out.status = status;
    if (needs.method) {
      out.method =
        this.methodCol >= 0 ? methodOf(buf, fs[this.methodCol]!, fe[this.methodCol]!) : null;
    }
    if (needs.path) {
      if (this.pathCol >= 0) {
        // Unlike standard logs, the real-time cs-uri-stem carries the query string.
        const ps = fs[this.pathCol]!;
        let pe = fe[this.pathCol]!;
        const q = buf.indexOf(QUERY, ps);
        if (q >= 0 && q < pe) pe = q;
        out.path = pathOf(buf, ps, pe);
      } else {
        out.path = null;
      }
    }
    if (needs.host) {
      let host: string | null = null;
      if (this.hostHeaderCol >= 0) {
        host = hostOf(buf, fs[this.hostHeaderCol]!, fe[this.hostHeaderCol]!);
      }
      if (host === null && this.hostCol >= 0) {
        host = hostOf(buf, fs[this.hostCol]!, fe[this.hostCol]!);
      }
      out.host = host;
    }
    this.buf = buf;
    this.hasId = true;
    return null;
  }
}

/**
 * Builds the parser of real-time records written under `fields`.
 *
 * @param needs which optional request fields the rules need decoded
 * @param fields the real-time log config's fields (any order: CloudFront's is used)
 * @throws RealtimeFieldsError when the fields lack `c-ip` or `timestamp`
 * @example
 * const parser = createRealtimeParser(fieldNeeds(config.rules), realtimeFields(config));
 * const reason = parser.parse(record, 0, record.length, out); // null: `out` holds the request
 */
export function createRealtimeParser(needs: FieldNeeds, fields: readonly string[]): RealtimeParser {
  return new Parser(needs, recordOrder(fields));
}

/**
 * Fields in the order CloudFront writes them: known fields by
 * {@link REALTIME_FIELD_ORDER}, fields newer than that list after them in
 * the order given (CloudFront appends new fields to its list).
 */
export function recordOrder(fields: readonly string[]): string[] {
  const unique = [...new Set(fields)];
  const rank = (f: string): number => {
    const i = REALTIME_FIELD_ORDER.indexOf(f);
    return i < 0 ? REALTIME_FIELD_ORDER.length + unique.indexOf(f) : i;
  };
  return unique.sort((a, b) => rank(a) - rank(b));
}
