/**
 * Conformance against real log lines written by others: the shared corpus
 * (`../shared/corpus`, next to the checkout), read in place. Every sample
 * must be detected as its format or skipped with a reason; where a public
 * test suite recorded the client of each line (`corpus/oracles/`), the
 * engine must extract the same client from the same line.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import {
  type CloudFrontParser,
  FIELDS_PROBLEM,
  layoutFromFields,
  parseFieldsLine,
} from '../../lambda/core/formats/cloudfront';
import { createParser, SKIP_REASON } from '../../lambda/core/formats/detect';
import { canonicalIp } from '../../lambda/core/ip';
import { scanStream } from '../../lambda/core/scan';
import {
  blankRequest,
  type FieldNeeds,
  type FileScan,
  type LogFormat,
} from '../../lambda/core/types';
import { corpusPresent, ORACLES, SAMPLES } from '../fixtures/corpus';
import { chunked } from '../fixtures/logs';

const present = corpusPresent('conformance');

const NEEDS: FieldNeeds = { method: true, path: true, host: true, status: true };
const INVALID_CLIENT = 'invalid client address';

type Expectation = LogFormat | { skipped: string };

/** What each sample is, by name; the first matching rule wins. */
const EXPECTED: [RegExp, Expectation][] = [
  [/^ELBAccessLogTestFile$/, { skipped: SKIP_REASON.notLog }],
  // The 2017 doc page rendered the tabs as spaces: not a log CloudFront writes.
  [/_SPACES_NOT_TABS\.log$/, { skipped: SKIP_REASON.notLog }],
  // One record pretty-printed over many lines, as the CloudWatch console shows it.
  [/^awsdocs_cloudfront_v2_cloudwatch_example\.json$/, { skipped: SKIP_REASON.notLog }],
  [/^awsdocs_cloudfront_v2_firehose_example\.ndjson$/, { skipped: SKIP_REASON.jsonClientIp }],
  [/^awsdocs_cloudfront_v2_s3_w3c_example_AS_RENDERED\.txt$/, { skipped: FIELDS_PROBLEM.clientIp }],
  [/^awsdocs_nlb_tls_/, { skipped: SKIP_REASON.nlbTls }],
  [/^filebeat_elb_example-nlb-tcp\.log$/, { skipped: SKIP_REASON.nlbTls }],
  [/^awswafsec_waf-stack-app_log_out\.json$/, { skipped: SKIP_REASON.notLog }],
  [/^thirdparty_cloudfront_v2_json_/, 'cloudfront-json'],
  [/^dpetzold_loadbalancer_|^awsdocs_alb_|^vrl_parse_aws_alb_|ApplicationLoadBalancer/, 'alb'],
  [/^filebeat_elb_(application-lb|example-alb)-http\.log$/, 'alb'],
  [/^dpetzold_classic_loadbalancer_|^awsdocs_clb_|_aws_spec_elb\.log$/, 'elb'],
  [/^filebeat_elb_(elb-(http|tcp)|example-(http|https|ssl|tcp))\.log$/, 'elb'],
  [
    /^dpetzold_cloudfront|^awsdocs_cloudfront_legacy_example|_aws_spec_cloudfront\.log$/,
    'cloudfront',
  ],
  [/^awswafsec_.*CloudFront\.gz$|^awswafsec_cf-access-log-sample\.gz$/, 'cloudfront'],
];

function expectationFor(name: string): Expectation | undefined {
  return EXPECTED.find(([pattern]) => pattern.test(name))?.[1];
}

/** A sample's text, inflated when gzip. */
function sampleBytes(name: string): Buffer {
  const raw = readFileSync(join(SAMPLES, name));
  return raw[0] === 0x1f && raw[1] === 0x8b ? gunzipSync(raw) : raw;
}

interface Line {
  /** 1-based line number. */
  readonly number: number;
  /** Byte offset of the line in the (inflated) sample. */
  readonly offset: number;
  readonly text: Buffer;
}

/** The sample's lines, with their numbers and byte offsets (CR removed). */
function linesOf(bytes: Buffer): Line[] {
  const out: Line[] = [];
  let offset = 0;
  let number = 1;
  while (offset < bytes.length) {
    let nl = bytes.indexOf(10, offset);
    if (nl < 0) nl = bytes.length;
    let end = nl;
    if (end > offset && bytes[end - 1] === 13) end--;
    out.push({ number, offset, text: bytes.subarray(offset, end) });
    offset = nl + 1;
    number++;
  }
  return out;
}

