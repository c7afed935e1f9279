import { describe, expect, it } from 'vitest';
import { compileFilter, fieldNeeds, hostMatches } from '../../lambda/core/rules';
import type { ParsedRequest, Rule } from '../../lambda/core/types';

const base: Rule = { name: 'r', threshold: 1, windowMinutes: 1, ipv4Prefix: 32, ipv6Prefix: 64 };

function req(over: Partial<ParsedRequest> = {}): ParsedRequest {
  return {
    ip: '192.0.2.1',
    minute: 0,
    method: 'GET',
    path: '/index.html',
    host: 'www.example.com',
    status: 200,
    ...over,
  };
}

describe('hostMatches', () => {
  it('matches strict subdomains only when the pattern is a wildcard', () => {
    expect(hostMatches('*.example.com', 'a.example.com')).toBe(true);
    expect(hostMatches('*.example.com', 'a.b.example.com')).toBe(true);
    expect(hostMatches('*.example.com', 'example.com')).toBe(false);
    expect(hostMatches('*.example.com', 'badexample.com')).toBe(false);
  });
  it('matches exactly when the pattern has no wildcard', () => {
    expect(hostMatches('example.com', 'example.com')).toBe(true);
    expect(hostMatches('example.com', 'www.example.com')).toBe(false);
  });
});

describe('compileFilter', () => {
  it('returns null when the rule has no filters', () => {
    expect(compileFilter(base)).toBeNull();
  });
  it('matches methods and path prefixes case-sensitively', () => {
    const f = compileFilter({ ...base, methods: ['POST'], path: '/login' })!;
    expect(f(req({ method: 'POST', path: '/login?x' }))).toBe(true);
    expect(f(req({ method: 'POST', path: '/Login' }))).toBe(false);
    expect(f(req({ method: 'GET', path: '/login' }))).toBe(false);
  });
  it('never matches a request without method or path against such filters', () => {
    expect(compileFilter({ ...base, methods: ['GET'] })!(req({ method: null }))).toBe(false);
    expect(compileFilter({ ...base, path: '/' })!(req({ path: null }))).toBe(false);
  });
  it('matches status codes and classes, and never a missing status', () => {
    const f = compileFilter({ ...base, status: ['4xx', 503] })!;
    expect(f(req({ status: 404 }))).toBe(true);
    expect(f(req({ status: 499 }))).toBe(true);
    expect(f(req({ status: 503 }))).toBe(true);
    expect(f(req({ status: 500 }))).toBe(false);
    expect(f(req({ status: null }))).toBe(false);
  });
  it('matches hosts and never a missing host', () => {
    const f = compileFilter({ ...base, host: '*.example.com' })!;
    expect(f(req())).toBe(true);
    expect(f(req({ host: null }))).toBe(false);
  });
});

describe('fieldNeeds', () => {
  it('asks only for the fields some rule filters on', () => {
    expect(fieldNeeds([base, { ...base, status: ['4xx'] }])).toEqual({
      method: false,
      path: false,
      host: false,
      status: true,
    });
  });
});
