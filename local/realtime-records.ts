/**
 * CloudFront real-time log records for the local cloud's scenario and
 * tests: what CloudFront puts in the Kinesis stream for each request, one
 * tab-separated record per hit, values in CloudFront's field order.
 */
import { createHash } from 'node:crypto';
import { recordOrder } from '../lambda/core/formats/realtime';

/** One request, as the scenario and tests describe it (the scenario's `Hit` fits). */
export interface RealtimeHit {
  readonly ip: string;
  /** Epoch milliseconds. */
  readonly at: number;
  readonly method?: string;
  readonly path?: string;
  readonly status?: number;
  readonly host?: string;
}

/** A request id in the shape CloudFront writes (56 base64 characters). */
export function edgeRequestId(hit: RealtimeHit, index: number, salt = ''): string {
  return createHash('sha256')
    .update(`${salt}|${hit.ip}|${hit.at}|${index}`)
    .digest('base64')
    .slice(0, 54)
    .concat('==');
}

/**
 * One record per hit under `fields`.
 * @param salt makes request ids differ between calls for the same hits
 */
export function realtimeRecords(
  hits: readonly RealtimeHit[],
  fields: readonly string[],
  salt = '',
): string[] {
  const order = recordOrder(fields);
  return hits.map((h, i) => {
    const host = h.host ?? 'www.example.com';
    const status = h.status ?? 200;
    const values: Record<string, string> = {
      timestamp: (h.at / 1000).toFixed(3),
      'c-ip': h.ip,
      'time-to-first-byte': '0.004',
      'sc-status': String(status),
      'sc-bytes': status === 200 ? '4821' : '512',
      'cs-method': h.method ?? 'GET',
      'cs-protocol': 'https',
      'cs-host': host,
      'cs-uri-stem': h.path ?? '/',
      'cs-bytes': '183',
      'x-edge-location': 'FRA56-P1',
      'x-edge-request-id': edgeRequestId(h, i, salt),
      'x-host-header': host,
      'time-taken': '0.004',
      'cs-protocol-version': 'HTTP/2.0',
      'c-ip-version': h.ip.includes(':') ? 'IPv6' : 'IPv4',
    };
    return `${order.map((f) => values[f] ?? '-').join('\t')}\n`;
  });
}
