import { createServer, get, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { FaultProxy, FaultProxyError } from '../../local/fault-proxy';

const BIG = Buffer.alloc(64 * 1024, 'a');

let upstream: Server;
let proxy: FaultProxy;

interface Reply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
}

interface Outcome {
  reply?: Reply;
  bytes: number;
  error?: NodeJS.ErrnoException;
}

/** Sends a request through the proxy; never rejects, reports what happened. */
function call(
  path: string,
  opts: { method?: string; body?: string; headers?: Record<string, string> } = {},
): Promise<Outcome> {
  return new Promise((resolve) => {
    let bytes = 0;
    const chunks: Buffer[] = [];
    const req = request(
      `${proxy.endpoint}${path}`,
      { method: opts.method ?? 'GET', headers: opts.headers, agent: false },
      (res) => {
        res.on('data', (c: Buffer) => {
          bytes += c.length;
          chunks.push(c);
        });
        res.on('error', (error) => resolve({ bytes, error }));
        res.on('end', () =>
          resolve({
            bytes,
            reply: {
              status: res.statusCode ?? 0,
              headers: res.headers,
              body: Buffer.concat(chunks),
            },
          }),
        );
      },
    );
    req.on('error', (error) => resolve({ bytes, error }));
    req.end(opts.body);
  });
}

beforeAll(async () => {
  upstream = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      if (req.url === '/big') {
        res.writeHead(200, { 'content-length': BIG.length, 'x-amz-request-id': 'R1' });
        // Several writes so the body crosses the cut point inside one chunk or between two.
        for (let i = 0; i < BIG.length; i += 10_000) res.write(BIG.subarray(i, i + 10_000));
        res.end();
        return;
      }
      res.writeHead(201, { 'content-type': 'application/json', 'x-upstream': 'yes' });
      res.end(
        JSON.stringify({
          method: req.method,
          url: req.url,
          host: req.headers.host,
          target: req.headers['x-amz-target'] ?? null,
          body: Buffer.concat(chunks).toString(),
        }),
      );
    });
  });
  await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r));
  proxy = await FaultProxy.start(`http://127.0.0.1:${(upstream.address() as AddressInfo).port}`);
});

afterEach(() => {
  proxy.clear();
});

afterAll(async () => {
  await proxy.close();
  upstream.closeAllConnections();
  await new Promise((r) => upstream.close(r));
});

