import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { GetIPSetCommand } from '@aws-sdk/client-wafv2';
import { afterAll, describe, expect, it } from 'vitest';
import { runLocal } from '../../cli/local';
import { localClients } from '../../local/cloud';
import { readDiscovery } from '../../local/discovery';
import type { LocalPipeline } from '../../local/pipeline';
import { cloudFrontLog } from '../../local/scenario';
import { captureIo, cli, tempDir, writeConfig } from './env';

const dir = tempDir('cli');
afterAll(() => dir.remove());

describe('edgeban local (npm start)', () => {
  it('plays the attack scenario and shows blocks, escalation and expiries', async () => {
    const { io, out, err } = captureIo();
    const code = await runLocal({}, io);
    expect(err()).toBe('');
    expect(code).toBe(0);
    const text = out();
    expect(text).toMatch(
      /10:06 {2}BLOCK {3}203\.0\.113\.50 +flood: 360 requests in 5m > 300, until 10:11 \(5m\)/,
    );
    expect(text).toMatch(/BLOCK +2001:db8:bad:1::\/64 +login:/);
    expect(text).toMatch(/BLOCK +192\.0\.2\.66 +scan:/);
    expect(text).toMatch(/10:11 {2}expire {2}203\.0\.113\.50 +flood block over/);
    expect(text).toMatch(/10:11 {2}WAF +-203\.0\.113\.50\/32/);
    // The persistent attacker: blocked for 5m, then again for 10m as its second offence.
    const attacker = text.split('\n').filter((l) => /BLOCK +198\.18\.7\.7/.test(l));
    expect(attacker).toHaveLength(2);
    expect(attacker[0]).toMatch(/until 10:20 \(5m\)$/);
    expect(attacker[1]).toMatch(/until 10:32 \(10m, offence 2: x2\)$/);
    // The real-time distribution's attacker starts at 10:14 and is blocked within seconds.
    expect(text).toMatch(
      /10:14 {2}start {3}203\.0\.113\.77 tries passwords on the real-time distribution/,
    );
    expect(text).toMatch(/10:14:[0-2]\d {2}BLOCK +203\.0\.113\.77 +login: 2\d requests in 5m > 20/);
    expect(text).toMatch(/10:14:[0-2]\d {2}WAF +\+203\.0\.113\.77\/32/);
    expect(text).not.toMatch(/BLOCK +10\.1\.2\.3/);
    expect(text).toMatch(
      /10\.1\.2\.3, the busiest client \([\d,]+ requests\), is guarded and never reached WAF/,
    );
  });

  it('refuses option combinations it cannot honour, with one line and exit 2', async () => {
    for (const argv of [
      ['local', '--json'],
      ['local', '--serve', '--logs', dir.path],
      ['local', '--config', 'cdk.json'],
    ]) {
      const r = await cli(argv);
      expect(r.code).toBe(2);
      expect(r.out).toBe('');
      expect(r.err).toMatch(/^edgeban: [^\n]+\n$/);
    }
  });
});

describe('edgeban local --serve', () => {
  it('serves on the real clock, writes the discovery file, blocks an uploaded attacker at once, and cleans up', async () => {
    const discovery = join(dir.path, 'run', 'edgeban', 'local.json');
    const config = writeConfig(dir.path, {
      rules: [{ name: 'flood', threshold: 20, window: '5m' }],
    });
    const { io, out } = captureIo();
    const stop = new AbortController();
    let served: (p: LocalPipeline) => void = () => {};
    const up = new Promise<LocalPipeline>((resolve) => {
      served = resolve;
    });
    const running = runLocal({ serve: true, config }, io, {
      signal: stop.signal,
      discoveryPath: discovery,
      onServe: (p) => served(p),
    });
    try {
      await Promise.race([
        up,
        running.then(() => Promise.reject(new Error(`serve ended: ${out()}`))),
      ]);
      const doc = readDiscovery(discovery);
      expect(doc).not.toBeNull();
      expect(doc!.pid).toBe(process.pid);
      expect(doc!.ipSets.map((s) => s.name)).toEqual(['edgeban-ipv4-1', 'edgeban-ipv6-1']);
      expect(out()).toContain(`AWS_ENDPOINT_URL_S3=${doc!.endpoints.s3}`);

      // Upload as a user would, through the discovery file's endpoints.
      const clients = localClients(doc!.endpoints);
      const now = Date.now();
      const hits = Array.from({ length: 30 }, (_, i) => ({
        ip: '192.0.2.44',
        at: now - 2000 - i * 10,
      }));
      hits.sort((a, b) => a.at - b.at);
      await clients.s3.send(
        new PutObjectCommand({
          Bucket: doc!.bucket,
          Key: 'cloudfront/E2EXAMPLE.live.gz',
          Body: gzipSync(cloudFrontLog(hits)),
        }),
      );
      const v4 = doc!.ipSets.find((s) => s.version === 'IPV4')!;
      const deadline = Date.now() + 20_000;
      let addresses: string[] = [];
      while (Date.now() < deadline) {
        const set = await clients.wafv2.send(
          new GetIPSetCommand({ Name: v4.name, Id: v4.id, Scope: v4.scope }),
        );
        addresses = set.IPSet?.Addresses ?? [];
        if (addresses.length > 0) break;
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      // Well before the minute schedule: the ingest's message ran the reconciler.
      expect(addresses).toEqual(['192.0.2.44/32']);
      expect(Date.now() - now).toBeLessThan(30_000);
      for (const c of Object.values(clients)) c.destroy();
    } finally {
      stop.abort();
    }
    expect(await running).toBe(0);
    expect(existsSync(discovery)).toBe(false);
    expect(out()).toMatch(/WAF \+192\.0\.2\.44\/32 \(message\)/);
  });
});
