import { createHash } from 'node:crypto';
import { createReadStream, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { afterAll, describe, expect, it } from 'vitest';
import {
  ALB_FIELD_COUNT,
  type BenchFormat,
  benchFile,
  CLOUDFRONT_FIELDS,
  formatIpv6,
  type GenerateOptions,
  generateLogs,
  generateText,
  knownAttackers,
  planClients,
  resolveOptions,
  writeBenchFile,
} from '../../bench/generate';
import { BENCH_CONFIG } from '../../bench/measure';
import { parseConfig } from '../../lambda/core/config';
import { Engine } from '../../lambda/core/engine';
import { guardFor } from '../../lambda/core/guard';
import { canonicalIp } from '../../lambda/core/ip';

const LINES = 5000;

function opts(format: BenchFormat, overrides: Partial<GenerateOptions> = {}): GenerateOptions {
  return { format, lines: LINES, seed: 7, ...overrides };
}

function text(o: GenerateOptions): string {
  return [...generateText(o)].join('');
}

function sha256(s: string | Buffer): string {
  return createHash('sha256').update(s).digest('hex');
}

/** The fields a rule can use, decoded independently of the engine. */
interface Row {
  ip: string;
  method: string;
  path: string;
  query: string;
  status: string;
  host: string;
  /** Epoch milliseconds of the request time the engine counts by. */
  at: number;
}

const DATE = /^\d{4}-\d{2}-\d{2}$/;
const TIME = /^\d{2}:\d{2}:\d{2}$/;
const ISO = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$/;
const METHODS = new Set(['GET', 'POST', 'HEAD', 'OPTIONS']);

/** Checks one CloudFront row's structure; returns its fields or a reason. */
function cloudfrontRow(line: string): Row | string {
  const f = line.split('\t');
  if (f.length !== CLOUDFRONT_FIELDS.length) return `has ${f.length} fields`;
  const [date, time, edge, scBytes, ip, method, csHost, stem, status] = f as [string, ...string[]];
  if (!DATE.test(date) || !TIME.test(time!)) return `bad date/time ${date} ${time}`;
  if (!/^[A-Z]{3}\d+-[A-Z0-9]+$/.test(edge!)) return `bad edge ${edge}`;
  if (!/^\d+$/.test(scBytes!)) return `bad sc-bytes ${scBytes}`;
  if (canonicalIp(ip!) !== ip) return `client not canonical: ${ip}`;
  if (!METHODS.has(method!)) return `bad method ${method}`;
  if (!csHost!.endsWith('.cloudfront.net')) return `bad cs(Host) ${csHost}`;
  if (!stem!.startsWith('/') || stem!.includes('?')) return `bad uri stem ${stem}`;
  if (!/^[1-5]\d\d$/.test(status!)) return `bad status ${status}`;
  if (f.some((v) => v === '' || v.includes(' '))) return 'empty field or raw space';
  if (!/^[A-Za-z0-9_-]{54}==$/.test(f[14]!)) return `bad request id ${f[14]}`;
  if (!/^\d+$/.test(f[26]!)) return `bad c-port ${f[26]}`;
  return {
    ip: ip!,
    method: method!,
    path: stem!,
    query: f[11]!,
    status: status!,
    host: f[15]!,
    at: Date.parse(`${date}T${time}Z`),
  };
}

/** Checks one ALB row's structure; returns its fields or a reason. */
function albRow(line: string): Row | string {
  const f = line.match(/"(?:[^"\\]|\\.)*"|[^ ]+/g) ?? [];
  if (f.length !== ALB_FIELD_COUNT) return `has ${f.length} fields`;
  const [type, time, elb, client] = f as [string, ...string[]];
  if (!['http', 'https', 'h2'].includes(type)) return `bad type ${type}`;
  if (!ISO.test(time!) || !ISO.test(f[21]!)) return `bad time ${time} / ${f[21]}`;
  if (!elb!.startsWith('app/')) return `bad elb ${elb}`;
  const colon = client!.lastIndexOf(':');
  const ip = client!.slice(0, colon);
  const port = Number(client!.slice(colon + 1));
  if (canonicalIp(ip) !== ip || !(port >= 1 && port <= 65535)) return `bad client ${client}`;
  const status = f[8]!;
  if (!/^[1-5]\d\d$/.test(status)) return `bad status ${status}`;
  const request =
    /^"([A-Z]+) (https?):\/\/([^/:]+):(\d+)(\/[^ ?]*)(?:\?([^ ]*))? HTTP\/[12]\.[01]"$/.exec(
      f[12]!,
    );
  if (request === null) return `bad request ${f[12]}`;
  if (!/^"[^"]+"$/.test(f[13]!)) return `bad user agent ${f[13]}`;
  if (!/^"Root=1-[0-9a-f]{8}-[0-9a-f]{24}"$/.test(f[17]!)) return `bad trace id ${f[17]}`;
  if (!/^TID_[0-9a-f]{16}$/.test(f[29]!)) return `bad conn_trace_id ${f[29]}`;
  if (Date.parse(f[21]!) > Date.parse(time!)) return 'request created after the response';
  return {
    ip,
    method: request[1]!,
    path: request[5]!,
    query: request[6] ?? '-',
    status,
    host: request[3]!,
    at: Date.parse(f[21]!),
  };
}

