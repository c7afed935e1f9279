import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { type Io, run } from '../../cli/main';
import { albFile, burst, cloudFrontFile, type Hit, tempLogs } from './logs';

async function edgeban(args: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const io: Io = { out: (t) => (out += t), err: (t) => (err += t), tty: false };
  const code = await run(args, io);
  return { code, out, err };
}

async function replayJson(args: string[]) {
  const r = await edgeban(['replay', '--json', ...args]);
  expect(r.err).toBe('');
  expect(r.code).toBe(0);
  return JSON.parse(r.out);
}

const RULES = {
  rules: [
    { name: 'flood', threshold: 20, window: '5m' },
    { name: 'login', threshold: 5, window: '5m', method: 'POST', path: '/login' },
  ],
  block: { duration: '1h' },
};

function configFile(dir: string, config: unknown = RULES): string {
  const path = join(dir, 'edgeban.json');
  writeFileSync(path, JSON.stringify(config));
  return path;
}

describe('edgeban replay --json', () => {
  it('counts a client across CloudFront and ALB files and decides once per key and rule', async () => {
    const cf: Hit[] = [
      ...burst('198.51.100.7', '2024-05-01T10:04', 12),
      ...burst('203.0.113.9', '2024-05-01T10:04', 3),
    ];
    const alb: Hit[] = [
      ...burst('198.51.100.7', '2024-05-01T10:06', 9),
      ...burst('2001:db8::5', '2024-05-01T10:06', 6, { method: 'POST', path: '/login' }),
    ];
    const dir = tempLogs({ 'a.log.gz': cloudFrontFile(cf), 'b.log': albFile(alb) });
    const doc = await replayJson(['--config', configFile(dir), '--clients', dir]);
    expect(doc.summary).toEqual({
      files: 3,
      lines: 30,
      requests: 30,
      rejected: 0,
      skippedFiles: 1,
      damagedFiles: 0,
    });
    expect(doc.problems).toEqual([
      { file: join(dir, 'edgeban.json'), kind: 'skipped', reason: expect.any(String) },
    ]);
    expect(doc.clients).toEqual([
      { ip: '198.51.100.7', requests: 21 },
      { ip: '2001:db8::5', requests: 6 },
      { ip: '203.0.113.9', requests: 3 },
    ]);
    expect(doc.decisions).toEqual([
      {
        key: '198.51.100.7',
        rule: 'flood',
        peak: 21,
        firstExceeded: '2024-05-01T10:06:00Z',
        blockedUntil: '2024-05-01T11:07:00Z',
        offences: 1,
      },
      {
        key: '2001:db8::/64',
        rule: 'login',
        peak: 6,
        firstExceeded: '2024-05-01T10:06:00Z',
        blockedUntil: '2024-05-01T11:07:00Z',
        offences: 1,
      },
    ]);
  });

  it('keeps the lines before a gzip break and lists the damaged file', async () => {
    const whole = gzipSync(cloudFrontFile(burst('198.51.100.7', '2024-05-01T10:04', 500)));
    const dir = tempLogs({ 'cut.gz': whole.subarray(0, Math.floor(whole.length * 0.6)) });
    const doc = await replayJson(['--threshold', '1000', dir]);
    expect(doc.summary.damagedFiles).toBe(1);
    expect(doc.summary.requests).toBeGreaterThan(0);
    expect(doc.summary.requests).toBeLessThan(500);
    expect(doc.problems[0]).toMatchObject({ file: join(dir, 'cut.gz'), kind: 'damaged' });
  });

  it('counts rejected lines with the first line number and never lets them decide', async () => {
    const text = cloudFrontFile([
      ...burst('198.51.100.7', '2024-05-01T10:04', 3),
      { ip: 'x.x.x.x', at: '2024-05-01T10:04:10Z' },
    ]);
    const dir = tempLogs({ 'a.log': `${text}bad\u0000line\n` });
    const doc = await replayJson(['--threshold', '1', '--clients', dir]);
    expect(doc.summary).toMatchObject({ lines: 5, requests: 3, rejected: 2 });
    expect(doc.problems).toEqual([
      {
        file: join(dir, 'a.log'),
        kind: 'rejected',
        count: 2,
        reason: expect.stringMatching(/^line 6: /),
      },
    ]);
    expect(doc.clients).toEqual([{ ip: '198.51.100.7', requests: 3 }]);
  });

  it('counts guarded clients as requests but never decides on them', async () => {
    const dir = tempLogs({ 'a.log': cloudFrontFile(burst('10.1.2.3', '2024-05-01T10:04', 50)) });
    const doc = await replayJson(['--threshold', '1', '--clients', dir]);
    expect(doc.summary.requests).toBe(50);
    expect(doc.clients).toEqual([{ ip: '10.1.2.3', requests: 50 }]);
    expect(doc.decisions).toEqual([]);
  });

  it('masks keys with --ipv4-prefix and writes them as CIDRs', async () => {
    const hits = [
      ...burst('198.51.100.7', '2024-05-01T10:04', 3),
      ...burst('198.51.100.200', '2024-05-01T10:04', 3),
    ];
    const dir = tempLogs({ 'a.log': cloudFrontFile(hits) });
    const doc = await replayJson(['--threshold', '5', '--ipv4-prefix', '24', dir]);
    expect(doc.decisions.map((d: { key: string; rule: string }) => [d.key, d.rule])).toEqual([
      ['198.51.100.0/24', 'cli'],
    ]);
  });
});

