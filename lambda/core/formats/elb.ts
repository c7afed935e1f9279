/**
 * Classic Load Balancer (ELB) access logs.
 *
 * ```text
 *  0 timestamp  1 elb  2 client:port  3 backend:port|-  4-6 processing times
 *  7 elb_status_code  8 backend_status_code  9 received_bytes  10 sent_bytes
 * 11 "request"  12 "user_agent"  13 ssl_cipher  14 ssl_protocol
 * ```
 *
 * Lines written since 2015 have 15 fields; older ones end after `request`
 * (12 fields). TCP and SSL listeners log `-` statuses and a `"- - - "`
 * request. The parser reads up to the request field and ignores the rest.
 */
import type { FieldNeeds, LineParser, ParsedRequest } from '../types';
import { ElbFamilyParser, lastFieldEnd, REJECT, skipField, skipLongToken, skipToken } from './alb';

class ElbParser extends ElbFamilyParser {
  parse(buf: Buffer, start: number, end: number, out: ParsedRequest): string | null {
    const T = REJECT.truncated;
    // 0 timestamp
    let p = skipToken(buf, start, end);
    const timeE = lastFieldEnd();
    if (p >= end) return T;
    // 1 elb
    p = skipLongToken(buf, p, end);
    if (p >= end) return T;
    // 2 client:port
    const clientS = p;
    p = skipToken(buf, p, end);
    const clientE = lastFieldEnd();
    // 3 backend:port, 4-6 processing times
    for (let k = 3; k <= 6; k++) {
      if (p >= end) return T;
      p = skipToken(buf, p, end);
    }
    if (p >= end) return T;
    // 7 elb_status_code
    const statusS = p;
    p = skipToken(buf, p, end);
    const statusE = lastFieldEnd();
    // 8 backend_status_code, 9 received_bytes, 10 sent_bytes
    for (let k = 8; k <= 10; k++) {
      if (p >= end) return T;
      p = skipToken(buf, p, end);
    }
    if (p >= end) return T;
    // 11 "request", the last field read: later ones may be missing.
    if (buf[p] !== 34) return REJECT.request;
    const reqS = p + 1;
    if (skipField(buf, p, end) < 0) return T;
    const reqE = lastFieldEnd() - 1;

    const minute = this.minutes.get(buf, start, timeE);
    return this.emit(buf, out, clientS, clientE, minute, statusS, statusE, reqS, reqE);
  }
}

/**
 * A line parser for Classic ELB access logs: `ip`, `minute` (from
 * `timestamp`) and `status` (`elb_status_code`, validated on every line)
 * always; `method`, `path` and `host` from the request field only when
 * `needs` asks, null otherwise. Rows of 12 to 15+ fields are read.
 *
 * @example
 * const parser = createElbParser({ method: false, path: true, host: false, status: false });
 * const reason = parser.parse(buf, lineStart, lineEnd, out); // null, or why the line is rejected
 */
export function createElbParser(needs: FieldNeeds): LineParser {
  return new ElbParser(needs);
}
