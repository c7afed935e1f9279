import { describe, expect, it } from 'vitest';
import { loadCloudFrontSnapshot } from '../../lambda/core/guard';
import { CloudFrontRanges, type FetchLike } from '../../lambda/state/ranges';

const HOUR = 3600_000;

function doc(v4: string[], v6: string[] = [], createDate = '2025-01-02-03-04-05') {
  return {
    syncToken: '1735787045',
    createDate,
    prefixes: [
      ...v4.map((p) => ({
        ip_prefix: p,
        region: 'GLOBAL',
        service: 'CLOUDFRONT_ORIGIN_FACING',
        network_border_group: 'GLOBAL',
      })),
      { ip_prefix: '3.5.140.0/22', region: 'ap-northeast-2', service: 'AMAZON' },
    ],
    ipv6_prefixes: v6.map((p) => ({
      ipv6_prefix: p,
      region: 'GLOBAL',
      service: 'CLOUDFRONT_ORIGIN_FACING',
    })),
  };
}

/** A mocked source: answers from a queue of documents or failures. */
function source(answers: (unknown | Error | 'hang')[]): FetchLike & { calls: string[] } {
  const calls: string[] = [];
  const fn = (async (url: string, init: { signal: AbortSignal }) => {
    calls.push(url);
    const next = answers.length > 1 ? answers.shift() : answers[0];
    if (next instanceof Error) throw next;
    if (next === 'hang') {
      return new Promise((_, reject) => {
        init.signal.addEventListener('abort', () => reject(new Error('aborted')));
      });
    }
    if (typeof next === 'number') return { ok: false, status: next, json: async () => ({}) };
    return { ok: true, status: 200, json: async () => next };
  }) as FetchLike & { calls: string[] };
  fn.calls = calls;
  return fn;
}

describe('CloudFrontRanges', () => {
  it('serves the published ranges and caches them until the TTL passes', async () => {
    let now = 1_000_000;
    const fetch = source([doc(['130.176.0.0/18']), doc(['130.176.0.0/17'])]);
    const ranges = new CloudFrontRanges({ fetch, now: () => now, ttlMs: 6 * HOUR });
    const first = await ranges.get();
    expect(first).toEqual({
      ranges: ['130.176.0.0/18'],
      source: 'published',
      createDate: '2025-01-02-03-04-05',
    });
    now += 5 * HOUR;
    expect((await ranges.get()).ranges).toEqual(['130.176.0.0/18']);
    expect(fetch.calls).toHaveLength(1);
    now += 2 * HOUR;
    expect((await ranges.get()).ranges).toEqual(['130.176.0.0/17']);
    expect(fetch.calls).toEqual([
      'https://ip-ranges.amazonaws.com/ip-ranges.json',
      'https://ip-ranges.amazonaws.com/ip-ranges.json',
    ]);
  });

  it('includes the IPv6 ranges', async () => {
    const ranges = new CloudFrontRanges({
      fetch: source([doc(['13.32.0.0/15'], ['2600:9000:2000::/36'])]),
    });
    expect((await ranges.get()).ranges).toEqual(['13.32.0.0/15', '2600:9000:2000::/36']);
  });

  it('makes one fetch for concurrent callers', async () => {
    const fetch = source([doc(['130.176.0.0/18'])]);
    const ranges = new CloudFrontRanges({ fetch });
    const all = await Promise.all([ranges.get(), ranges.get(), ranges.get()]);
    expect(all.map((r) => r.source)).toEqual(['published', 'published', 'published']);
    expect(fetch.calls).toHaveLength(1);
  });

  it('falls back to the shipped snapshot when the source fails, and retries later', async () => {
    let now = 0;
    const errors: unknown[] = [];
    const fetch = source([new Error('getaddrinfo ENOTFOUND'), doc(['130.176.0.0/18'])]);
    const ranges = new CloudFrontRanges({
      fetch,
      now: () => now,
      retryMs: 5 * 60_000,
      onError: (e) => errors.push(e),
    });
    const snap = loadCloudFrontSnapshot();
    const first = await ranges.get();
    expect(first.source).toBe('snapshot');
    expect(first.ranges).toEqual(snap.ranges);
    expect(first.createDate).toBe(snap.createDate);
    expect(errors).toHaveLength(1);
    now += 60_000;
    expect((await ranges.get()).source).toBe('snapshot');
    expect(fetch.calls).toHaveLength(1);
    now += 5 * 60_000;
    expect((await ranges.get()).source).toBe('published');
    expect(fetch.calls).toHaveLength(2);
  });

  it('keeps the last published ranges when a refresh fails or is malformed', async () => {
    let now = 0;
    const fetch = source([doc(['130.176.0.0/18']), 503, { prefixes: 'nope' }, doc([], [])]);
    const ranges = new CloudFrontRanges({ fetch, now: () => now, ttlMs: HOUR, retryMs: 1000 });
    expect((await ranges.get()).ranges).toEqual(['130.176.0.0/18']);
    for (let i = 0; i < 3; i++) {
      now += 2 * HOUR;
      const r = await ranges.get();
      expect(r.source).toBe('published');
      expect(r.ranges).toEqual(['130.176.0.0/18']);
    }
    expect(fetch.calls).toHaveLength(4);
  });

  it('gives up on a source that does not answer within the timeout', async () => {
    const errors: unknown[] = [];
    const ranges = new CloudFrontRanges({
      fetch: source(['hang']),
      timeoutMs: 50,
      onError: (e) => errors.push(e),
    });
    const r = await ranges.get();
    expect(r.source).toBe('snapshot');
    expect(String(errors[0])).toMatch(/aborted|took over 50 ms/);
  });
});
