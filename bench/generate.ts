/**
 * Deterministic access-log generator for `npm run bench` (DESIGN.md section 7).
 *
 * The same options give byte-identical output: every choice comes from a
 * seeded PRNG, never from the clock or `Math.random`. The default mix is the
 * bench's: 1M lines over 60 minutes, about 22,000 clients of which 20 heavy
 * hitters carry 20% of the requests, 5% IPv6, 2% `POST /login`, 3% 404s,
 * the rest mostly `GET` 200/304 with realistic paths, queries, user agents,
 * referrers and hosts.
 *
 * The 20 heavy hitters have roles, so that each bench rule has something to
 * decide: 10 flooders (Zipf-weighted, spread over the hour), 5 credential
 * stuffers (half of the `POST /login` requests, spread over the hour) and 5
 * scanners (half of the 404s, each active in its own fifth of the hour).
 * Ordinary clients visit in sessions of a few minutes, at most about 60
 * requests a minute, so they trip no bench rule.
 *
 * Lines are ordered by event time plus up to two seconds of jitter: a
 * mostly-ordered file whose timestamps sometimes step back, as real logs do.
 */
import { createWriteStream } from 'node:fs';
import { mkdir, rename, stat, unlink } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { pathToFileURL } from 'node:url';
import { createGzip } from 'node:zlib';
import { LEGACY_FIELDS } from '../lambda/core/formats/cloudfront';

/** Formats the generator writes. */
export type BenchFormat = 'cloudfront' | 'alb';

/** Options of {@link generateLogs}. */
export interface GenerateOptions {
  readonly format: BenchFormat;
  /** Request lines (header lines not included); an integer >= 1000. */
  readonly lines: number;
  /** PRNG seed, a 32-bit integer. */
  readonly seed: number;
  /**
   * Distinct clients, heavy hitters included; every one of them sends at least one request.
   * @default - 2.2% of `lines` (22,000 for 1M lines), at least 40
   */
  readonly clients?: number;
  /**
   * Epoch seconds of the first minute, a whole minute.
   * @default - 2024-05-01T10:00:00Z
   */
  readonly start?: number;
  /**
   * Minutes the requests spread over, a multiple of 5 (scanners take a fifth each).
   * @default 60
   */
  readonly minutes?: number;
}

/** {@link GenerateOptions} with defaults resolved. */
export type ResolvedGenerateOptions = Required<GenerateOptions>;

/** Bump when the output for the same options changes: it keys the `.bench/` cache. */
export const GENERATOR_VERSION = 1;

/** Shares of the mix (of all request lines). */
export const MIX = {
  heavy: 0.2,
  login: 0.02,
  notFound: 0.03,
  ipv6Clients: 0.05,
} as const;

const DEFAULT_START = Date.UTC(2024, 4, 1, 10, 0, 0) / 1000;
const FLOODERS = 10;
const STUFFERS = 5;
const SCANNERS = 5;
const HEAVY = FLOODERS + STUFFERS + SCANNERS;
/** Which flooder is an IPv6 client: 1 of the 20 heavy hitters, 5%. */
const IPV6_FLOODER = 4;
/** Ordinary clients send at most about this many requests a minute. */
const NORMAL_RATE_CAP = 60;
/** Line order jitter, microseconds. */
const ORDER_JITTER_US = 2_000_000;

/** A generator option is out of range. */
export class BenchOptionError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'BenchOptionError';
  }
}

/** Validates options and resolves defaults. */
export function resolveOptions(opts: GenerateOptions): ResolvedGenerateOptions {
  if (opts.format !== 'cloudfront' && opts.format !== 'alb') {
    throw new BenchOptionError(`format must be cloudfront or alb, got ${String(opts.format)}`);
  }
  if (!Number.isInteger(opts.lines) || opts.lines < 1000) {
    throw new BenchOptionError(`lines must be an integer >= 1000, got ${opts.lines}`);
  }
  if (!Number.isInteger(opts.seed) || opts.seed < 0 || opts.seed > 0xffffffff) {
    throw new BenchOptionError(`seed must be an integer from 0 to 4294967295, got ${opts.seed}`);
  }
  const minutes = opts.minutes ?? 60;
  if (!Number.isInteger(minutes) || minutes < 5 || minutes > 1440 || minutes % 5 !== 0) {
    throw new BenchOptionError(`minutes must be a multiple of 5 from 5 to 1440, got ${minutes}`);
  }
  const start = opts.start ?? DEFAULT_START;
  if (!Number.isInteger(start) || start % 60 !== 0 || start < 0) {
    throw new BenchOptionError(`start must be whole epoch minutes in seconds, got ${start}`);
  }
  const clients = opts.clients ?? Math.max(40, Math.round(opts.lines * 0.022));
  const normalLines = opts.lines - Math.round(opts.lines * MIX.heavy);
  if (!Number.isInteger(clients) || clients < HEAVY + 1 || clients - HEAVY > normalLines) {
    throw new BenchOptionError(
      `clients must be an integer from ${HEAVY + 1} to ${normalLines + HEAVY}, got ${clients}`,
    );
  }
  return { format: opts.format, lines: opts.lines, seed: opts.seed, clients, start, minutes };
}

/** A seeded 32-bit PRNG (mulberry32): returns floats in [0, 1). */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

type Rng = () => number;

function int(rng: Rng, n: number): number {
  return Math.floor(rng() * n);
}

function pick<T>(rng: Rng, items: readonly T[]): T {
  return items[Math.floor(rng() * items.length)]!;
}

