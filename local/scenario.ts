/**
 * The attack scenario `npm start` plays: log lines written by code, for a
 * CloudFront distribution and an ALB, delivered to the local log bucket
 * over simulated time the way those services deliver them, through the
 * whole pipeline, with a timeline of what gets blocked, by which rule,
 * until when, and when blocks expire and leave WAF.
 *
 * The cast: ordinary visitors; an internal health checker at 10.1.2.3 that
 * is busy enough to trip the flood rule but is guarded; a flood from one
 * IPv4 address; a login brute force rotating through one IPv6 /64; a 404
 * scanner; and a persistent attacker who keeps going through its block and
 * is blocked again, for twice as long, as soon as the block ends.
 */
import { gzipSync } from 'node:zlib';
import { parseConfig } from '../lambda/core/config';
import { formatDuration } from '../lambda/core/duration';
import { keyToCidr, maskKey } from '../lambda/core/ip';
import type { EdgebanConfig } from '../lambda/core/types';
import { type ActiveBlock, readActiveBlocks } from '../lambda/state/blocks';
import { SimulatedClock } from './clock';
import { type LocalPipeline, type ReconcileRun, startPipeline } from './pipeline';
import { seededRandom } from './rng';
import { REALTIME_DISTRIBUTION, REALTIME_SLICE_MS, streamSlice } from './scenario-realtime';

// ------------------------------------------------------------ log writers

/** One request of a generated log. */
export interface Hit {
  /** Client address as the service logs it. */
  readonly ip: string;
  /** Epoch milliseconds of the request. */
  readonly at: number;
  /** @default 'GET' */
  readonly method?: string;
  /** @default '/' */
  readonly path?: string;
  /** @default 200 */
  readonly status?: number;
  /** @default 'www.example.com' */
  readonly host?: string;
  /** @default a browser */
  readonly userAgent?: string;
}

/** CloudFront standard logging (legacy): 33 fields, in the documented order. */
const CLOUDFRONT_FIELDS =
  'date time x-edge-location sc-bytes c-ip cs-method cs(Host) cs-uri-stem sc-status ' +
  'cs(Referer) cs(User-Agent) cs-uri-query cs(Cookie) x-edge-result-type x-edge-request-id ' +
  'x-host-header cs-protocol cs-bytes time-taken x-forwarded-for ssl-protocol ssl-cipher ' +
  'x-edge-response-result-type cs-protocol-version fle-status fle-encrypted-fields c-port ' +
  'time-to-first-byte x-edge-detailed-result-type sc-content-type sc-content-len ' +
  'sc-range-start sc-range-end';
const BROWSER = 'Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0';

function isoOf(ms: number): string {
  return new Date(ms).toISOString();
}

function requestId(hit: Hit, i: number): string {
  return Buffer.from(`${hit.ip}|${hit.at}|${i}`).toString('base64url').slice(0, 40).padEnd(40, 'A');
}

/** A CloudFront legacy access log (`#Version`, `#Fields`, one tab-separated row per hit). */
export function cloudFrontLog(hits: readonly Hit[]): string {
  const rows = hits.map((h, i) => {
    const t = isoOf(h.at);
    const status = h.status ?? 200;
    const result = status >= 400 ? 'Error' : 'Hit';
    const host = h.host ?? 'www.example.com';
    return [
      t.slice(0, 10),
      t.slice(11, 19),
      'FRA56-P1',
      status === 200 ? '4821' : '512',
      h.ip,
      h.method ?? 'GET',
      'd1m2x3a4mpl5e6.cloudfront.net',
      h.path ?? '/',
      String(status),
      '-',
      encodeURIComponent(h.userAgent ?? BROWSER),
      '-',
      '-',
      result,
      requestId(h, i),
      host,
      'https',
      '183',
      '0.004',
      '-',
      'TLSv1.3',
      'TLS_AES_128_GCM_SHA256',
      result,
      'HTTP/2.0',
      '-',
      '-',
      '52814',
      '0.004',
      result,
      'text/html',
      '4410',
      '-',
      '-',
    ].join('\t');
  });
  return `#Version: 1.0\n#Fields: ${CLOUDFRONT_FIELDS}\n${rows.map((r) => `${r}\n`).join('')}`;
}

