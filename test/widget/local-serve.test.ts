import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { runLocal } from '../../cli/local';
import type { LocalPipeline } from '../../local/pipeline';
import { LOCAL_WIDGET_ARNS } from '../../local/widget-server';
import { captureIo, writeConfig } from '../e2e/env';

const dir = mkdtempSync(join(tmpdir(), 'edgeban-widget-serve-'));

afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('edgeban local --serve', () => {
  it('serves the console widget on 127.0.0.1, and its actions reach the local pipeline', async () => {
    const config = writeConfig(dir, { rules: [{ name: 'flood', threshold: 20, window: '5m' }] });
    const { io, out } = captureIo();
    const stop = new AbortController();
    let served: (p: LocalPipeline) => void = () => {};
    const up = new Promise<LocalPipeline>((resolve) => {
      served = resolve;
    });
    const running = runLocal({ serve: true, config }, io, {
      signal: stop.signal,
      discoveryPath: join(dir, 'run', 'local.json'),
      onServe: (p) => served(p),
    });
    try {
      const pipeline = await Promise.race([
        up,
        running.then(() => Promise.reject(new Error(`serve ended: ${out()}`))),
      ]);
      const url = /console widget, as CloudWatch would show it: (http:\/\/127\.0\.0\.1:\d+\/)/.exec(
        out(),
      )?.[1];
      expect(url).toBeDefined();
      const page = await (await fetch(`${url}?theme=dark`)).text();
      expect(page).toContain('<div class="eb eb-dark" data-theme="dark">');
      expect(page).toContain('No active blocks.');
      expect(page).toContain(`endpoint="${LOCAL_WIDGET_ARNS.act}"`);
      // The block form's button, pressed the way the page's script presses it.
      const body =
        /&quot;action&quot;:&quot;block&quot;,&quot;token&quot;:&quot;([^&]+)&quot;/.exec(page);
      const call = (params: Record<string, unknown>, forms: Record<string, string>) =>
        fetch(`${url}call`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({
            endpoint: LOCAL_WIDGET_ARNS.act,
            params,
            forms,
            theme: 'dark',
            offsetISO: '+00:00',
          }),
        }).then((r) => r.text());
      const done = await call(
        { action: 'block', token: body?.[1] },
        { target: '192.0.2.50', duration: '1h', reason: 'test' },
      );
      expect(done).toMatch(/Blocked 192\.0\.2\.50 until .*WAF: \+192\.0\.2\.50\/32\./);
      expect(pipeline.wafAddresses().IPV4).toEqual(['192.0.2.50/32']);
      const forged = await call(
        { action: 'block', token: 'v1.9999999999.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA' },
        { target: '192.0.2.51' },
      );
      expect(forged).toContain('data-outcome="denied"');
      expect(pipeline.wafAddresses().IPV4).toEqual(['192.0.2.50/32']);
    } finally {
      stop.abort();
      expect(await running).toBe(0);
    }
  });
});