/**
 * First octets of the IPv4 clients: public, unicast, outside every guarded
 * range of DESIGN.md section 1 and outside the /8s that hold CloudFront's
 * origin-facing ranges (3, 13, 15, 18, 34, 35, 36, 43, 44, 52, 54, 58, 64,
 * 65, 70, 71, 99, 108, 111, 116, 118, 119, 120, 130, 143, 144, 180, 204,
 * 205, 216), so that no generated client is guarded.
 */
const IPV4_FIRST_OCTETS = [
  2, 5, 23, 24, 31, 37, 41, 45, 46, 47, 49, 62, 66, 67, 68, 69, 72, 73, 74, 75, 76, 77, 78, 79, 80,
  81, 82, 83, 84, 85, 86, 87, 88, 89, 90, 91, 92, 93, 94, 95, 96, 97, 98, 101, 103, 105, 106, 109,
  110, 112, 113, 114, 115, 117, 121, 122, 123, 124, 125, 136, 137, 138, 139, 140, 141, 142, 145,
  146, 147, 149, 151, 152, 154, 156, 158, 159, 161, 162, 163, 164, 165, 166, 167, 168, 171, 173,
  174, 175, 176, 177, 178, 179, 181, 182, 183, 184, 185, 186, 187, 188, 189, 190, 191, 193, 194,
  195, 196, 197, 200, 201, 202, 203, 206, 207, 208, 209, 210, 211, 212, 213, 217, 218, 219, 220,
  221, 222, 223,
];

/** /32 allocations of residential and mobile IPv6 providers (the rest is random). */
const IPV6_PREFIXES = [
  [0x2a01, 0x0e0a],
  [0x2a02, 0x8108],
  [0x2a02, 0x0c7c],
  [0x2a00, 0x23c5],
  [0x2600, 0x1700],
  [0x2601, 0x0646],
  [0x2603, 0x7000],
  [0x2607, 0xfb90],
  [0x2804, 0x014c],
  [0x2409, 0x8a28],
  [0x2406, 0x3003],
  [0x2405, 0x0201],
] as const;

/** Writes eight 16-bit groups as RFC 5952 text (lower case, longest zero run compressed). */
export function formatIpv6(groups: readonly number[]): string {
  let bestAt = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen) {
      bestAt = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (bestAt < 0) return hex.join(':');
  return `${hex.slice(0, bestAt).join(':')}::${hex.slice(bestAt + bestLen).join(':')}`;
}

function randomIpv4(rng: Rng): string {
  return `${pick(rng, IPV4_FIRST_OCTETS)}.${int(rng, 256)}.${int(rng, 256)}.${1 + int(rng, 254)}`;
}

function randomIpv6(rng: Rng): string {
  const [a, b] = pick(rng, IPV6_PREFIXES);
  const groups = [a, b, int(rng, 0x10000), int(rng, 0x10000)];
  if (rng() < 0.15) {
    // A statically numbered host: `...::1`-style interface identifier.
    groups.push(0, 0, 0, 1 + int(rng, 0x100));
  } else {
    for (let i = 0; i < 4; i++) groups.push(int(rng, 0x10000));
  }
  return formatIpv6(groups);
}

/** Roles of the heavy hitters. */
export interface ClientPlan {
  /** Every client address; the first 20 are the heavy hitters. */
  readonly addresses: readonly string[];
  /** Flooders (indexes 0-9), credential stuffers (10-14), scanners (15-19). */
  readonly flooders: readonly string[];
  readonly stuffers: readonly string[];
  readonly scanners: readonly string[];
  /** The 20 heavy hitters. */
  readonly heavy: readonly string[];
}

interface ClientTable extends ClientPlan {
  readonly isV6: Uint8Array;
  readonly agent: Uint16Array;
  readonly edge: Uint8Array;
}

function buildClients(o: ResolvedGenerateOptions, rng: Rng): ClientTable {
  const n = o.clients;
  const seen = new Set<string>();
  const addresses: string[] = [];
  const isV6 = new Uint8Array(n);
  const agent = new Uint16Array(n);
  const edge = new Uint8Array(n);
  for (let c = 0; c < n; c++) {
    const v6 = c < HEAVY ? c === IPV6_FLOODER : rng() < MIX.ipv6Clients;
    let ip: string;
    do ip = v6 ? randomIpv6(rng) : randomIpv4(rng);
    while (seen.has(ip));
    seen.add(ip);
    addresses.push(ip);
    isV6[c] = v6 ? 1 : 0;
    edge[c] = int(rng, EDGE_LOCATIONS.length);
    if (c < FLOODERS) agent[c] = int(rng, FLOOD_AGENTS.length);
    else if (c < FLOODERS + STUFFERS) agent[c] = int(rng, STUFFER_AGENTS.length);
    else if (c < HEAVY) agent[c] = int(rng, SCANNER_AGENTS.length);
    else agent[c] = int(rng, BROWSER_AGENTS.length);
  }
  return {
    addresses,
    heavy: addresses.slice(0, HEAVY),
    flooders: addresses.slice(0, FLOODERS),
    stuffers: addresses.slice(FLOODERS, FLOODERS + STUFFERS),
    scanners: addresses.slice(FLOODERS + STUFFERS, HEAVY),
    isV6,
    agent,
    edge,
  };
}

