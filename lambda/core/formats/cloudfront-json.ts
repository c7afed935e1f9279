/**
 * CloudFront standard logging v2 as JSON lines: one JSON object per line,
 * every value a string, field names as in the W3C form (`c-ip`, `date`,
 * `time`, `timestamp(ms)`, `cs-method`, `cs-uri-stem`, `sc-status`,
 * `x-host-header`, `cs(Host)`). The time is `timestamp(ms)`, else `date` +
 * `time`, else `timestamp` (epoch seconds).
 *
 * This format is rare next to legacy W3C files, so `JSON.parse` per line is
 * accepted here; the values are then decoded with the W3C parser's helpers.
 */
import { canonicalIp, ipv4ToNumber, registerAddressCache } from '../ip';
import type { FieldNeeds, LineParser, ParsedRequest } from '../types';
import {
  CF_REJECT,
  hostOf,
  methodOf,
  minuteFromEpochMs,
  minuteFromEpochSeconds,
  pathOf,
  statusOf,
} from './cloudfront';
import { minuteFromDateTime } from './time';

/** Rejection reasons specific to JSON lines. */
export const JSON_REJECT = {
  json: 'not a JSON object',
  clientIp: 'no c-ip field',
} as const;

/** Field names that mark an object as a CloudFront log record. */
const CLOUDFRONT_KEYS = [
  'c-ip',
  'date',
  'time',
  'timestamp(ms)',
  'timestamp',
  'x-edge-location',
  'x-edge-request-id',
  'cs-method',
  'cs-uri-stem',
  'sc-status',
  'x-host-header',
  'cs(Host)',
];

/** Parses a line as a JSON object, or returns null. */
export function parseJsonObject(
  buf: Buffer,
  start: number,
  end: number,
): Record<string, unknown> | null {
  let value: unknown;
  try {
    value = JSON.parse(buf.toString('utf8', start, end));
  } catch {
    return null;
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return null;
  return value as Record<string, unknown>;
}

/** What a JSON line shows, for format detection. */
export interface JsonLineShape {
  /** The object has at least one CloudFront field name. */
  readonly cloudfront: boolean;
  readonly hasClientIp: boolean;
  readonly hasTime: boolean;
}

/** The shape of a JSON line, or null when it is not a JSON object. */
export function jsonLineShape(buf: Buffer, start: number, end: number): JsonLineShape | null {
  const obj = parseJsonObject(buf, start, end);
  if (obj === null) return null;
  return {
    cloudfront: CLOUDFRONT_KEYS.some((k) => k in obj),
    hasClientIp: typeof obj['c-ip'] === 'string',
    hasTime:
      typeof obj['timestamp(ms)'] === 'string' ||
      (typeof obj.date === 'string' && typeof obj.time === 'string') ||
      typeof obj.timestamp === 'string',
  };
}

/** Decodes a string value with one of the byte helpers (values are short). */
function viaBytes<T>(value: unknown, decode: (b: Buffer, s: number, e: number) => T): T | null {
  if (typeof value !== 'string') return null;
  const bytes = Buffer.from(value, 'utf8');
  return decode(bytes, 0, bytes.length);
}

function jsonMinute(obj: Record<string, unknown>): number {
  const ms = obj['timestamp(ms)'];
  if (typeof ms === 'string') return viaBytes(ms, minuteFromEpochMs) ?? -1;
  const date = obj.date;
  const time = obj.time;
  if (typeof date === 'string' && typeof time === 'string') {
    const bytes = Buffer.from(`${date} ${time}`, 'latin1');
    return minuteFromDateTime(bytes, 0, date.length, date.length + 1, bytes.length);
  }
  const seconds = obj.timestamp;
  if (typeof seconds === 'string') return viaBytes(seconds, minuteFromEpochSeconds) ?? -1;
  return -1;
}

const ipMemo = new Map<string, string | null>();
registerAddressCache(ipMemo);

class JsonParser implements LineParser {
  constructor(private readonly needs: FieldNeeds) {}

  parse(buf: Buffer, start: number, end: number, out: ParsedRequest): string | null {
    const obj = parseJsonObject(buf, start, end);
    if (obj === null) return JSON_REJECT.json;
    const raw = obj['c-ip'];
    if (typeof raw !== 'string') return JSON_REJECT.clientIp;
    let ip = ipMemo.get(raw);
    if (ip === undefined) {
      if (ipMemo.size >= 1 << 16) ipMemo.clear();
      ip = canonicalIp(raw);
      ipMemo.set(raw, ip);
    }
    if (ip === null) return CF_REJECT.client;
    const minute = jsonMinute(obj);
    if (minute < 0) return CF_REJECT.time;
    const rawStatus = obj['sc-status'];
    const status = viaBytes(rawStatus, statusOf);
    if (status === null && typeof rawStatus === 'string' && rawStatus !== '-') {
      return CF_REJECT.status;
    }
    out.ip = ip;
    out.ipv4 = ipv4ToNumber(ip);
    out.minute = minute;
    const needs = this.needs;
    if (needs.method) out.method = viaBytes(obj['cs-method'], methodOf);
    if (needs.path) out.path = viaBytes(obj['cs-uri-stem'], pathOf);
    if (needs.status) out.status = status;
    if (needs.host) {
      out.host = viaBytes(obj['x-host-header'], hostOf) ?? viaBytes(obj['cs(Host)'], hostOf);
    }
    return null;
  }
}

/**
 * Builds the parser of a CloudFront v2 JSON-lines file.
 *
 * @param needs which optional fields the rules need decoded
 * @example
 * const parser = createCloudFrontJsonParser({ method: true, path: false, host: false, status: false });
 */
export function createCloudFrontJsonParser(needs: FieldNeeds): LineParser {
  return new JsonParser(needs);
}