const isData = (l: Line): boolean => l.text.toString('latin1').trim() !== '' && l.text[0] !== 0x23;

/** The whole sample through the scanner, clients in order. */
async function scanSample(name: string): Promise<{ result: FileScan; ips: string[] }> {
  const ips: string[] = [];
  const raw = readFileSync(join(SAMPLES, name));
  const result = await scanStream(chunked(raw), { needs: NEEDS }, (req) => ips.push(req.ip));
  return { result, ips };
}

/**
 * Each data line of a sample through the parser of the sample's detected
 * format, on its own: the client it yields, or its rejection reason.
 */
function perLine(
  name: string,
  format: LogFormat,
): Map<number, { ip: string } | { reason: string }> {
  const parser = createParser(format, NEEDS);
  const out = new Map<number, { ip: string } | { reason: string }>();
  for (const line of linesOf(sampleBytes(name))) {
    const fields = parseFieldsLine(line.text, 0, line.text.length);
    if (fields !== null && format === 'cloudfront') {
      (parser as CloudFrontParser).setLayout(layoutFromFields(fields));
    }
    if (!isData(line)) continue;
    const req = blankRequest();
    const reason = parser.parse(line.text, 0, line.text.length, req);
    out.set(line.number, reason === null ? { ip: req.ip } : { reason });
  }
  return out;
}

/** Line number of the line that starts at `offset`. */
function lineAtOffset(name: string, offset: number): number {
  const line = linesOf(sampleBytes(name)).find((l) => l.offset === offset);
  if (line === undefined) throw new Error(`${name}: no line starts at offset ${offset}`);
  return line.number;
}

/** `addr:port` (port after the last colon) → canonical address. */
function clientOfHostPort(hostPort: string): string | null {
  return canonicalIp(hostPort.slice(0, hostPort.lastIndexOf(':')));
}