/** The client addresses and heavy-hitter roles a generation uses (cheap: no lines built). */
export function planClients(opts: GenerateOptions): ClientPlan {
  const o = resolveOptions(opts);
  const { addresses, heavy, flooders, stuffers, scanners } = buildClients(o, mulberry32(o.seed));
  return { addresses, heavy, flooders, stuffers, scanners };
}

/** Splits `total` by `weights` with the largest-remainder method (exact sum). */
function apportion(total: number, weights: readonly number[]): number[] {
  const sum = weights.reduce((s, w) => s + w, 0);
  const exact = weights.map((w) => (total * w) / sum);
  const out = exact.map(Math.floor);
  let left = total - out.reduce((s, v) => s + v, 0);
  const order = exact.map((e, i) => [e - Math.floor(e), i] as const).sort((a, b) => b[0] - a[0]);
  for (const [, i] of order) {
    if (left-- <= 0) break;
    out[i]!++;
  }
  return out;
}

/** Request kinds; 0 is any other request. */
const KIND_LOGIN = 1;
const KIND_NOT_FOUND = 2;

/** Who sends each request, what kind it is, and when (microseconds after `start`). */
interface RequestPlan {
  readonly client: Int32Array;
  readonly kind: Uint8Array;
  readonly time: Float64Array;
  /** Request indexes in line order. */
  readonly order: Uint32Array;
}

function planRequests(o: ResolvedGenerateOptions, rng: Rng): RequestPlan {
  const total = o.lines;
  const spanUs = o.minutes * 60e6;
  const client = new Int32Array(total);
  const kind = new Uint8Array(total);
  const time = new Float64Array(total);
  const login = Math.round(total * MIX.login);
  const notFound = Math.round(total * MIX.notFound);
  const heavy = Math.round(total * MIX.heavy);
  const stufferLogins = Math.floor(login / 2);
  const scannerProbes = Math.floor(notFound / 2);
  const floods = heavy - stufferLogins - scannerProbes;
  let i = 0;
  const zipf = Array.from({ length: FLOODERS }, (_, k) => 1 / (k + 1));
  apportion(floods, zipf).forEach((count, f) => {
    for (let j = 0; j < count; j++, i++) {
      client[i] = f;
      time[i] = rng() * spanUs;
    }
  });
  apportion(stufferLogins, Array(STUFFERS).fill(1)).forEach((count, s) => {
    for (let j = 0; j < count; j++, i++) {
      client[i] = FLOODERS + s;
      kind[i] = KIND_LOGIN;
      time[i] = rng() * spanUs;
    }
  });
  const block = spanUs / SCANNERS;
  apportion(scannerProbes, Array(SCANNERS).fill(1)).forEach((count, s) => {
    for (let j = 0; j < count; j++, i++) {
      client[i] = FLOODERS + STUFFERS + s;
      kind[i] = KIND_NOT_FOUND;
      time[i] = s * block + rng() * block;
    }
  });

  // Ordinary clients: one request each, then the rest skewed toward low
  // indexes (a few busy clients, a long tail of one-page visitors).
  const first = i;
  const normals = o.clients - HEAVY;
  const perClient = new Int32Array(normals);
  for (let c = 0; c < normals; c++, i++) {
    client[i] = HEAVY + c;
    perClient[c]!++;
  }
  for (; i < total; i++) {
    const c = Math.floor(normals * rng() ** 1.5);
    client[i] = HEAVY + c;
    perClient[c]!++;
  }
  // Exact counts of each kind among the ordinary requests, shuffled.
  const normalLogins = login - stufferLogins;
  const normalNotFound = notFound - scannerProbes;
  for (let j = 0; j < normalLogins; j++) kind[first + j] = KIND_LOGIN;
  for (let j = 0; j < normalNotFound; j++) kind[first + normalLogins + j] = KIND_NOT_FOUND;
  for (let j = total - 1; j > first; j--) {
    const k = first + int(rng, j - first + 1);
    const t = kind[j]!;
    kind[j] = kind[k]!;
    kind[k] = t;
  }
  // Sessions: a few minutes each, long enough to stay under the rate cap.
  const sessionStart = new Float64Array(normals);
  const sessionLen = new Float64Array(normals);
  for (let c = 0; c < normals; c++) {
    const drawn = 1 + Math.floor(-Math.log(1 - rng()) * 5);
    const len = Math.min(o.minutes, Math.max(drawn, Math.ceil(perClient[c]! / NORMAL_RATE_CAP)));
    sessionLen[c] = len * 60e6;
    sessionStart[c] = int(rng, o.minutes - len + 1) * 60e6;
  }
  for (let j = first; j < total; j++) {
    const c = client[j]! - HEAVY;
    time[j] = sessionStart[c]! + rng() * sessionLen[c]!;
  }

  // Line order: event time plus jitter, sorted as packed float keys
  // (milliseconds * 2^bits + index) so a plain numeric sort does it.
  const bits = Math.max(1, Math.ceil(Math.log2(total)));
  const scale = 2 ** bits;
  const keys = new Float64Array(total);
  for (let j = 0; j < total; j++) {
    keys[j] = Math.floor((time[j]! + rng() * ORDER_JITTER_US) / 1000) * scale + j;
  }
  keys.sort();
  const order = new Uint32Array(total);
  for (let j = 0; j < total; j++) order[j] = keys[j]! % scale;
  return { client, kind, time, order };
}

// ---------------------------------------------------------------- content

