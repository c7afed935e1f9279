/**
 * Fixtures of the end-to-end tests: log directories written by code
 * (CloudFront and ALB, plain and gzip, IPv4 and IPv6), config files, and
 * the CLI run in-process with its output captured.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { type Io, run } from '../../cli/main';
import { compareKeys, keyToCidr } from '../../lambda/core/ip';
import { albLog, cloudFrontLog, type Hit } from '../../local/scenario';

/** 2024-05-01T10:00:00Z in epoch ms. */
export const T0 = Date.UTC(2024, 4, 1, 10, 0, 0);
export const MINUTE = 60_000;

/** Output of one in-process CLI run. */
export interface CliRun {
  readonly code: number;
  readonly out: string;
  readonly err: string;
}

/** Runs `edgeban <argv>` in-process. */
export async function cli(argv: string[]): Promise<CliRun> {
  let out = '';
  let err = '';
  const io: Io = {
    out: (t) => {
      out += t;
    },
    err: (t) => {
      err += t;
    },
    tty: false,
  };
  const code = await run(argv, io);
  return { code, out, err };
}

/** A capturing Io and what it captured. */
export function captureIo(): { io: Io; out: () => string; err: () => string } {
  let out = '';
  let err = '';
  return {
    io: {
      out: (t) => {
        out += t;
      },
      err: (t) => {
        err += t;
      },
      tty: false,
    },
    out: () => out,
    err: () => err,
  };
}

/** `n` requests of `ip` spread over the minute `minute` (minutes after {@link T0}). */
export function burst(ip: string, minute: number, n: number, extra: Partial<Hit> = {}): Hit[] {
  return Array.from({ length: n }, (_, i) => ({
    ip,
    at: T0 + minute * MINUTE + Math.floor((i * MINUTE) / Math.max(n, 1)),
    ...extra,
  }));
}

/** A temporary directory removed by the returned function. */
export function tempDir(prefix: string): { path: string; remove: () => void } {
  const path = mkdtempSync(join(tmpdir(), `edgeban-e2e-${prefix}-`));
  return { path, remove: () => rmSync(path, { recursive: true, force: true }) };
}

/** The rules the log directory below is written for, with a /24 rule. */
export const E2E_CONFIG = {
  rules: [
    { name: 'flood', threshold: 100, window: '5m' },
    { name: 'login', threshold: 20, window: '5m', method: 'POST', path: '/login' },
    { name: 'subnet', threshold: 250, window: '5m', ipv4Prefix: 24 },
    { name: 'probes', threshold: 30, window: '1m', status: ['4xx'] },
  ],
  block: { duration: '4h', factor: 2, maxDuration: '7d', forgetAfter: '30d' },
  ipSets: { ipv4: 2, ipv6: 1 },
};

/**
 * Writes a directory of logs exercising every rule: several CloudFront and
 * ALB files (gzip and plain, in subdirectories), IPv4 and IPv6 clients, a
 * /24 whose addresses each stay under the flood rule but together pass the
 * subnet rule, guarded clients busy enough to pass any rule, a rejected
 * line, and an object that is not an access log.
 */
