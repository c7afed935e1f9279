import { describe, expect, it } from 'vitest';
import { type BenchOptions, type FormatResult, renderTable, stat, TARGETS } from '../../bench/run';

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
    gunzip64: { wallMs: s(80), cpuMs: s(70) },
    engine: { wallMs: s(130), cpuMs: s(150), decideMs: s(5) },
    ratio: s(1.3),
    cpuRatio: s(1.67),
    ratio64: s(1.63),
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
    expect(out).toMatch(/ratio engine\/gunzip\s+│ 1\.30x/);
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
    expect(out).toMatch(/FAIL \(ratio, rss, lines\)/);
    expect(out).toMatch(/1,000 \/ 2/);
  });
});