const EDGE_LOCATIONS = [
  'IAD89-C1',
  'IAD55-P4',
  'JFK50-P2',
  'ATL59-P1',
  'ORD58-P6',
  'DFW57-P3',
  'SEA19-C1',
  'LAX50-P1',
  'SFO53-P7',
  'GRU3-C1',
  'LHR61-P5',
  'FRA56-P8',
  'CDG52-P2',
  'AMS58-P4',
  'MAD53-P1',
  'ARN54-C1',
  'WAW51-P2',
  'NRT57-P3',
  'HKG62-P1',
  'SIN52-C2',
  'BOM78-P1',
  'SYD62-P1',
];

const BROWSER_AGENTS = [
  'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36',
  'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/123.0.0.0 Safari/537.36 Edg/123.0.2420.97',
  'Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:125.0) Gecko/20100101 Firefox/125.0',
  'Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4.1 Safari/605.1.15',
  'Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36',
  'Mozilla/5.0 (iPhone; CPU iPhone OS 17_4_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4.1 Mobile/15E148 Safari/604.1',
  'Mozilla/5.0 (iPad; CPU OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1',
  'Mozilla/5.0 (Linux; Android 14; SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.6367.82 Mobile Safari/537.36',
  'Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Mobile Safari/537.36',
  'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36',
  'Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0',
  'Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)',
  'Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)',
  'Mozilla/5.0 (compatible; AhrefsBot/7.0; +http://ahrefs.com/robot/)',
  'facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)',
];

const FLOOD_AGENTS = [
  'python-requests/2.31.0',
  'Go-http-client/1.1',
  'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36',
  'Scrapy/2.11.1 (+https://scrapy.org)',
  'axios/1.6.8',
];

const STUFFER_AGENTS = [
  'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36',
  'Mozilla/5.0 (X11; Linux x86_64; rv:109.0) Gecko/20100101 Firefox/115.0',
  'okhttp/4.12.0',
];

const SCANNER_AGENTS = [
  'Mozilla/5.0 zgrab/0.x',
  'curl/8.4.0',
  'Mozilla/5.0 (compatible; Nuclei - Open-source project (github.com/projectdiscovery/nuclei))',
  'Mozilla/5.0 (Windows NT 6.1; Win64; x64; rv:47.0) Gecko/20100101 Firefox/47.0',
];

const SCANNER_PATHS = [
  '/.env',
  '/.git/config',
  '/wp-login.php',
  '/wp-admin/setup-config.php',
  '/xmlrpc.php',
  '/phpmyadmin/index.php',
  '/admin/config.php',
  '/vendor/phpunit/phpunit/src/Util/PHP/eval-stdin.php',
  '/cgi-bin/luci/;stok=/locale',
  '/actuator/env',
  '/server-status',
  '/config.json',
  '/backup.zip',
  '/.aws/credentials',
  '/owa/auth/logon.aspx',
  '/boaform/admin/formLogin',
];

const STALE_PATHS = [
  '/products/discontinued-item',
  '/images/banner-2019.png',
  '/favicon.png',
  '/apple-touch-icon.png',
  '/apple-touch-icon-precomposed.png',
  '/blog/2019/11/old-post',
  '/static/js/main.4f1c2b7e.js',
  '/ads.txt',
];

const CATEGORIES = ['shoes', 'jackets', 'bags', 'hats', 'outdoor', 'kids', 'sale', 'new'];
const SEARCH_TERMS = ['running+shoes', 'rain+jacket', 'backpack', 'wool+hat', 'gift+card', 'tent'];
const UTM = [
  'utm_source=newsletter&utm_medium=email&utm_campaign=spring',
  'utm_source=google&utm_medium=cpc&gclid=Cj0KCQjw',
  'ref=home',
  'ref=related',
  'fbclid=IwAR2xYz',
];
const REFERERS = [
  'https://www.example.com/',
  'https://www.example.com/products/',
  'https://www.example.com/search?q=backpack',
  'https://www.google.com/',
  'https://www.bing.com/',
  'https://duckduckgo.com/',
  'https://t.co/',
];
const CONTENT_TYPES = {
  html: 'text/html',
  js: 'application/javascript',
  css: 'text/css',
  jpg: 'image/jpeg',
  webp: 'image/webp',
  json: 'application/json',
} as const;
type ContentKind = keyof typeof CONTENT_TYPES;

/** One request's content, shared by both formats. */
interface Content {
  method: string;
  host: string;
  path: string;
  /** Query without `?`, or `-`. */
  query: string;
  status: number;
  bytes: number;
  type: ContentKind;
  referer: string;
}

function hex(rng: Rng, n: number): string {
  let s = '';
  while (s.length < n) s += ((rng() * 4294967296) >>> 0).toString(16).padStart(8, '0');
  return s.slice(0, n);
}