export function writeAttackLogs(dir: string): void {
  const cf1: Hit[] = [];
  const cf2: Hit[] = [];
  const alb1: Hit[] = [];
  const alb2: Hit[] = [];
  for (let m = 0; m < 10; m++) {
    const into = m < 5 ? cf1 : cf2;
    // A flood from one IPv4 address: 40 a minute passes 100 in 5m at the third minute.
    into.push(...burst('192.0.2.7', m, 40));
    // Ordinary visitors, IPv4 and IPv6.
    for (let v = 0; v < 6; v++) into.push(...burst(`198.51.100.${100 + v}`, m, 3 + v));
    into.push(...burst(`2001:db8:200::${m + 1}`, m, 5));
    // 30 addresses of one /24, 2 a minute each: 60 a minute for the /24, none over 100 alone.
    for (let a = 1; a <= 30; a++) into.push(...burst(`203.0.113.${a}`, m, 2));
    // Guarded: a private address and CGNAT space, far over every threshold.
    into.push(...burst('10.20.30.40', m, 80));
    into.push(...burst('100.64.1.1', m, 80, { status: 404 }));
  }
  // Through the ALB: a login brute force from one IPv6 /64, and a 404 scanner.
  for (let m = 0; m < 10; m++) {
    const into = m < 5 ? alb1 : alb2;
    for (let i = 0; i < 6; i++) {
      into.push(
        ...burst(`2001:db8:bad:1::${(m * 6 + i + 1).toString(16)}`, m, 1, {
          method: 'POST',
          path: '/login',
          status: 401,
        }),
      );
    }
    if (m === 6) into.push(...burst('198.51.100.66', m, 45, { path: '/.env', status: 404 }));
    into.push(...burst('2001:db8:300::1', m, 4));
  }
  writeFileSync(
    join(dir, 'E2EXAMPLE.2024-05-01-10.a1b2c3d4.gz'),
    gzipSync(cloudFrontLog(cf1.sort((a, b) => a.at - b.at))),
  );
  const plain = cloudFrontLog(cf2.sort((a, b) => a.at - b.at));
  // One row with a client that is not an address: a rejected line, never in WAF.
  const rejectedRow = cloudFrontLog([{ ip: '192.0.2.300', at: T0 + 9 * MINUTE }]).split('\n')[2];
  writeFileSync(join(dir, 'E2EXAMPLE.2024-05-01-10.e5f6a7b8'), `${plain}${rejectedRow}\n`);
  const albDir = join(dir, 'AWSLogs', '123456789012', 'elasticloadbalancing', 'us-east-1');
  mkdirSync(albDir, { recursive: true });
  writeFileSync(
    join(
      albDir,
      '123456789012_elasticloadbalancing_us-east-1_app.shop.5d_20240501T1005Z_198.51.100.5_a.log.gz',
    ),
    gzipSync(albLog(alb1.sort((a, b) => a.at - b.at))),
  );
  writeFileSync(
    join(
      albDir,
      '123456789012_elasticloadbalancing_us-east-1_app.shop.5d_20240501T1010Z_198.51.100.5_b.log',
    ),
    albLog(alb2.sort((a, b) => a.at - b.at)),
  );
  writeFileSync(
    join(albDir, 'ELBAccessLogTestFile'),
    'Enable AccessLog for ELB: shop at 2024-05-01T09:59:00.000Z',
  );
}

/** Writes `config` as a file holding the `edgeban` object. @returns its path */
export function writeConfig(
  dir: string,
  config: Record<string, unknown>,
  name = 'edgeban.json',
): string {
  const path = join(dir, name);
  writeFileSync(path, JSON.stringify(config));
  return path;
}

/** A replay decision as the JSON document lists it. */
export interface ReplayDecision {
  key: string;
  rule: string;
  peak: number;
  firstExceeded: string;
  blockedUntil: string;
  offences: number;
}

/** `replay --json` of a directory with a config file. */
export async function replayJson(
  dir: string,
  configPath: string,
): Promise<{
  summary: { requests: number; rejected: number; files: number };
  decisions: ReplayDecision[];
}> {
  const r = await cli(['replay', '--json', '--config', configPath, dir]);
  if (r.code !== 0) throw new Error(`replay exited ${r.code}: ${r.err}`);
  return JSON.parse(r.out);
}

/** The (key, rule) pairs of decisions, sorted. */
export function pairsOf(list: readonly { key: string; rule: string }[]): string[] {
  return list.map((d) => `${d.key} ${d.rule}`).sort();
}

/** The CIDRs WAF should hold for decisions: each key once, as a CIDR. */
export function cidrsOf(list: readonly { key: string }[]): { IPV4: string[]; IPV6: string[] } {
  const all = [...new Set(list.map((d) => keyToCidr(d.key)))].sort(compareKeys);
  return {
    IPV4: all.filter((c) => !c.includes(':')),
    IPV6: all.filter((c) => c.includes(':')),
  };
}

/** Addresses that are guarded or not valid and so must never reach WAF. */
export function forbidden(addresses: readonly string[]): string[] {
  return addresses.filter(
    (a) =>
      a.startsWith('10.') ||
      a.startsWith('100.64.') ||
      a.includes('192.0.2.300') ||
      !/^[0-9a-f.:]+\/\d+$/.test(a),
  );
}
