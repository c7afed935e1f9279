/**
 * Compiled rule filters: one predicate per rule over a parsed request.
 */
import type { FieldNeeds, ParsedRequest, Rule } from './types';

/** A rule's request filter; `null` when the rule matches every request. */
export type RequestFilter = ((req: ParsedRequest) => boolean) | null;

/** Which request fields the given rules need decoded. */
export function fieldNeeds(rules: readonly Rule[]): FieldNeeds {
  const path = rules.some((r) => r.path !== undefined);
  const bytes = rules.every((r) => r.path === undefined || pathPrefixBytes(r.path) !== null);
  return {
    method: rules.some((r) => r.methods !== undefined),
    path,
    pathBytes: path && bytes ? true : undefined,
    host: rules.some((r) => r.host !== undefined),
    status: rules.some((r) => r.status !== undefined),
  };
}

/**
 * The UTF-8 bytes of a path prefix when testing them against a path's raw
 * bytes answers exactly as testing the prefix against the decoded path;
 * else null. That holds for well-formed text without U+FFFD: decoded text
 * starts with such a prefix only where its characters come from valid
 * sequences, which are exactly the prefix's bytes. A prefix with U+FFFD
 * (which invalid bytes decode to) or a lone surrogate is tested on text.
 */
export function pathPrefixBytes(prefix: string): Buffer | null {
  if (prefix.includes('\uFFFD')) return null;
  const bytes = Buffer.from(prefix, 'utf8');
  return bytes.toString('utf8') === prefix ? bytes : null;
}

/** Whether `buf` from `start` to `end` begins with `prefix`. */
function startsWithBytes(buf: Buffer, start: number, end: number, prefix: Buffer): boolean {
  const n = prefix.length;
  if (end - start < n) return false;
  for (let i = 0; i < n; i++) if (buf[start + i] !== prefix[i]) return false;
  return true;
}

/** A path-prefix check over a request's decoded path or its raw bytes. */
function pathFilter(prefix: string): (req: ParsedRequest) => boolean {
  const bytes = pathPrefixBytes(prefix);
  return (req) => {
    const buf = req.pathBuf;
    if (buf != null) {
      const start = req.pathStart!;
      const end = req.pathEnd!;
      return bytes !== null
        ? startsWithBytes(buf, start, end, bytes)
        : buf.toString('utf8', start, end).startsWith(prefix);
    }
    const path = req.path;
    return path !== null ? path.startsWith(prefix) : false;
  };
}

/**
 * Whether `host` (lower case, no port) matches a rule's host pattern:
 * exact, or `*.suffix` for strict subdomains of `suffix`.
 */
export function hostMatches(pattern: string, host: string): boolean {
  if (pattern.startsWith('*.')) {
    const suffix = pattern.slice(1);
    return host.length > suffix.length && host.endsWith(suffix);
  }
  return host === pattern;
}

function statusFilter(status: readonly (number | string)[]): (code: number) => boolean {
  const exact = new Set<number>();
  const classes = new Set<number>();
  for (const s of status) {
    if (typeof s === 'number') exact.add(s);
    else classes.add(Number(s[0]));
  }
  return (code) => exact.has(code) || classes.has(Math.floor(code / 100));
}

/**
 * Compiles a rule's filters into one predicate. A request without a method
 * or path (`- - -`, TCP listener lines) matches only rules without a
 * method/path filter; a status `-` matches no status filter.
 */
export function compileFilter(rule: Rule): RequestFilter {
  const checks: ((req: ParsedRequest) => boolean)[] = [];
  if (rule.methods !== undefined) {
    const methods = new Set(rule.methods);
    checks.push((req) => req.method !== null && methods.has(req.method));
  }
  if (rule.path !== undefined) {
    checks.push(pathFilter(rule.path));
  }
  if (rule.host !== undefined) {
    const pattern = rule.host;
    checks.push((req) => req.host !== null && hostMatches(pattern, req.host));
  }
  if (rule.status !== undefined) {
    const match = statusFilter(rule.status);
    checks.push((req) => req.status !== null && match(req.status));
  }
  if (checks.length === 0) return null;
  if (checks.length === 1) return checks[0]!;
  return (req) => {
    for (const check of checks) if (!check(req)) return false;
    return true;
  };
}