/** A page, asset or API call an ordinary visitor or a flooder asks for. */
function browse(rng: Rng, c: Content): void {
  const r = rng();
  c.query = '-';
  c.host = rng() < 0.88 ? 'www.example.com' : 'example.com';
  if (r < 0.12) {
    c.path = '/';
    c.type = 'html';
    if (rng() < 0.2) c.query = pick(rng, UTM);
  } else if (r < 0.3) {
    c.path = `/products/${pick(rng, CATEGORIES)}/${10000 + int(rng, 5000)}`;
    c.type = 'html';
    if (rng() < 0.3) c.query = pick(rng, UTM);
  } else if (r < 0.36) {
    c.path = '/search';
    c.query = `q=${pick(rng, SEARCH_TERMS)}&page=${1 + int(rng, 5)}`;
    c.type = 'html';
  } else if (r < 0.52) {
    c.path = `/static/js/${pick(rng, ['main', 'vendor', 'runtime', 'checkout'])}.${hex(rng, 8)}.js`;
    c.host = 'static.example.com';
    c.type = 'js';
  } else if (r < 0.6) {
    c.path = `/static/css/${pick(rng, ['main', 'theme'])}.${hex(rng, 8)}.css`;
    c.host = 'static.example.com';
    c.type = 'css';
  } else if (r < 0.84) {
    c.path = `/images/p/${10000 + int(rng, 5000)}/${pick(rng, ['thumb', 'large', 'zoom'])}.${pick(rng, ['jpg', 'webp'])}`;
    c.host = 'static.example.com';
    c.type = c.path.endsWith('jpg') ? 'jpg' : 'webp';
    if (rng() < 0.25) c.query = `w=${pick(rng, [320, 640, 1280])}`;
  } else if (r < 0.95) {
    c.path = pick(rng, [
      '/api/v1/cart',
      '/api/v1/session',
      '/api/v1/recommendations',
      '/api/v1/stock',
    ]);
    c.host = 'api.example.com';
    c.type = 'json';
    if (rng() < 0.4) c.query = `sku=${10000 + int(rng, 5000)}`;
  } else {
    c.path = pick(rng, ['/favicon.ico', '/robots.txt', '/sitemap.xml', '/manifest.json']);
    c.type = c.path.endsWith('json') ? 'json' : 'html';
  }
  const s = rng();
  c.method = 'GET';
  if (s < 0.8) c.status = 200;
  else if (s < 0.915) c.status = 304;
  else if (s < 0.94) c.status = rng() < 0.5 ? 301 : 302;
  else if (s < 0.97 && c.type === 'json') {
    c.method = 'POST';
    c.status = rng() < 0.8 ? 200 : 201;
  } else if (s < 0.97) c.status = 200;
  else if (s < 0.98) c.method = 'HEAD';
  else if (s < 0.985) {
    c.method = 'OPTIONS';
    c.status = 204;
  } else if (s < 0.995) c.status = c.type === 'jpg' || c.type === 'webp' ? 206 : 200;
  else c.status = pick(rng, [500, 502, 503, 504]);
  if (c.method === 'HEAD') c.status = 200;
  c.bytes =
    c.status === 304 || c.status === 204 || c.status === 301 || c.status === 302
      ? 200 + int(rng, 400)
      : c.type === 'jpg' || c.type === 'webp'
        ? 8000 + int(rng, 180000)
        : c.type === 'js'
          ? 20000 + int(rng, 300000)
          : 900 + int(rng, 60000);
  c.referer = rng() < 0.3 ? '-' : pick(rng, REFERERS);
}

function content(rng: Rng, kind: number, role: number, c: Content): void {
  if (kind === KIND_LOGIN) {
    c.method = 'POST';
    c.host = 'www.example.com';
    c.path = '/login';
    c.query = rng() < 0.2 ? 'next=%2Faccount' : '-';
    c.type = 'html';
    c.status = role === 1 ? (rng() < 0.6 ? 401 : 200) : rng() < 0.85 ? 302 : 200;
    c.bytes = 600 + int(rng, 5000);
    c.referer = 'https://www.example.com/login';
  } else if (kind === KIND_NOT_FOUND) {
    c.method = 'GET';
    c.host = role === 2 && rng() < 0.5 ? 'example.com' : 'www.example.com';
    c.path = pick(rng, role === 2 ? SCANNER_PATHS : STALE_PATHS);
    c.query = '-';
    c.type = 'html';
    c.status = 404;
    c.bytes = 300 + int(rng, 900);
    c.referer = role === 2 ? '-' : pick(rng, REFERERS);
  } else {
    browse(rng, c);
  }
}

// ---------------------------------------------------------------- formats

/** CloudFront standard logging (legacy): 33 fields, in the documented order. */
export const CLOUDFRONT_FIELDS = LEGACY_FIELDS;

/** Number of fields of the current ALB access-log layout the generator writes. */
export const ALB_FIELD_COUNT = 33;

const CLOUDFRONT_HEADER = `#Version: 1.0\n#Fields: ${CLOUDFRONT_FIELDS.join(' ')}\n`;
const DISTRIBUTION_DOMAIN = 'd1m2x3a4mpl5e6.cloudfront.net';
const B64URL = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
const TLS = [
  ['TLSv1.3', 'TLS_AES_128_GCM_SHA256'],
  ['TLSv1.3', 'TLS_AES_256_GCM_SHA384'],
  ['TLSv1.2', 'ECDHE-RSA-AES128-GCM-SHA256'],
] as const;
const ELB_NAME = 'app/shop-prod/50dc6c495c0c9188';
const TARGET_GROUP =
  'arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/shop-web/73e2d6bc24d8a067';
const CERT = 'arn:aws:acm:us-east-1:123456789012:certificate/3f1c2a4e-5b6d-4e7f-8a9b-0c1d2e3f4a5b';

function requestId(rng: Rng): string {
  let s = '';
  for (let i = 0; i < 9; i++) {
    let v = (rng() * 4294967296) >>> 0;
    for (let k = 0; k < 6 && s.length < 54; k++, v >>>= 5) s += B64URL[v & 63];
  }
  return `${s}==`;
}

function seconds3(rng: Rng, max: number): string {
  return (rng() * max).toFixed(3);
}

