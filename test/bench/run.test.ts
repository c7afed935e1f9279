import { describe, expect, it } from 'vitest';
import { BENCH_CONFIG, checkDecisions } from '../../bench/measure';
import { renderClients, renderTable } from '../../bench/render';
import {
  type BenchOptions,
  type BenchReport,
  type ClientsResult,
  type FormatResult,
  TARGETS,
} from '../../bench/results';
import { passed, stat, valid } from '../../bench/run';
import { parseConfig } from '../../lambda/core/config';

function result(overrides: Partial<FormatResult> = {}): FormatResult {
  const s = (v: number) => stat([v]);
  return {
    format: 'alb',
    file: '/tmp/x.log.gz',
    gzipBytes: 1,
    bytes: 1,
    lines: 1000,
    requests: 1000,
    rejected: 0,
    gunzip: { wallMs: s(100), cpuMs: s(90) },
    gunzip16: { wallMs: s(120), cpuMs: s(110) },
    gunzipOwn: { wallMs: s(80), cpuMs: s(85) },
    engine: { wallMs: s(130), cpuMs: s(150), decideMs: s(5) },
    ratio: s(1.3),
    cpuRatio: s(1.67),
    ratio16: s(1.08),
    ratioOwn: s(1.6),
    invalid: null,
    linesPerSecond: { engine: 7692, gunzip: 10000 },
    peakRssMb: { engine: 120, gunzip: 60 },
    decisions: { total: 3, byRule: { flood: 1, login: 1, probes: 1 } },
    reference: null,
    targets: { ratio: TARGETS.ratio.alb, rssMb: TARGETS.rssMb },
    pass: { ratio: true, rss: true, valid: true },
    ...overrides,
  };
}

const OPTS: BenchOptions = {
  lines: 1000,
  runs: 1,
  formats: ['alb'],
  seed: 1,
  reference: false,
  rss: true,
};

describe('stat', () => {
  it('returns the middle value when the sample is odd', () => {
    expect(stat([5, 1, 9])).toEqual({ median: 5, min: 1, max: 9, values: [5, 1, 9] });
  });

  it('returns the mean of the two middle values when the sample is even', () => {
    expect(stat([4, 1, 3, 10]).median).toBe(3.5);
  });
});

describe('renderTable', () => {
  it('returns PASS with the figures when every target is met', () => {
    const out = renderTable([result()], OPTS);
    expect(out).toMatch(/ratio engine\/floor\s+│ 1\.30x/);
    expect(out).toMatch(/gunzip 64K ms \(floor\)/);
    expect(out).toMatch(/<= 1\.4x/);
    expect(out).toMatch(/120 MB \(60 MB\), <= 200 MB/);
    expect(out).toMatch(/flood 1, login 1, probes 1/);
    expect(out).toMatch(/│ PASS/);
  });

  it('returns FAIL naming each missed target', () => {
    const out = renderTable(
      [result({ pass: { ratio: false, rss: false, valid: false }, rejected: 2 })],
      OPTS,
    );
    expect(out).toMatch(/FAIL \(ratio, rss, decisions\)/);
    expect(out).toMatch(/1,000 \/ 2/);
  });
});

function report(overrides: Partial<BenchReport> = {}): BenchReport {
  return {
    formats: [result()],
    clients: null,
    startup: null,
    endToEnd: [],
    parallel: null,
    ...overrides,
  };
}

const CLIENTS: ClientsResult = {
  lines: 1_000_000,
  clients: { few: 22_000, many: 450_000 },
  fewMs: stat([1000]),
  manyMs: stat([1500]),
  timeRatio: stat([1.5]),
  peakRssMb: { few: 100, many: 250, gunzip: 70 },
  bytesPerClient: 419,
  invalid: null,
  pass: true,
};

describe('passed and valid', () => {
  it('returns true for both when every case passes', () => {
    expect(passed(report({ clients: CLIENTS }))).toBe(true);
    expect(valid(report({ clients: CLIENTS }))).toBe(true);
  });

  it('returns false for valid when a timed run decided other than the known attackers', () => {
    const bad = report({ formats: [result({ invalid: 'missing [flood 192.0.2.7]' })] });
    expect(valid(bad)).toBe(false);
    const badClients = report({ clients: { ...CLIENTS, invalid: 'x', pass: false } });
    expect(valid(badClients)).toBe(false);
    expect(passed(badClients)).toBe(false);
  });

  it('returns false for passed when a case misses its target', () => {
    expect(passed(report({ clients: { ...CLIENTS, pass: false } }))).toBe(false);
    expect(
      passed(report({ formats: [result({ pass: { ratio: false, rss: true, valid: true } })] })),
    ).toBe(false);
  });
});

describe('renderClients', () => {
  it('returns the time ratio, peak RSS and bytes per client', () => {
    const out = renderClients(CLIENTS);
    expect(out).toMatch(/1\.50x \(1\.50x-1\.50x\), <= 2x/);
    expect(out).toMatch(/100 MB \/ 250 MB \(70 MB\), many <= 300 MB/);
    expect(out).toMatch(/bytes per client\s+│ 419/);
    expect(TARGETS.clients.rssMb).toBe(300);
  });
});

describe('checkDecisions', () => {
  const config = parseConfig(BENCH_CONFIG);
  const known = { flood: ['192.0.2.7', '2001:db8:1:2::9'], login: ['198.51.100.1'], probes: [] };

  it('returns null when the decisions are the known attackers, keys masked as the rule masks', () => {
    const decisions = [
      { rule: 'login', key: '198.51.100.1' },
      { rule: 'flood', key: '2001:db8:1:2::/64' },
      { rule: 'flood', key: '192.0.2.7' },
    ];
    expect(checkDecisions(decisions, known, config)).toBeNull();
  });

  it('returns what is missing and what is unexpected', () => {
    const decisions = [
      { rule: 'flood', key: '192.0.2.7' },
      { rule: 'probes', key: '203.0.113.5' },
    ];
    expect(checkDecisions(decisions, known, config)).toBe(
      'decisions differ from the known attackers: missing [flood 2001:db8:1:2::/64, login 198.51.100.1], unexpected [probes 203.0.113.5]',
    );
  });
});
