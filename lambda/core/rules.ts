/**
 * Compiled rule filters: one predicate per rule over a parsed request.
 */
import type { FieldNeeds, ParsedRequest, Rule } from './types';

/** A rule's request filter; `null` when the rule matches every request. */
export type RequestFilter = ((req: ParsedRequest) => boolean) | null;

/** Which request fields the given rules need decoded. */
export function fieldNeeds(rules: readonly Rule[]): FieldNeeds {
  return {
    method: rules.some((r) => r.methods !== undefined),
    path: rules.some((r) => r.path !== undefined),
    host: rules.some((r) => r.host !== undefined),
    status: rules.some((r) => r.status !== undefined),
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
    const prefix = rule.path;
    checks.push((req) => req.path !== null && req.path.startsWith(prefix));
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