/** Every request row of a generated text, failing on the first malformed one. */
function rows(format: BenchFormat, body: string): Row[] {
  const lines = body.split('\n');
  expect(lines.pop()).toBe('');
  const out: Row[] = [];
  lines.forEach((line, i) => {
    if (line.startsWith('#')) return;
    const row = format === 'cloudfront' ? cloudfrontRow(line) : albRow(line);
    if (typeof row === 'string') throw new Error(`line ${i + 1}: ${row}: ${line}`);
    out.push(row);
  });
  return out;
}

const cache = new Map<BenchFormat, { body: string; rows: Row[] }>();
function sample(format: BenchFormat): { body: string; rows: Row[] } {
  let s = cache.get(format);
  if (s === undefined) {
    const body = text(opts(format));
    s = { body, rows: rows(format, body) };
    cache.set(format, s);
  }
  return s;
}

describe('generateText', () => {
  for (const format of ['cloudfront', 'alb'] as const) {
    describe(format, () => {
      it('returns identical bytes when the seed is the same', () => {
        expect(sha256(text(opts(format)))).toBe(sha256(sample(format).body));
      });

      it('returns different bytes when the seed differs', () => {
        const other = text(opts(format, { seed: 8 }));
        expect(sha256(other)).not.toBe(sha256(sample(format).body));
        expect(other.split('\n').length).toBe(sample(format).body.split('\n').length);
      });

      it('writes only rows valid for the format, in the requested number', () => {
        expect(sample(format).rows).toHaveLength(LINES);
      });

      it('spreads the requests over 60 minutes, mostly in order', () => {
        const at = sample(format).rows.map((r) => r.at);
        const start = Date.UTC(2024, 4, 1, 10);
        expect(Math.min(...at)).toBeGreaterThanOrEqual(start);
        expect(Math.max(...at)).toBeLessThan(start + 3_600_000);
        const minutes = new Set(at.map((t) => Math.floor(t / 60000)));
        expect(minutes.size).toBe(60);
        // Jitter of at most two seconds: never a step back of more than that.
        let worst = 0;
        for (let i = 1; i < at.length; i++) worst = Math.max(worst, at[i - 1]! - at[i]!);
        expect(worst).toBeGreaterThan(0);
        expect(worst).toBeLessThanOrEqual(2000);
      });

      it('has the bench mix: heavy hitters, IPv6, POST /login, 404s, clients', () => {
        const { rows: all } = sample(format);
        const plan = planClients(opts(format));
        const heavy = new Set(plan.heavy);
        const share = (pred: (r: Row) => boolean) => all.filter(pred).length / all.length;
        expect(share((r) => heavy.has(r.ip))).toBeCloseTo(0.2, 2);
        expect(share((r) => r.method === 'POST' && r.path === '/login')).toBeCloseTo(0.02, 3);
        expect(share((r) => r.status === '404')).toBeCloseTo(0.03, 3);
        expect(share((r) => r.ip.includes(':'))).toBeGreaterThan(0.02);
        expect(share((r) => r.ip.includes(':'))).toBeLessThan(0.09);
        // 2.2% of the lines, every one of them present.
        const distinct = new Set(all.map((r) => r.ip));
        expect(distinct.size).toBe(Math.round(LINES * 0.022));
        expect([...distinct].sort()).toEqual([...plan.addresses].sort());
        // Others are mostly GET 200/304.
        const other = all.filter((r) => r.path !== '/login' && r.status !== '404');
        const get2xx3xx = other.filter(
          (r) => r.method === 'GET' && (r.status === '200' || r.status === '304'),
        );
        expect(get2xx3xx.length / other.length).toBeGreaterThan(0.85);
        expect(new Set(other.map((r) => r.host)).size).toBeGreaterThanOrEqual(3);
        expect(share((r) => r.query !== '-')).toBeGreaterThan(0.1);
      });

      it('gives each heavy hitter its role', () => {
        const { rows: all } = sample(format);
        const plan = planClients(opts(format));
        const of = (ip: string) => all.filter((r) => r.ip === ip);
        for (const ip of plan.stuffers) {
          expect(of(ip).every((r) => r.method === 'POST' && r.path === '/login')).toBe(true);
        }
        for (const ip of plan.scanners) {
          expect(of(ip).every((r) => r.status === '404')).toBe(true);
        }
        const floods = plan.flooders.map((ip) => of(ip).length);
        expect(floods[0]).toBeGreaterThan(floods[9]! * 5);
        expect(of(plan.flooders[0]!).every((r) => r.status[0] !== '4')).toBe(true);
      });
    });
  }

  it('writes the documented CloudFront header', () => {
    const [version, fields] = sample('cloudfront').body.split('\n');
    expect(version).toBe('#Version: 1.0');
    expect(fields).toBe(
      '#Fields: date time x-edge-location sc-bytes c-ip cs-method cs(Host) cs-uri-stem sc-status ' +
        'cs(Referer) cs(User-Agent) cs-uri-query cs(Cookie) x-edge-result-type x-edge-request-id ' +
        'x-host-header cs-protocol cs-bytes time-taken x-forwarded-for ssl-protocol ssl-cipher ' +
        'x-edge-response-result-type cs-protocol-version fle-status fle-encrypted-fields c-port ' +
        'time-to-first-byte x-edge-detailed-result-type sc-content-type sc-content-len ' +
        'sc-range-start sc-range-end',
    );
  });

  it('writes user agents with spaces: raw in ALB, %20 in CloudFront', () => {
    expect(sample('alb').body).toMatch(/ "Mozilla\/5\.0 \(Windows NT 10\.0; Win64; x64\)/);
    expect(sample('cloudfront').body).toMatch(/\tMozilla\/5\.0%20\(Windows%20NT%2010\.0;/);
  });
});

describe('knownAttackers', () => {
  it('returns the two busiest flooders, every stuffer and every scanner for the 1M-line hour', () => {
    const o = { format: 'cloudfront' as const, lines: 1_000_000, seed: 1 };
    const plan = planClients(o);
    expect(knownAttackers(o)).toEqual({
      flood: [plan.flooders[0]!, plan.flooders[1]!].sort(),
      login: [...plan.stuffers].sort(),
      probes: [...plan.scanners].sort(),
    });
  });

  it('throws when a heavy hitter is too close to a threshold for a sure answer', () => {
    expect(() => knownAttackers({ format: 'alb', lines: 50_000, seed: 1 })).toThrow(
      /too close to the login threshold/,
    );
  });
});

describe('planClients', () => {
  const big: GenerateOptions = { format: 'alb', lines: 1_000_000, seed: 1 };

  it('returns about 22,000 clients, 5% of them IPv6, for 1M lines', () => {
    const plan = planClients(big);
    expect(plan.addresses).toHaveLength(22_000);
    expect(new Set(plan.addresses).size).toBe(22_000);
    const v6 = plan.addresses.filter((a) => a.includes(':')).length / 22_000;
    expect(v6).toBeGreaterThan(0.045);
    expect(v6).toBeLessThan(0.055);
    expect(plan.heavy).toEqual([...plan.flooders, ...plan.stuffers, ...plan.scanners]);
    expect(plan.heavy).toHaveLength(20);
  });

  it('returns only canonical, unguarded addresses', () => {
    const guard = guardFor([]);
    for (const ip of planClients(big).addresses) {
      expect(canonicalIp(ip)).toBe(ip);
      if (guard.isGuarded(ip)) throw new Error(`guarded client ${ip}`);
    }
  });
});

describe('formatIpv6', () => {
  it('returns RFC 5952 text when groups hold zero runs', () => {
    expect(formatIpv6([0x2001, 0xdb8, 0, 0, 1, 0, 0, 1])).toBe('2001:db8::1:0:0:1');
    expect(formatIpv6([0x2a01, 0xe0a, 0, 0xab, 0, 0, 0, 1])).toBe('2a01:e0a:0:ab::1');
    expect(formatIpv6([0x2a01, 0xe0a, 1, 2, 3, 4, 5, 6])).toBe('2a01:e0a:1:2:3:4:5:6');
  });
});

describe('resolveOptions', () => {
  it('throws when an option is out of range', () => {
    expect(() => resolveOptions(opts('alb', { lines: 10 }))).toThrow(/lines must be .* got 10/);
    expect(() => resolveOptions(opts('alb', { seed: -1 }))).toThrow(/seed must be/);
    expect(() => resolveOptions(opts('alb', { clients: 4500 }))).toThrow(/clients must be/);
    expect(() => resolveOptions(opts('alb', { minutes: 7 }))).toThrow(/minutes must be/);
    expect(() => resolveOptions({ ...opts('alb'), format: 'elb' as BenchFormat })).toThrow(
      /format must be/,
    );
  });

  it('returns 22,000 clients for 1M lines when clients is not given', () => {
    expect(resolveOptions({ format: 'alb', lines: 1_000_000, seed: 1 }).clients).toBe(22_000);
  });
});

describe('benchFile', () => {
  const dir = mkdtempSync(join(tmpdir(), 'edgeban-bench-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('writes a gzip file of the generated text once, then returns it from the cache', async () => {
    const o = opts('alb', { clients: 300 });
    const first = await benchFile(o, dir);
    expect(first.generated).toBe(true);
    const gz = readFileSync(first.path);
    expect(gz[0]).toBe(0x1f);
    expect(gz[1]).toBe(0x8b);
    const body = gunzipSync(gz).toString('utf8');
    expect(body).toBe(text(o));
    expect(new Set(rows('alb', body).map((r) => r.ip)).size).toBe(300);
    const mtime = statSync(first.path).mtimeMs;
    const again = await benchFile(o, dir);
    expect(again).toEqual({ path: first.path, generated: false });
    expect(statSync(first.path).mtimeMs).toBe(mtime);
    const other = await benchFile(opts('alb', { clients: 300, seed: 9 }), dir);
    expect(other.path).not.toBe(first.path);
  });

  it('writes the same bytes as generateLogs yields', async () => {
    const o = opts('cloudfront', { lines: 1000 });
    const path = join(dir, 'direct.log.gz');
    await writeBenchFile(path, o);
    const chunks: Buffer[] = [];
    for await (const c of generateLogs(o)) chunks.push(c);
    expect(gunzipSync(readFileSync(path)).equals(Buffer.concat(chunks))).toBe(true);
  });
});

describe('the engine over generated files', () => {
  const dir = mkdtempSync(join(tmpdir(), 'edgeban-bench-engine-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  for (const format of ['cloudfront', 'alb'] as const) {
    it(`scans a generated ${format} file with no rejected line`, async () => {
      const { path } = await benchFile(opts(format), dir);
      const engine = new Engine(parseConfig(BENCH_CONFIG));
      const scan = await engine.scan(createReadStream(path));
      expect(scan).toMatchObject({
        format,
        lines: LINES,
        requests: LINES,
        rejected: 0,
        firstRejected: null,
        skipped: null,
        damaged: null,
        minMinute: Date.UTC(2024, 4, 1, 10) / 60000,
        maxMinute: Date.UTC(2024, 4, 1, 10, 59) / 60000,
      });
      const clients = engine.clients();
      expect(clients).toHaveLength(Math.round(LINES * 0.022));
      // The engine sees the same clients and counts as the independent row check.
      const counts = new Map<string, number>();
      for (const r of sample(format).rows) counts.set(r.ip, (counts.get(r.ip) ?? 0) + 1);
      for (const c of clients) expect(c.requests).toBe(counts.get(c.ip));
    });

    it(`decides every bench rule, for heavy hitters only, on a dense ${format} file`, async () => {
      // 50,000 lines in 5 minutes: the 1M-line hour's rates, so the same rules fire.
      const o = opts(format, { lines: 50_000, minutes: 5 });
      const { path } = await benchFile(o, dir);
      const engine = new Engine(parseConfig(BENCH_CONFIG));
      const scan = await engine.scan(createReadStream(path));
      expect(scan.rejected).toBe(0);
      const plan = planClients(o);
      const decided = (rule: string) =>
        engine
          .decisions()
          .filter((d) => d.rule === rule)
          .map((d) => d.key)
          .sort();
      // IPv6 keys are /64 CIDRs: compare by the address they were masked from.
      expect(decided('flood')).toEqual([plan.flooders[0]]);
      expect(decided('login')).toEqual([...plan.stuffers].sort());
      expect(decided('probes')).toEqual([...plan.scanners].sort());
      // The oracle the bench checks every timed run against says the same.
      expect(knownAttackers(o)).toEqual({
        flood: decided('flood'),
        login: decided('login'),
        probes: decided('probes'),
      });
    });
  }
});