/** An ALB access log (33 fields, one line per hit); IPv6 clients are written without brackets. */
export function albLog(hits: readonly Hit[]): string {
  return hits
    .map((h, i) => {
      const t = isoOf(h.at).replace(/\.(\d{3})Z$/, '.$1412Z');
      const status = h.status ?? 200;
      const host = h.host ?? 'www.example.com';
      const waf = status === 403 ? 'waf' : 'forward';
      return (
        `https ${t} app/shop-prod/50dc6c495c0c9188 ${h.ip}:${40000 + (i % 20000)} 10.0.1.5:8080 ` +
        `0.000 0.004 0.000 ${status} ${status === 403 ? '-' : status} 210 ${status === 200 ? 1432 : 120} ` +
        `"${h.method ?? 'GET'} https://${host}:443${h.path ?? '/'} HTTP/1.1" "${h.userAgent ?? BROWSER}" ` +
        'TLS_AES_128_GCM_SHA256 TLSv1.3 ' +
        'arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/shop-api/73e2d6bc24d8a067 ' +
        `"Root=1-${Math.floor(h.at / 1000).toString(16)}-${requestId(h, i).slice(0, 24)}" "${host}" ` +
        '"arn:aws:acm:us-east-1:123456789012:certificate/3f1c2a4e-5b6d-4e7f-8a9b-0c1d2e3f4a5b" ' +
        `0 ${t} "${waf}" "-" "-" "10.0.1.5:8080" "${status}" "-" "-" TID_a1b2c3d4e5f6 "-" "-" "-"\n`
      );
    })
    .join('');
}

function compact(ms: number): string {
  return isoOf(ms).replace(/[-:]/g, '').slice(0, 13);
}

/** The object key CloudFront legacy logging writes: `<prefix><distribution>.<YYYY-MM-DD-HH>.<id>.gz`. */
export function cloudFrontKey(distributionId: string, atMs: number, unique: string): string {
  const t = isoOf(atMs);
  return `cloudfront/${distributionId}.${t.slice(0, 10)}-${t.slice(11, 13)}.${unique}.gz`;
}

/** The object key an ALB writes for a 5-minute file ending at `endMs`. */
export function albKey(endMs: number, unique: string): string {
  const t = isoOf(endMs);
  const day = `${t.slice(0, 4)}/${t.slice(5, 7)}/${t.slice(8, 10)}`;
  return (
    `alb/AWSLogs/123456789012/elasticloadbalancing/us-east-1/${day}/` +
    `123456789012_elasticloadbalancing_us-east-1_app.shop-prod.50dc6c495c0c9188_` +
    `${compact(endMs)}Z_198.51.100.5_${unique}.log.gz`
  );
}

// --------------------------------------------------------------- scenario

/** The scenario's `edgeban` config: short blocks, so an hour of attacks shows escalation and expiry. */
export const SCENARIO_CONFIG_RAW = {
  rules: [
    { name: 'flood', threshold: 300, window: '5m' },
    { name: 'login', threshold: 20, window: '5m', method: 'POST', path: '/login' },
    { name: 'scan', threshold: 30, window: '1m', status: [404] },
  ],
  block: { duration: '5m', factor: 2, maxDuration: '1h', forgetAfter: '1d' },
  realtime: { distributionIds: [REALTIME_DISTRIBUTION] },
} as const;

/** 2024-05-01T10:00:00Z: the scenario's first minute. */
export const SCENARIO_START = Date.UTC(2024, 4, 1, 10, 0, 0);

const MINUTE = 60_000;

/** The internal health checker: busy enough for the flood rule, but in 10.0.0.0/8. */
const GUARDED_CLIENT = '10.1.2.3';

type Route = 'cloudfront' | 'alb' | 'realtime';

/** One client of the scenario. */
interface Actor {
  readonly name: string;
  readonly route: Route;
  /** Minutes (from the start) the actor is active: [from, to). */
  readonly from: number;
  readonly to: number;
  /** Shown on the timeline when the actor starts, or null. */
  readonly intro: string | null;
  /** Its requests in minute `m` (epoch ms of the minute's start); `blocked` tells whether WAF holds it. */
  hits(minuteMs: number, rng: () => number, blocked: (ip: string) => boolean): Hit[];
}

