import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { type Io, run } from '../../cli/main';
import { albFile, burst, cloudFrontFile, type Hit, tempLogs } from './logs';

async function replayText(args: string[]): Promise<string> {
  let out = '';
  let err = '';
  const io: Io = { out: (t) => (out += t), err: (t) => (err += t), tty: false };
  const code = await run(['replay', ...args], io);
  expect(err).toBe('');
  expect(code).toBe(0);
  return out;
}

const CONFIG = {
  rules: [
    { name: 'flood', threshold: 20, window: '5m' },
    { name: 'login', threshold: 5, window: '5m', method: 'POST', path: '/login' },
    { name: 'nets', threshold: 30, window: '10m', ipv4Prefix: 24, ipv6Prefix: 48 },
  ],
  block: { duration: '10m', forgetAfter: '1h' },
};

/** Files whose clients and minutes overlap, so that every merge path is taken. */
function logs(): string {
  const files: Record<string, string | Buffer> = {};
  for (let f = 0; f < 7; f++) {
    const hits: Hit[] = [];
    for (let m = 0; m < 12; m++) {
      const minute = `2024-05-01T10:${String(10 + ((m + f) % 30)).padStart(2, '0')}`;
      hits.push(...burst(`198.51.100.${(m * 3 + f) % 9}`, minute, 3 + ((m + f) % 5)));
      hits.push(
        ...burst(`2001:db8:${f % 2}::${m % 4}`, minute, 2, { method: 'POST', path: '/login' }),
      );
      hits.push(...burst(`203.0.113.${50 + f}`, minute, 1, { status: 404 }));
    }
    const text = f % 2 === 0 ? cloudFrontFile(hits) : albFile(hits);
    files[`part-${f}.log${f % 3 === 0 ? '.gz' : ''}`] = f % 3 === 0 ? gzipSync(text) : text;
  }
  // A damaged gzip, a file of something else and a rejected line, for the problems list.
  files['broken.log.gz'] = gzipSync(
    cloudFrontFile(burst('192.0.2.1', '2024-05-01T10:20', 40)),
  ).subarray(0, 300);
  files['notes.txt'] = 'not an access log\n';
  files['bad.log'] = `${cloudFrontFile(burst('192.0.2.2', '2024-05-01T10:21', 4))}garbage line\n`;
  const dir = tempLogs(files);
  writeFileSync(join(dir, 'notes.txt'), 'not an access log\n');
  return dir;
}

describe('edgeban replay --workers', () => {
  const dir = logs();
  const config = join(dir, '..', `edgeban-${process.pid}.json`);
  writeFileSync(config, JSON.stringify(CONFIG));

  it('prints the same JSON, byte for byte, with 1, 2 and 3 worker threads', async () => {
    const args = ['--config', config, '--json', '--clients', dir];
    const one = await replayText(['--workers', '1', ...args]);
    const doc = JSON.parse(one);
    expect(doc.summary.files).toBe(10);
    expect(doc.problems.map((p: { kind: string }) => p.kind).sort()).toEqual([
      'damaged',
      'rejected',
      'skipped',
    ]);
    expect(doc.decisions.length).toBeGreaterThan(3);
    expect(await replayText(['--workers', '2', ...args])).toBe(one);
    expect(await replayText(['--workers', '3', ...args])).toBe(one);
  });

  it('writes the same HTML report with 1 and 3 worker threads', async () => {
    const one = join(dir, '..', `report-1-${process.pid}.html`);
    const three = join(dir, '..', `report-3-${process.pid}.html`);
    await replayText(['--workers', '1', '--config', config, '--report', one, dir]);
    await replayText(['--workers', '3', '--config', config, '--report', three, dir]);
    const html = (path: string) =>
      readFileSync(path, 'utf8').replace(/Generated [0-9T:.Z-]+\./, 'Generated (time).');
    expect(html(three)).toBe(html(one));
  });

  it('applies --since and --until in every worker as in one thread', async () => {
    const args = [
      '--config',
      config,
      '--json',
      '--since',
      '2024-05-01T10:15Z',
      '--until',
      '2024-05-01T10:30Z',
      dir,
    ];
    const one = await replayText(['--workers', '1', ...args]);
    expect(JSON.parse(one).summary.requestsOutOfRange).toBeGreaterThan(0);
    expect(await replayText(['--workers', '2', ...args])).toBe(one);
  });
});