/** Formats epoch microseconds as ISO pieces, caching the per-minute prefix. */
class Clock {
  private minute = Number.NaN;
  private prefix = '';
  /** `YYYY-MM-DDTHH:MM:` of the last minute asked for. */
  at(us: number): string {
    const m = Math.floor(us / 60e6);
    if (m !== this.minute) {
      this.minute = m;
      this.prefix = new Date(m * 60000).toISOString().slice(0, 17);
    }
    return this.prefix;
  }
  /** `YYYY-MM-DDTHH:MM:SS.uuuuuuZ` */
  iso(us: number): string {
    const p = this.at(us);
    const inMinute = Math.floor(us - this.minute * 60e6);
    const s = Math.floor(inMinute / 1e6);
    const frac = inMinute - s * 1e6;
    return `${p}${s < 10 ? '0' : ''}${s}.${String(frac).padStart(6, '0')}Z`;
  }
}

function cloudfrontLine(
  rng: Rng,
  clock: Clock,
  t: number,
  ip: string,
  agent: string,
  edge: string,
  c: Content,
): string {
  const prefix = clock.at(t);
  const sec = Math.floor((t % 60e6) / 1e6);
  const date = prefix.slice(0, 10);
  const time = `${prefix.slice(11)}${sec < 10 ? '0' : ''}${sec}`;
  const https = rng() < 0.98;
  const [proto, cipher] = https ? pick(rng, TLS) : ['-', '-'];
  const version = https ? pick(rng, ['HTTP/2.0', 'HTTP/2.0', 'HTTP/1.1', 'HTTP/3.0']) : 'HTTP/1.1';
  let result: string;
  if (c.status >= 500 || c.status === 404 || c.status === 401) result = 'Error';
  else if (c.method === 'POST' || c.type === 'json' || c.type === 'html') {
    result = c.status === 304 ? 'RefreshHit' : 'Miss';
  } else result = rng() < 0.85 ? 'Hit' : 'Miss';
  const detailed = c.status >= 500 ? 'OriginConnectError' : result;
  const taken = result === 'Hit' ? seconds3(rng, 0.005) : seconds3(rng, 0.4);
  const contentLen =
    c.status === 304 || c.status === 204 ? '-' : String(Math.max(0, c.bytes - 350));
  const range206 = c.status === 206;
  return [
    date,
    time,
    edge,
    c.bytes,
    ip,
    c.method,
    DISTRIBUTION_DOMAIN,
    c.path,
    c.status,
    c.referer,
    agent,
    c.query,
    '-',
    result,
    requestId(rng),
    c.host,
    https ? 'https' : 'http',
    c.method === 'POST' ? 400 + int(rng, 2000) : 80 + int(rng, 600),
    taken,
    '-',
    proto,
    cipher,
    result,
    version,
    '-',
    '-',
    1024 + int(rng, 64511),
    taken,
    detailed,
    c.status === 304 || c.status === 204 ? '-' : CONTENT_TYPES[c.type],
    contentLen,
    range206 ? '0' : '-',
    range206 ? String(c.bytes - 351) : '-',
  ].join('\t');
}

function albLine(rng: Rng, clock: Clock, t: number, ip: string, agent: string, c: Content): string {
  const kind = rng();
  const type = kind < 0.05 ? 'http' : kind < 0.35 ? 'h2' : 'https';
  const tls = type !== 'http';
  const [proto, cipher] = tls ? pick(rng, TLS) : ['-', '-'];
  const elbError = c.status === 502 || c.status === 503 || c.status === 504;
  const target = elbError ? '-' : `10.0.${int(rng, 4)}.${10 + int(rng, 200)}:8080`;
  const targetMs = elbError ? 0 : c.status === 304 ? rng() * 0.01 : rng() * 0.35;
  const created = t;
  const responded = created + Math.floor((targetMs + 0.001) * 1e6);
  const port = tls ? 443 : 80;
  const url = `${tls ? 'https' : 'http'}://${c.host}:${port}${c.path}${c.query === '-' ? '' : `?${c.query}`}`;
  const httpVersion = type === 'h2' ? 'HTTP/2.0' : 'HTTP/1.1';
  // IPv6 clients are written without brackets: the port follows the last colon.
  const client = `${ip}:${1024 + int(rng, 64511)}`;
  const traceEpoch = Math.floor(created / 1e6).toString(16);
  const status = String(c.status);
  return [
    type,
    clock.iso(responded),
    ELB_NAME,
    client,
    target,
    elbError ? '-1' : '0.000',
    elbError ? '-1' : targetMs.toFixed(3),
    elbError ? '-1' : '0.000',
    status,
    elbError ? '-' : status,
    c.method === 'POST' ? 400 + int(rng, 2000) : 80 + int(rng, 600),
    c.bytes,
    `"${c.method} ${url} ${httpVersion}"`,
    `"${agent}"`,
    cipher,
    proto,
    TARGET_GROUP,
    `"Root=1-${traceEpoch}-${hex(rng, 24)}"`,
    tls ? `"${c.host}"` : '"-"',
    tls ? `"${CERT}"` : '"-"',
    c.host === 'api.example.com' ? 2 : c.host === 'static.example.com' ? 3 : 1,
    clock.iso(created),
    '"waf,forward"',
    '"-"',
    elbError ? '"TargetConnectionError"' : '"-"',
    `"${target}"`,
    `"${elbError ? '-' : status}"`,
    '"-"',
    '"-"',
    `TID_${hex(rng, 16)}`,
    '"-"',
    '"-"',
    '"-"',
  ].join(' ');
}