function spread(
  minuteMs: number,
  n: number,
  rng: () => number,
  make: (at: number, i: number) => Omit<Hit, 'at'>,
): Hit[] {
  const out: Hit[] = [];
  for (let i = 0; i < n; i++)
    out.push({ at: minuteMs + Math.floor(rng() * MINUTE), ...make(0, i) });
  return out.sort((a, b) => a.at - b.at);
}

const PAGES = [
  '/',
  '/index.html',
  '/products',
  '/static/app.js',
  '/static/app.css',
  '/img/logo.png',
];

function cast(): Actor[] {
  const visitors: Actor[] = [];
  for (let i = 0; i < 24; i++) {
    const ip = i < 18 ? `198.51.100.${10 + i}` : `2001:db8:100::${(i - 17).toString(16)}`;
    visitors.push({
      name: ip,
      route: 'cloudfront',
      from: 0,
      to: 30,
      intro: null,
      hits: (m, rng) =>
        spread(m, Math.floor(rng() * 7), rng, () => {
          const r = rng();
          return {
            ip,
            path: r < 0.03 ? '/favicon.ico' : PAGES[Math.floor(rng() * PAGES.length)],
            status: r < 0.03 ? 404 : r < 0.2 ? 304 : 200,
          };
        }),
    });
  }
  const blockedStatus = (ip: string, blocked: (ip: string) => boolean, status: number): number =>
    blocked(ip) ? 403 : status;
  return [
    ...visitors,
    {
      name: GUARDED_CLIENT,
      route: 'alb',
      from: 0,
      to: 30,
      intro: '10.1.2.3 (internal health checker, guarded) polls the ALB at 200 req/min',
      hits: (m, rng) =>
        spread(m, 200, rng, () => ({
          ip: GUARDED_CLIENT,
          path: '/healthz',
          userAgent: 'ELB-HealthChecker/2.0',
        })),
    },
    {
      name: '203.0.113.50',
      route: 'cloudfront',
      from: 2,
      to: 7,
      intro: '203.0.113.50 floods the site at 120 req/min',
      hits: (m, rng, blocked) =>
        spread(m, 120, rng, () => ({
          ip: '203.0.113.50',
          path: '/products',
          status: blockedStatus('203.0.113.50', blocked, 200),
          userAgent: 'python-requests/2.31.0',
        })),
    },
    {
      name: '2001:db8:bad:1::/64',
      route: 'alb',
      from: 3,
      to: 13,
      intro: '2001:db8:bad:1::/64 brute-forces POST /login, a new address for each try',
      hits: (m, rng, blocked) =>
        spread(m, 8, rng, (_, i) => {
          const ip = `2001:db8:bad:1::${(((m / MINUTE) * 8 + i) % 4096).toString(16)}`;
          return {
            ip,
            method: 'POST',
            path: '/login',
            status: blockedStatus(ip, blocked, 401),
            userAgent: 'Go-http-client/1.1',
          };
        }),
    },
    {
      name: '192.0.2.66',
      route: 'cloudfront',
      from: 7,
      to: 10,
      intro: '192.0.2.66 scans for admin pages (404s)',
      hits: (m, rng, blocked) =>
        spread(m, 45, rng, (_, i) => ({
          ip: '192.0.2.66',
          path: ['/wp-admin/', '/.env', '/phpmyadmin/', '/admin.php', '/.git/config'][i % 5],
          status: blockedStatus('192.0.2.66', blocked, 404),
          userAgent: 'Mozilla/5.0 (compatible; Nuclei)',
        })),
    },
    {
      name: '198.18.7.7',
      route: 'cloudfront',
      from: 10,
      to: 27,
      intro: '198.18.7.7 starts a long flood at 100 req/min and keeps going through its block',
      hits: (m, rng, blocked) =>
        spread(m, 100, rng, () => ({
          ip: '198.18.7.7',
          path: '/search',
          status: blockedStatus('198.18.7.7', blocked, 200),
          userAgent: 'curl/8.5.0',
        })),
    },
    {
      name: '203.0.113.77',
      route: 'realtime',
      from: 14,
      to: 17,
      intro: `203.0.113.77 tries passwords on the real-time distribution at 90 POST /login a minute`,
      hits: (m, rng, blocked) =>
        spread(m, 90, rng, () => ({
          ip: '203.0.113.77',
          method: 'POST',
          path: '/login',
          status: blockedStatus('203.0.113.77', blocked, 401),
          userAgent: 'python-requests/2.31.0',
        })),
    },
  ];
}