describe.runIf(present)('conformance with the shared corpus', () => {
  const samples = present ? readdirSync(SAMPLES).sort() : [];

  it('has an expectation for every sample', () => {
    expect(samples.filter((name) => expectationFor(name) === undefined)).toEqual([]);
  });

  for (const name of samples) {
    const expected = expectationFor(name);
    if (expected === undefined) continue;
    if (typeof expected === 'string') {
      it(`detects ${name} as ${expected}, every data line a request or a rejected line`, async () => {
        const { result, ips } = await scanSample(name);
        expect(result.format).toBe(expected);
        expect(result.skipped).toBeNull();
        expect(result.damaged).toBeNull();
        const data = linesOf(sampleBytes(name)).filter(isData);
        expect(result.lines).toBe(data.length);
        // The whole-file scan agrees with the lines parsed one by one.
        const lines = [...perLine(name, expected).values()];
        expect(ips).toEqual(lines.flatMap((l) => ('ip' in l ? [l.ip] : [])));
        expect(result.rejected).toBe(lines.filter((l) => 'reason' in l).length);
      });
    } else {
      it(`skips ${name}: ${expected.skipped}`, async () => {
        const { result, ips } = await scanSample(name);
        expect(result).toMatchObject({ format: null, skipped: expected.skipped, lines: 0 });
        expect(ips).toEqual([]);
      });
    }
  }

  it('reads all 28,949 rows of awswafsec_cf-access-log-sample.gz', async () => {
    const { result } = await scanSample('awswafsec_cf-access-log-sample.gz');
    expect(result).toMatchObject({
      format: 'cloudfront',
      lines: 28_949,
      requests: 28_949,
      rejected: 0,
    });
  });

  it('rejects the sanitised x.x.x.x clients, never counts them', async () => {
    // Client column: CloudFront c-ip (5th, tabs); ALB client:port (4th, spaces).
    const sanitised: [string, (line: string) => string | undefined][] = [
      ['awswafsec_E3HXCM7PFRG6HT.2023-04-24-21.d740d76bCloudFront.gz', (l) => l.split('\t')[4]],
      [
        samples.find((n) => n.startsWith('awswafsec_') && n.includes('ApplicationLoadBalancer'))!,
        (l) => l.split(' ')[3],
      ],
    ];
    for (const [name, clientField] of sanitised) {
      const data = linesOf(sampleBytes(name)).filter(isData);
      expect(data.length).toBeGreaterThan(0);
      for (const line of data)
        expect(clientField(line.text.toString('latin1'))).toMatch(/^x\.[x0-9.]+/i);
      const { result, ips } = await scanSample(name);
      expect(ips).toEqual([]);
      expect(result).toMatchObject({ requests: 0, rejected: data.length });
      expect(result.firstRejected?.reason).toBe(INVALID_CLIENT);
      for (const verdict of perLine(name, result.format!).values()) {
        expect(verdict).toEqual({ reason: INVALID_CLIENT });
      }
    }
  });

  describe('oracles', () => {
    const oracle = (file: string): unknown => JSON.parse(readFileSync(join(ORACLES, file), 'utf8'));

    it('filebeat application-lb-http: the client of every line', async () => {
      const name = 'filebeat_elb_application-lb-http.log';
      const { events } = oracle(`${name}-expected.condensed.json`) as {
        events: { 'log.offset': number; 'source.ip': string }[];
      };
      const lines = perLine(name, 'alb');
      for (const e of events) {
        expect(lines.get(lineAtOffset(name, e['log.offset']))).toEqual({
          ip: canonicalIp(e['source.ip']),
        });
      }
      const { ips } = await scanSample(name);
      expect(ips).toEqual(events.map((e) => canonicalIp(e['source.ip'])));
    });

    it('filebeat example-alb-http: the client of every line, malformed ones included', async () => {
      const name = 'filebeat_elb_example-alb-http.log';
      const { events } = oracle('filebeat_elb_example-alb-http.log-expected.condensed.json') as {
        events: { 'log.offset': number; 'source.ip': string }[];
      };
      const lines = perLine(name, 'alb');
      for (const e of events) {
        expect(lines.get(lineAtOffset(name, e['log.offset']))).toEqual({
          ip: canonicalIp(e['source.ip']),
        });
      }
      const { ips } = await scanSample(name);
      expect(ips).toEqual(events.map((e) => canonicalIp(e['source.ip'])));
    });

    it('filebeat misc: Classic ELB TCP clients line by line; the NLB TLS log is skipped by design', async () => {
      const misc = oracle('filebeat_elb_misc-expected.condensed.json') as Record<
        string,
        { events: { 'log.offset': number; 'source.ip': string }[] }
      >;
      const tcp = 'filebeat_elb_elb-tcp.log';
      const lines = perLine(tcp, 'elb');
      for (const e of misc[tcp]!.events) {
        expect(lines.get(lineAtOffset(tcp, e['log.offset']))).toEqual({
          ip: canonicalIp(e['source.ip']),
        });
      }
      expect((await scanSample(tcp)).ips).toEqual(
        misc[tcp]!.events.map((e) => canonicalIp(e['source.ip'])),
      );
      // Filebeat reads the TLS client of an NLB; DESIGN section 2 skips NLB
      // TLS logs (no HTTP requests, and WAF cannot front an NLB).
      const nlb = 'filebeat_elb_example-nlb-tcp.log';
      expect(misc[nlb]!.events).toHaveLength(1);
      expect((await scanSample(nlb)).result).toMatchObject({
        skipped: SKIP_REASON.nlbTls,
        lines: 0,
      });
    });

    it('logstash aws_spec: the client of every line it asserts', async () => {
      const spec = oracle('logstash_patterns_core_aws_spec-expected.condensed.json') as Record<
        string,
        unknown
      >;
      const cases: [string, LogFormat][] = [
        ['logstash_patterns_core_aws_spec_elb.log', 'elb'],
        ['logstash_patterns_core_aws_spec_cloudfront.log', 'cloudfront'],
      ];
      for (const [name, format] of cases) {
        const entries = spec[name] as Record<string, unknown>[];
        const lines = perLine(name, format);
        let checked = 0;
        for (const entry of entries) {
          const ip = (entry.clientip ?? entry['source.ip (ecs)']) as string | undefined;
          if (ip === undefined) continue;
          expect(lines.get(entry.line as number)).toEqual({ ip: canonicalIp(ip) });
          checked++;
        }
        expect(checked).toBeGreaterThan(0);
        expect((await scanSample(name)).result.format).toBe(format);
      }
    });

    it('vrl parse_aws_alb_log: the client of each test line, in order', async () => {
      const name = 'vrl_parse_aws_alb_log_tests.log';
      const tests = oracle('vrl_parse_aws_alb_log_tests-expected.json') as {
        client_host: string;
      }[];
      const lines = perLine(name, 'alb');
      expect(lines.size).toBe(tests.length);
      tests.forEach((t, i) => {
        expect(lines.get(i + 1)).toEqual({ ip: clientOfHostPort(t.client_host) });
      });
      expect((await scanSample(name)).ips).toEqual(
        tests.map((t) => clientOfHostPort(t.client_host)),
      );
    });
  });
});