/** The agent string as each format writes it (CloudFront URL-encodes spaces). */
function agentText(format: BenchFormat, agent: string): string {
  return format === 'cloudfront' ? agent.replaceAll(' ', '%20') : agent;
}

/**
 * Generates the text of a log file, in chunks of about `chunkLines` lines.
 * Synchronous and deterministic; header lines (CloudFront) come first.
 */
export function* generateText(opts: GenerateOptions, chunkLines = 4096): Generator<string> {
  const o = resolveOptions(opts);
  const rng = mulberry32(o.seed);
  const clients = buildClients(o, rng);
  const plan = planRequests(o, rng);
  // Line content draws from its own stream so that the plan above is stable.
  const lineRng = mulberry32((o.seed ^ 0x9e3779b9) >>> 0);
  const clock = new Clock();
  const startUs = o.start * 1e6;
  const agents = (list: readonly string[]) => list.map((a) => agentText(o.format, a));
  const browserAgents = agents(BROWSER_AGENTS);
  const floodAgents = agents(FLOOD_AGENTS);
  const stufferAgents = agents(STUFFER_AGENTS);
  const scannerAgents = agents(SCANNER_AGENTS);
  const c: Content = {
    method: 'GET',
    host: '',
    path: '/',
    query: '-',
    status: 200,
    bytes: 0,
    type: 'html',
    referer: '-',
  };
  if (o.format === 'cloudfront') yield CLOUDFRONT_HEADER;
  let batch: string[] = [];
  for (let n = 0; n < o.lines; n++) {
    const i = plan.order[n]!;
    const who = plan.client[i]!;
    const role = who < FLOODERS ? 0 : who < FLOODERS + STUFFERS ? 1 : who < HEAVY ? 2 : 3;
    const agentIndex = clients.agent[who]!;
    const agent =
      role === 0
        ? floodAgents[agentIndex]!
        : role === 1
          ? stufferAgents[agentIndex]!
          : role === 2
            ? scannerAgents[agentIndex]!
            : browserAgents[agentIndex]!;
    content(lineRng, plan.kind[i]!, role, c);
    const t = startUs + Math.floor(plan.time[i]!);
    const ip = clients.addresses[who]!;
    batch.push(
      o.format === 'cloudfront'
        ? cloudfrontLine(lineRng, clock, t, ip, agent, EDGE_LOCATIONS[clients.edge[who]!]!, c)
        : albLine(lineRng, clock, t, ip, agent, c),
    );
    if (batch.length >= chunkLines) {
      yield `${batch.join('\n')}\n`;
      batch = [];
    }
  }
  if (batch.length > 0) yield `${batch.join('\n')}\n`;
}

/**
 * Generates a log file's plain text as Buffers (about 4,096 lines each).
 *
 * @example
 * for await (const chunk of generateLogs({ format: 'alb', lines: 5000, seed: 1 })) out.write(chunk);
 */
export async function* generateLogs(opts: GenerateOptions): AsyncGenerator<Buffer> {
  for (const text of generateText(opts)) yield Buffer.from(text, 'utf8');
}

/** Writes a gzip log file (atomically: a temporary file, then a rename). */
export async function writeBenchFile(path: string, opts: GenerateOptions): Promise<void> {
  const tmp = `${path}.${process.pid}.tmp`;
  try {
    await pipeline(Readable.from(generateLogs(opts)), createGzip(), createWriteStream(tmp));
    await rename(tmp, path);
  } catch (err) {
    await unlink(tmp).catch(() => undefined);
    throw err;
  }
}

/** The cache file name for a set of options. */
export function benchFileName(opts: GenerateOptions): string {
  const o = resolveOptions(opts);
  return `${o.format}-${o.lines}l-${o.clients}c-${o.minutes}m-${o.start}-s${o.seed}-v${GENERATOR_VERSION}.log.gz`;
}

/**
 * Returns the path of a generated gzip file under `dir`, generating it only
 * when it is not there yet.
 * @param dir cache directory
 * @default dir - `.bench` in the working directory
 */
export async function benchFile(
  opts: GenerateOptions,
  dir = '.bench',
): Promise<{ path: string; generated: boolean }> {
  const path = resolve(join(dir, benchFileName(opts)));
  const exists = await stat(path).then(
    (s) => s.isFile() && s.size > 0,
    () => false,
  );
  if (exists) return { path, generated: false };
  await mkdir(dir, { recursive: true });
  await writeBenchFile(path, opts);
  return { path, generated: true };
}

function parseCli(argv: readonly string[]): { opts: GenerateOptions; out: string | null } {
  const args = new Map<string, string>();
  for (let i = 0; i < argv.length; i += 2) {
    const flag = argv[i]!;
    const value = argv[i + 1];
    if (!flag.startsWith('--') || value === undefined) {
      throw new BenchOptionError(
        `usage: generate.ts --format cloudfront|alb [--lines N] [--seed N] [--clients N] [--out FILE]`,
      );
    }
    args.set(flag.slice(2), value);
  }
  const num = (name: string, fallback?: number): number | undefined => {
    const v = args.get(name);
    return v === undefined ? fallback : Number(v);
  };
  const format = (args.get('format') ?? 'cloudfront') as BenchFormat;
  return {
    opts: {
      format,
      lines: num('lines', 1_000_000)!,
      seed: num('seed', 1)!,
      clients: num('clients'),
    },
    out: args.get('out') ?? null,
  };
}