/** One line of the timeline. */
export interface TimelineEvent {
  /** Pipeline clock, epoch ms. */
  readonly at: number;
  readonly kind: 'intro' | 'block' | 'expire' | 'unblock' | 'waf';
  readonly key?: string;
  readonly rule?: string | null;
  /** Block start and end, epoch seconds (block events). */
  readonly start?: number;
  readonly until?: number;
  readonly offence?: number | null;
  readonly text: string;
}

/** What the scenario did. */
export interface ScenarioResult {
  readonly events: TimelineEvent[];
  /** Log objects delivered. */
  readonly objects: number;
  /** Request lines in them. */
  readonly requests: number;
  /** Successful UpdateIPSet calls. */
  readonly wafUpdates: number;
  /** Every address the pipeline ever wrote to WAF. */
  readonly everWritten: string[];
  /** Reconcile runs, and the WAF calls they made. */
  readonly reconciles: number;
  readonly wafCalls: number;
  /** Simulated minutes played. */
  readonly minutes: number;
}

/** Options of {@link playScenario}. */
export interface ScenarioOptions {
  /** Receives the timeline as it happens, line by line. @default - nothing printed */
  readonly out?: (text: string) => void;
  /** @default 7 */
  readonly seed?: number;
}

function hhmm(ms: number): string {
  return isoOf(ms).slice(11, 16);
}

/** One timeline line: time (with seconds inside a minute), a tag, the message. */
function line(at: number, tag: string, message: string): string {
  const time = at % MINUTE === 0 ? hhmm(at) : isoOf(at).slice(11, 19);
  return `${time}  ${tag.padEnd(7)} ${message}`;
}

function blockId(b: ActiveBlock): string {
  return `${b.key}#${b.rule ?? ''}#${b.start}`;
}

/** The scenario's config, parsed. */
export function scenarioConfig(): EdgebanConfig {
  return parseConfig(SCENARIO_CONFIG_RAW);
}

/**
 * Plays the scenario on a simulated clock, minute by minute: each minute's
 * traffic is generated (a client WAF holds gets 403s, and still counts),
 * CloudFront delivers each minute's file two minutes later and the ALB a
 * file every five minutes; the pipeline ingests them, and the reconciler
 * runs on its messages and once a minute. Ends when the traffic is over
 * and every block has left WAF.
 */
export async function playScenario(options: ScenarioOptions = {}): Promise<ScenarioResult> {
  const out = options.out ?? (() => {});
  const rng = seededRandom(options.seed ?? 7);
  const config = scenarioConfig();
  const clock = new SimulatedClock(SCENARIO_START);
  const pipeline = await startPipeline({
    config,
    clock,
    sleep: async () => {},
    visibilityTimeoutMs: 20,
  });
  try {
    return await play(pipeline, clock, cast(), rng, out);
  } finally {
    await pipeline.stop();
  }
}