describe('FaultProxy', () => {
  it('forwards method, path, query, body and the client Host header untouched', async () => {
    const out = await call('/bucket/key?list-type=2', { method: 'PUT', body: 'payload' });
    expect(out.reply?.status).toBe(201);
    expect(out.reply?.headers['x-upstream']).toBe('yes');
    expect(JSON.parse(out.reply?.body.toString() ?? '')).toEqual({
      method: 'PUT',
      url: '/bucket/key?list-type=2',
      host: `127.0.0.1:${proxy.port}`,
      target: null,
      body: 'payload',
    });
  });

  it('resets the connection once N body bytes are sent', async () => {
    proxy.set({ resetAfterBytes: 4096, once: true });
    const cut = await call('/big');
    expect(cut.error).toBeDefined();
    // An RST may drop bytes still in flight, never add any.
    expect(cut.bytes).toBeGreaterThan(0);
    expect(cut.bytes).toBeLessThanOrEqual(4096);
    expect(cut.reply).toBeUndefined();
    const whole = await call('/big');
    expect(whole.reply?.body.length).toBe(BIG.length);
    expect(proxy.stats().faults.reset).toBe(1);
  });

  it('lets a body shorter than the cut point through whole', async () => {
    const before = proxy.stats().faults.reset;
    proxy.set({ resetAfterBytes: BIG.length + 1 });
    const out = await call('/big');
    expect(out.error).toBeUndefined();
    expect(out.reply?.body.equals(BIG)).toBe(true);
    expect(proxy.stats().faults.reset).toBe(before);
  });

  it('resets before any response byte', async () => {
    proxy.set({ resetBeforeResponse: true, once: true });
    const out = await call('/echo');
    expect(out.error?.code).toBe('ECONNRESET');
    expect(out.bytes).toBe(0);
  });

  it('answers 503 the given number of times, then forwards', async () => {
    const before = proxy.stats();
    proxy.set({ status: 503, times: 2, body: '<Error><Code>SlowDown</Code></Error>' });
    const statuses: number[] = [];
    for (let i = 0; i < 3; i++) statuses.push((await call('/echo')).reply?.status ?? 0);
    expect(statuses).toEqual([503, 503, 201]);
    const after = proxy.stats();
    expect(after.faults.error - before.faults.error).toBe(2);
    expect(after.forwarded - before.forwarded).toBe(1);
  });

  it('delays a request by at least the given time', async () => {
    proxy.set({ delayMs: 250, once: true });
    const started = performance.now();
    const out = await call('/echo');
    expect(out.reply?.status).toBe(201);
    expect(performance.now() - started).toBeGreaterThanOrEqual(240);
  });

  it('applies a rule only to requests that match method, path and target', async () => {
    proxy.set({ status: 500, match: { method: 'POST', path: '/', target: 'UpdateIPSet' } });
    const headers = (op: string) => ({ 'x-amz-target': `AWSWAF_20190729.${op}` });
    expect((await call('/', { method: 'POST', headers: headers('GetIPSet') })).reply?.status).toBe(
      201,
    );
    expect(
      (await call('/', { method: 'GET', headers: headers('UpdateIPSet') })).reply?.status,
    ).toBe(201);
    expect(
      (await call('/', { method: 'POST', headers: headers('UpdateIPSet') })).reply?.status,
    ).toBe(500);
  });

  it('matches a path pattern against path and query', async () => {
    proxy.set({ status: 500, match: { path: /\?uploads/ } });
    expect((await call('/b/k?uploads')).reply?.status).toBe(500);
    expect((await call('/b/k')).reply?.status).toBe(201);
  });

  it('fires a probabilistic rule in the same pattern for the same seed', async () => {
    const run = async (): Promise<number[]> => {
      proxy.seed(99);
      proxy.set({ status: 503, probability: 0.3 });
      const out: number[] = [];
      for (let i = 0; i < 40; i++) out.push((await call('/echo')).reply?.status ?? 0);
      return out;
    };
    const a = await run();
    expect(await run()).toEqual(a);
    const errors = a.filter((s) => s === 503).length;
    expect(errors).toBeGreaterThan(3);
    expect(errors).toBeLessThan(25);
  });

  it('forwards everything again after clear()', async () => {
    proxy.set({ status: 500 });
    expect((await call('/echo')).reply?.status).toBe(500);
    proxy.clear();
    expect((await call('/echo')).reply?.status).toBe(201);
  });

  it('refuses rules it cannot apply', () => {
    expect(() => proxy.set({ probability: 1.5 })).toThrow(FaultProxyError);
    expect(() => proxy.set({ status: 503, resetAfterBytes: 10 })).toThrow(/at most one of/);
    expect(() => proxy.set({ times: 0 })).toThrow(/times must be an integer >= 1, got 0/);
  });

  it('answers 502 when the target is down', async () => {
    const dead = createServer();
    await new Promise<void>((r) => dead.listen(0, '127.0.0.1', r));
    const port = (dead.address() as AddressInfo).port;
    await new Promise((r) => dead.close(r));
    const orphan = await FaultProxy.start(`http://127.0.0.1:${port}`);
    try {
      const status = await new Promise<number>((resolve, reject) => {
        get(`${orphan.endpoint}/x`, { agent: false }, (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        }).on('error', reject);
      });
      expect(status).toBe(502);
    } finally {
      await orphan.close();
    }
  });
});