async function main(): Promise<void> {
  try {
    const { opts, out } = parseCli(process.argv.slice(2));
    const began = performance.now();
    if (out === null) {
      const { path, generated } = await benchFile(opts);
      const secs = ((performance.now() - began) / 1000).toFixed(1);
      console.log(generated ? `generated ${path} in ${secs} s` : `cached ${path}`);
    } else {
      await writeBenchFile(out, opts);
      console.log(`generated ${out} in ${((performance.now() - began) / 1000).toFixed(1)} s`);
    }
  } catch (err) {
    console.error(err instanceof BenchOptionError ? err.message : String(err));
    process.exitCode = 2;
  }
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  await main();
}

// ---------------------------------------------------------------- known attackers

/** A bench rule as the oracle sees it. */
export interface OracleRule {
  readonly threshold: number;
  readonly windowMinutes: number;
}

/** The bench rules the generator's roles are built for. */
export const ORACLE_RULES = {
  flood: { threshold: 2000, windowMinutes: 5 },
  login: { threshold: 20, windowMinutes: 5 },
  probes: { threshold: 50, windowMinutes: 1 },
} as const satisfies Record<string, OracleRule>;

/** Per bench rule, the client addresses that must be decided, sorted. */
export type KnownAttackers = Record<keyof typeof ORACLE_RULES, string[]>;

/** Chance of a wrong answer the oracle accepts for one heavy hitter and rule. */
const DOUBT = 1e-9;

/** Upper tail of the standard normal distribution (Abramowitz and Stegun 7.1.26). */
function upperTail(z: number): number {
  if (z < 0) return 1 - upperTail(-z);
  const x = z / Math.SQRT2;
  const t = 1 / (1 + 0.3275911 * x);
  const poly =
    t *
    (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))));
  return 0.5 * poly * Math.exp(-x * x);
}

/**
 * The generator's known attackers: which heavy hitters each bench rule must
 * decide, worked out from the plan's counts alone (never from the lines or
 * the engine), so that the bench can check every timed run. Flooders send
 * only ordinary requests (no `POST /login`, no 4xx); stuffers only
 * `POST /login`, 60% of them 401; scanners only 404s, each in its own fifth
 * of the span. Ordinary clients stay under every rule by construction
 * (sessions capped at about 60 requests a minute), so none is expected.
 *
 * @throws BenchOptionError when the options put a heavy hitter's rate too
 *   close to a threshold for a sure answer
 */
export function knownAttackers(opts: GenerateOptions): KnownAttackers {
  const o = resolveOptions(opts);
  const plan = planClients(o);
  const total = o.lines;
  const login = Math.round(total * MIX.login);
  const notFound = Math.round(total * MIX.notFound);
  const stufferLogins = Math.floor(login / 2);
  const scannerProbes = Math.floor(notFound / 2);
  const floods = Math.round(total * MIX.heavy) - stufferLogins - scannerProbes;
  const floodCounts = apportion(
    floods,
    Array.from({ length: FLOODERS }, (_, k) => 1 / (k + 1)),
  );
  const loginCounts = apportion(stufferLogins, Array(STUFFERS).fill(1));
  const probeCounts = apportion(scannerProbes, Array(SCANNERS).fill(1));
  const span = o.minutes;
  const scanSpan = span / SCANNERS;
  // Mean requests a rule's window holds, per heavy hitter and rule.
  const perWindow = (n: number, spread: number, w: number) => (n * Math.min(w, spread)) / spread;
  const out: KnownAttackers = { flood: [], login: [], probes: [] };
  // Requests land at uniformly random times, so a window's count is about
  // Poisson (normal for these means). A rule surely fires when every one of
  // the disjoint windows staying at or under the threshold is unlikely, and
  // surely stays quiet when any of the sliding windows passing it is.
  const judge = (rule: keyof KnownAttackers, ip: string, mean: number, spread: number) => {
    const { threshold, windowMinutes } = ORACLE_RULES[rule];
    const sd = Math.sqrt(Math.max(mean, 1));
    const windows = Math.max(1, Math.floor(spread / windowMinutes));
    const quietOnce = 1 - upperTail((threshold + 0.5 - mean) / sd);
    if (quietOnce ** windows < DOUBT) out[rule].push(ip);
    else if (spread * upperTail((threshold + 0.5 - mean) / sd) >= DOUBT) {
      throw new BenchOptionError(
        `${total} lines in ${span} minutes put heavy hitter ${ip} too close to the ${rule} threshold for a sure answer`,
      );
    }
  };
  const { flood, login: lg, probes } = ORACLE_RULES;
  plan.flooders.forEach((ip, i) => {
    judge('flood', ip, perWindow(floodCounts[i]!, span, flood.windowMinutes), span);
  });
  plan.stuffers.forEach((ip, i) => {
    const n = loginCounts[i]!;
    judge('flood', ip, perWindow(n, span, flood.windowMinutes), span);
    judge('login', ip, perWindow(n, span, lg.windowMinutes), span);
    judge('probes', ip, perWindow(n * 0.6, span, probes.windowMinutes), span);
  });
  plan.scanners.forEach((ip, i) => {
    const n = probeCounts[i]!;
    judge('flood', ip, perWindow(n, scanSpan, flood.windowMinutes), scanSpan);
    judge('probes', ip, perWindow(n, scanSpan, probes.windowMinutes), scanSpan);
  });
  for (const list of Object.values(out)) list.sort();
  return out;
}