async function play(
  pipeline: LocalPipeline,
  clock: SimulatedClock,
  actors: Actor[],
  rng: () => number,
  out: (text: string) => void,
): Promise<ScenarioResult> {
  const { config } = pipeline;
  const events: TimelineEvent[] = [];
  const emit = (e: TimelineEvent): void => {
    events.push(e);
    out(`${e.text}\n`);
  };
  const rules = config.rules
    .map((r) => {
      const filter = [
        r.methods?.join(',') ?? '',
        r.path ?? '',
        r.status ? `status ${r.status.join(',')}` : '',
      ]
        .filter((s) => s !== '')
        .join(' ');
      return `${r.name}${filter ? ` (${filter})` : ''} > ${r.threshold} in ${formatDuration(r.windowMinutes * 60)}`;
    })
    .join('; ');
  out(
    `edgeban local: attack scenario on a simulated clock, ${isoOf(SCENARIO_START).slice(0, 10)}\n` +
      `  rules: ${rules}\n` +
      `  blocks: ${formatDuration(config.block.durationSeconds)}, x${config.block.factor} for each repeat offence\n` +
      '  logs: a CloudFront distribution (a file per minute, 2 minutes late), an ALB (a file every 5 minutes)\n' +
      `        and a real-time distribution ${REALTIME_DISTRIBUTION} (Kinesis records within seconds)\n\n`,
  );

  const inWaf = new Set<string>();
  const blocked = (ip: string): boolean => {
    for (const r of config.rules) {
      if (inWaf.has(keyToCidr(maskKey(ip, r.ipv4Prefix, r.ipv6Prefix)))) return true;
    }
    return false;
  };
  const cfPending = new Map<number, Hit[]>();
  let albPending: Hit[] = [];
  let objects = 0;
  let requests = 0;
  let guardedRequests = 0;
  let seenRuns = 0;
  let active = new Map<string, ActiveBlock>();
  const lastTraffic = Math.max(...actors.map((a) => a.to));
  const introduced = new Set<string>();
  let unique = 0;

  const deliver = async (key: string, hits: Hit[], route: Route): Promise<void> => {
    if (hits.length === 0) return;
    hits.sort((a, b) => a.at - b.at);
    const text = route === 'cloudfront' ? cloudFrontLog(hits) : albLog(hits);
    await pipeline.upload(key, gzipSync(text));
    objects++;
    requests += hits.length;
    for (const h of hits) if (h.ip === GUARDED_CLIENT) guardedRequests++;
  };

  /** The queues drain, the reconciler runs until quiet; new blocks, expiries and WAF changes are shown. */
  const observe = async (): Promise<void> => {
    await pipeline.settle();
    const now = clock.now();
    const current = new Map<string, ActiveBlock>();
    for (const b of await readActiveBlocks(pipeline.ddb, pipeline.tableName)) {
      current.set(blockId(b), b);
    }
    const nowS = Math.floor(now / 1000);
    for (const [id, b] of active) {
      if (current.has(id)) continue;
      const expired = b.until <= nowS;
      emit({
        at: now,
        kind: expired ? 'expire' : 'unblock',
        key: b.key,
        rule: b.rule,
        start: b.start,
        until: b.until,
        offence: b.offences,
        text: line(
          now,
          expired ? 'expire' : 'unblock',
          `${b.key.padEnd(20)} ${b.rule ?? 'manual'} block ${expired ? 'over' : 'lifted'}`,
        ),
      });
    }
    for (const [id, b] of current) {
      if (active.has(id)) continue;
      const long = formatDuration(b.until - b.start);
      const n = b.offences ?? 1;
      const repeat = n > 1 ? `, offence ${n}: x${config.block.factor ** (n - 1)}` : '';
      const threshold = config.rules.find((r) => r.name === b.rule)?.threshold;
      emit({
        at: now,
        kind: 'block',
        key: b.key,
        rule: b.rule,
        start: b.start,
        until: b.until,
        offence: b.offences,
        text: line(
          now,
          'BLOCK',
          `${b.key.padEnd(20)} ${b.rule}: ${b.peak} requests in ${b.window}m > ${threshold}, ` +
            `until ${hhmm(b.until * 1000)} (${long}${repeat})`,
        ),
      });
    }
    active = current;

    const runs: ReconcileRun[] = pipeline.runs.slice(seenRuns);
    seenRuns = pipeline.runs.length;
    const added = runs.flatMap((r) => r.result.added);
    const removed = runs.flatMap((r) => r.result.removed);
    const updates = runs.reduce((n, r) => n + r.result.updates, 0);
    for (const c of added) inWaf.add(c);
    for (const c of removed) inWaf.delete(c);
    if (updates > 0) {
      const change = [...added.map((c) => `+${c}`), ...removed.map((c) => `-${c}`)].join(' ');
      emit({
        at: now,
        kind: 'waf',
        text: line(
          now,
          'WAF',
          `${change}  (${updates} update${updates === 1 ? '' : 's'}; IP sets hold ${inWaf.size})`,
        ),
      });
    }
  };

  let minute = 0;
  for (; minute < 24 * 60; minute++) {
    // Tick: the clock reaches the start of minute `minute`; the minute before it is over.
    clock.set(SCENARIO_START + minute * MINUTE);
    const now = clock.now();
    for (const a of actors) {
      if (a.intro !== null && a.from === minute && !introduced.has(a.name)) {
        introduced.add(a.name);
        emit({ at: now, kind: 'intro', key: a.name, text: line(now, 'start', a.intro) });
      }
    }
    if (minute > 0) {
      const m = minute - 1;
      const minuteMs = SCENARIO_START + m * MINUTE;
      const cf: Hit[] = [];
      for (const a of actors) {
        if (m < a.from || m >= a.to || a.route === 'realtime') continue;
        const hits = a.hits(minuteMs, rng, blocked);
        if (a.route === 'cloudfront') cf.push(...hits);
        else albPending.push(...hits);
      }
      if (cf.length > 0) cfPending.set(m, cf);
    }
    // CloudFront: the file of minute m arrives at the start of minute m + 2.
    const due = cfPending.get(minute - 2);
    if (due !== undefined) {
      cfPending.delete(minute - 2);
      await deliver(
        cloudFrontKey(
          'E2EXAMPLE1ABCD',
          SCENARIO_START + (minute - 2) * MINUTE,
          `a${(unique++).toString(16).padStart(7, '0')}`,
        ),
        due,
        'cloudfront',
      );
    }
    // ALB: a file for each 5 minutes, at their end.
    if (minute % 5 === 0 && albPending.length > 0) {
      const hits = albPending;
      albPending = [];
      await deliver(albKey(now, `b${(unique++).toString(16).padStart(7, '0')}`), hits, 'alb');
    }

    // The queues drain, the reconciler runs (its once-a-minute schedule included) until quiet.
    await observe();

    // The real-time distribution: this minute's requests reach the stream within seconds.
    const live = actors.filter((a) => a.route === 'realtime' && minute >= a.from && minute < a.to);
    if (live.length > 0) {
      const minuteMs = SCENARIO_START + minute * MINUTE;
      const hits = live.flatMap((a) => a.hits(minuteMs, rng, blocked));
      for (
        let end = minuteMs + REALTIME_SLICE_MS;
        end < minuteMs + MINUTE;
        end += REALTIME_SLICE_MS
      ) {
        clock.set(end);
        requests += await streamSlice(pipeline, hits, end - REALTIME_SLICE_MS, end);
        await observe();
      }
      requests += await streamSlice(
        pipeline,
        hits,
        minuteMs + MINUTE - REALTIME_SLICE_MS,
        minuteMs + MINUTE,
      );
    }

    if (
      minute >= lastTraffic + 2 &&
      cfPending.size === 0 &&
      albPending.length === 0 &&
      active.size === 0
    ) {
      break;
    }
  }

  const wafUpdates = pipeline.ipSets.reduce(
    (n, s) => n + pipeline.cloud.waf.ipSet({ id: s.id }).updates,
    0,
  );
  const result: ScenarioResult = {
    events,
    objects,
    requests,
    wafUpdates,
    everWritten: pipeline.cloud.waf.allAddressesEverWritten(),
    reconciles: pipeline.runs.length,
    wafCalls: pipeline.runs.reduce((n, r) => n + r.wafCalls, 0),
    minutes: minute,
  };
  const blocks = events.filter((e) => e.kind === 'block').length;
  const guardedInWaf = result.everWritten.some((c) => c.startsWith(`${GUARDED_CLIENT}/`));
  const n = (x: number): string => x.toLocaleString('en-US');
  out(
    `\n${minute} simulated minutes: ${objects} log objects, ${n(requests)} requests, ` +
      `${blocks} blocks, ${wafUpdates} WAF updates in ${result.reconciles} reconciler runs ` +
      `(${result.wafCalls} WAF calls).\n` +
      `${GUARDED_CLIENT}, the busiest client (${n(guardedRequests)} requests), ` +
      `${guardedInWaf ? 'reached WAF: that is a bug' : 'is guarded and never reached WAF'}.\n`,
  );
  return result;
}