describe('edgeban replay text output', () => {
  it('prints the summary and a decisions table', async () => {
    const dir = tempLogs({
      'a.log': cloudFrontFile(burst('198.51.100.7', '2024-05-01T10:04', 30)),
    });
    const r = await edgeban(['replay', '--threshold', '10', dir]);
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/1 files, 30 lines: 30 requests, 0 rejected/);
    expect(r.out).toMatch(/198\.51\.100\.7\s+cli\s+30\s+2024-05-01T10:04:00Z/);
  });
});

describe('edgeban replay exit codes', () => {
  it('exits 2 with one line when a path does not exist', async () => {
    const r = await edgeban(['replay', '--threshold', '5', '/no/such/path']);
    expect(r.code).toBe(2);
    expect(r.err).toBe('edgeban: no such file or directory: /no/such/path\n');
  });

  it('exits 2 when there is no config and no --threshold', async () => {
    const dir = tempLogs({ 'a.log': '' });
    const r = await edgeban(['replay', '--config', join(dir, 'missing.json'), dir]);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/^edgeban: config file not found: .*missing\.json/);
  });

  it('exits 2 naming the field when the config is invalid', async () => {
    const dir = tempLogs({ 'a.log': '' });
    const cfg = configFile(dir, { rules: [{ name: 'x', threshold: -1, window: '5m' }] });
    const r = await edgeban(['replay', '--config', cfg, dir]);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/threshold/);
    expect(r.err).toMatch(/-1/);
    expect(r.err.trim().split('\n')).toHaveLength(1);
  });

  it('exits 2 on bad usage', async () => {
    expect((await edgeban(['replay'])).code).toBe(2);
    expect((await edgeban(['replay', '--threshold', 'ten', '.'])).code).toBe(2);
    expect((await edgeban(['frobnicate'])).code).toBe(2);
  });

  it('exits 0 when every file is skipped', async () => {
    const dir = tempLogs({
      ELBAccessLogTestFile: 'Enable AccessLog for ELB: x at 2017-03-18T18:17:10.999Z\n',
    });
    const doc = await replayJson(['--threshold', '5', dir]);
    expect(doc.summary).toMatchObject({ files: 1, skippedFiles: 1, requests: 0 });
    expect(doc.decisions).toEqual([]);
  });

  it('prints no stack trace from the real entry point', () => {
    const r = spawnSync(
      process.execPath,
      ['--import', 'tsx', 'bin/edgeban.ts', 'replay', '--threshold', '5', '/no/such/path'],
      { encoding: 'utf8' },
    );
    expect(r.status).toBe(2);
    expect(r.stderr).toBe('edgeban: no such file or directory: /no/such/path\n');
    expect(r.stdout).toBe('');
  });
});
