/// <reference lib="dom" />
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';
import { type Io, run } from '../../cli/main';
import { browserTestFor, launchChromium } from '../fixtures/chromium';
import { burst, cloudFrontFile, type Hit, tempLogs } from './logs';

async function writeReport(): Promise<string> {
  const hits: Hit[] = [];
  for (let m = 0; m < 10; m++) {
    const minute = `2024-05-01T10:${String(m).padStart(2, '0')}`;
    hits.push(...burst('198.51.100.7', minute, 40));
    hits.push(...burst('203.0.113.9', minute, 5 + m));
    for (let k = 1; k <= 20; k++) hits.push(...burst(`192.0.2.${k}`, minute, 1 + (k % 3)));
    hits.push(...burst('2001:db8::7', minute, 8, { status: 404 }));
  }
  const dir = tempLogs({ 'a.log.gz': cloudFrontFile(hits) });
  const config = join(dir, 'edgeban.json');
  writeFileSync(
    config,
    JSON.stringify({
      rules: [
        { name: 'flood', threshold: 100, window: '5m' },
        { name: 'probes', threshold: 20, window: '1m', status: ['4xx'] },
      ],
    }),
  );
  const report = join(dir, 'report.html');
  const io: Io = { out: () => {}, err: (t) => expect.fail(t), tty: false };
  const code = await run(
    ['replay', '--config', config, '--report', report, join(dir, 'a.log.gz')],
    io,
  );
  expect(code).toBe(0);
  return report;
}

describe('replay --report', () => {
  it('writes a self-contained page with a histogram, a what-if table and a timeline per rule', async () => {
    const html = readFileSync(await writeReport(), 'utf8');
    expect(html).not.toMatch(/<script[^>]+src=|<link[^>]+href=|url\(|@import/);
    expect(html).not.toMatch(/(src|href)="https?:/);
    expect(html.match(/<svg class="chart histogram"/g)).toHaveLength(2);
    expect(html.match(/<svg class="chart timeline"/g)).toHaveLength(2);
    // flood peaks: 198.51.100.7 has 200 in 5 minutes; 203.0.113.9 at most 5*(5+9)-... = 60
    const flood = html.slice(html.indexOf('data-rule="flood"'), html.indexOf('data-rule="probes"'));
    expect(flood).toMatch(/<td>0.5x<\/td><td>50<\/td><td class="num">2<\/td>/);
    expect(flood).toMatch(/<td>1x<\/td><td>100<\/td><td class="num">1<\/td>/);
    expect(flood).toMatch(/<td>5x<\/td><td>500<\/td><td class="num">0<\/td>/);
    expect(html).toMatch(/<table class="decisions">.*198\.51\.100\.7.*flood/s);
  });

  const browserTest = browserTestFor('report');

  browserTest('renders its charts in headless Chromium', async () => {
    const report = await writeReport();
    const browser = await launchChromium();
    try {
      const page = await browser.newPage({ viewport: { width: 1000, height: 1400 } });
      const requests: string[] = [];
      page.on('request', (r) => {
        if (!r.url().startsWith('file:') && !r.url().startsWith('data:')) requests.push(r.url());
      });
      await page.goto(pathToFileURL(report).href);
      const dom = await page.evaluate(() => {
        const box = (sel: string) => {
          const el = document.querySelector(sel);
          const r = el?.getBoundingClientRect();
          return r ? { w: r.width, h: r.height } : null;
        };
        return {
          bars: [...document.querySelectorAll('svg.histogram rect.bar')].filter(
            (r) => Number(r.getAttribute('height')) > 0,
          ).length,
          series: document.querySelectorAll('svg.timeline polyline.series').length,
          thresholds: document.querySelectorAll('svg.histogram line.threshold').length,
          histogram: box('svg.histogram'),
        };
      });
      expect(dom.bars).toBeGreaterThan(2);
      expect(dom.series).toBeGreaterThan(2);
      expect(dom.thresholds).toBe(2);
      expect(dom.histogram!.w).toBeGreaterThan(300);
      expect(dom.histogram!.h).toBeGreaterThan(100);
      const shot = await page.locator('svg.histogram').first().screenshot();
      // Decode the screenshot in the page itself and count its coloured pixels.
      const coloured = await page.evaluate(async (b64) => {
        const img = new Image();
        img.src = `data:image/png;base64,${b64}`;
        await img.decode();
        const canvas = document.createElement('canvas');
        canvas.width = img.width;
        canvas.height = img.height;
        const ctx = canvas.getContext('2d')!;
        ctx.drawImage(img, 0, 0);
        const data = ctx.getImageData(0, 0, img.width, img.height).data;
        let n = 0;
        for (let i = 0; i < data.length; i += 4) {
          const [r, g, b] = [data[i]!, data[i + 1]!, data[i + 2]!];
          if (Math.abs(r - g) > 40 || Math.abs(g - b) > 40) n++;
        }
        return n;
      }, shot.toString('base64'));
      expect(coloured).toBeGreaterThan(500);
      expect(requests).toEqual([]);
    } finally {
      await browser.close();
    }
  });
});
