/// <reference lib="dom" />
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect } from 'vitest';
import { type LocalCloud, startLocalCloud } from '../../local/cloud';
import { startWidgetServer, type WidgetServer } from '../../local/widget-server';
import { browserTestFor, launchChromium } from '../fixtures/chromium';
import { addressesOf, newWorld, type World } from '../reconciler/env';
import { actDeps, seedState } from './env';

const browserTest = browserTestFor('widget');

/** Where the screenshots go, to look at: EDGEBAN_SCREENSHOTS, else a temporary directory. */
const SHOTS = process.env.EDGEBAN_SCREENSHOTS ?? mkdtempSync(join(tmpdir(), 'edgeban-widget-'));

let cloud: LocalCloud;
let world: World;
let server: WidgetServer;

beforeAll(async () => {
  cloud = await startLocalCloud();
  world = await newWorld(cloud);
  await seedState(world);
  server = await startWidgetServer({ operator: world.operatorDeps(), apply: actDeps(world).apply });
});

afterAll(async () => {
  await server?.close();
  await cloud?.stop();
});

const launch = launchChromium;

describe('the widget in headless Chromium', () => {
  browserTest(
    'shows the blocks table, the filter, the events and the fill chart, in light and dark',
    async () => {
      const browser = await launch();
      try {
        for (const theme of ['light', 'dark'] as const) {
          const page = await browser.newPage({ viewport: { width: 1500, height: 1300 } });
          const requests: string[] = [];
          page.on('request', (r) => {
            if (!r.url().startsWith(server.url)) requests.push(r.url());
          });
          await page.goto(`${server.url}?theme=${theme}&tz=%2B02:00`);
          const dom = await page.evaluate(() => {
            const rows = [...document.querySelectorAll('table.eb-blocks tbody tr')].map((tr) =>
              [...tr.querySelectorAll('td')].map((td) => (td.textContent ?? '').trim()),
            );
            const head = [...document.querySelectorAll('table.eb-blocks th')].map(
              (th) => th.textContent,
            );
            const style = (sel: string) => {
              const el = document.querySelector(sel);
              return el === null ? null : getComputedStyle(el);
            };
            return {
              head,
              rows,
              events: document.querySelectorAll('table.eb-events tbody tr').length,
              resets: document.querySelectorAll('table.eb-events tr[data-kind="reset"]').length,
              fill: document.querySelector('svg.eb-fill')?.getBoundingClientRect().width ?? 0,
              actionsShown: [...document.querySelectorAll('cwdb-action')].filter(
                (a) => (a as HTMLElement).offsetParent !== null,
              ).length,
              bg: style('.eb')?.backgroundColor,
              fg: style('.eb')?.color,
            };
          });
          expect(dom.head).toEqual([
            'Key',
            'Source',
            'Peak / threshold',
            'Window',
            'First exceeded',
            'Until',
            'Offence',
            'Who / reason',
            'In WAF',
            '',
          ]);
          expect(dom.rows).toHaveLength(6);
          const flood = dom.rows.find((r) => r[0] === '192.0.2.7' && r[1] === 'rule flood');
          expect(flood?.slice(2, 9)).toEqual([
            '2,301 / 100 23.0×',
            '5m',
            '2024-05-01 11:59',
            '2024-05-01 20:00in 8h',
            '2',
            '150 requests in 5m over threshold 100',
            'yes',
          ]);
          expect(dom.rows.find((r) => r[0] === '198.51.100.23')?.[7]).toBe(
            'alicecredential stuffing',
          );
          expect(dom.events).toBeGreaterThanOrEqual(8);
          expect(dom.resets).toBe(1);
          expect(dom.fill).toBeGreaterThan(200);
          expect(dom.actionsShown).toBe(0);
          // Light text on a dark ground, or the reverse.
          const lum = (css: string | undefined) =>
            (css?.match(/\d+/g) ?? []).slice(0, 3).reduce((a, b) => a + Number(b), 0);
          if (theme === 'dark') expect(lum(dom.fg)).toBeGreaterThan(lum(dom.bg) + 400);
          else expect(lum(dom.bg)).toBeGreaterThan(lum(dom.fg) + 400);
          await page.screenshot({ path: join(SHOTS, `widget-${theme}.png`), fullPage: true });
          expect(requests).toEqual([]);
          await page.close();
        }
      } finally {
        await browser.close();
      }
    },
  );

  browserTest(
    'checks a guarded address and an address inside a blocked range from the filter',
    async () => {
      const browser = await launch();
      try {
        const page = await browser.newPage({ viewport: { width: 1500, height: 900 } });
        await page.goto(server.url);
        await page.fill('input[name="filter"]', '10.1.2.3');
        await page.locator('form.eb-filter a.btn', { hasText: 'Check' }).click();
        await page.locator('.eb-check[data-guarded="true"]').waitFor();
        expect(await page.locator('.eb-check').textContent()).toMatch(
          /^10\.1\.2\.3 is guarded by 10\.0\.0\.0\/8 .*: edgeban never blocks it/,
        );
        expect(await page.locator('table.eb-blocks tbody tr').count()).toBe(0);
        await page.screenshot({ path: join(SHOTS, 'widget-guarded.png') });
        await page.fill('input[name="filter"]', '203.0.113.77');
        await page.locator('form.eb-filter a.btn', { hasText: 'Check' }).click();
        await page.locator('.eb-check[data-blocked="true"]').waitFor();
        const keys = await page.locator('table.eb-blocks tbody tr td.key').allTextContents();
        expect(keys).toEqual(['203.0.113.0/24']);
        await page.locator('form.eb-filter a.btn', { hasText: 'Show all' }).click();
        await page.locator('.eb-check').waitFor({ state: 'detached' });
        expect(await page.locator('table.eb-blocks tbody tr').count()).toBe(6);
      } finally {
        await browser.close();
      }
    },
  );

  browserTest(
    'lifts a block with its Unblock button, after the confirmation, and WAF drops it',
    async () => {
      expect(addressesOf(world, 0)).toContain('198.51.100.23/32');
      const browser = await launch();
      try {
        const page = await browser.newPage({ viewport: { width: 1500, height: 1300 } });
        const asked: string[] = [];
        page.on('dialog', async (d) => {
          asked.push(d.message());
          await d.accept();
        });
        await page.goto(server.url);
        await page.locator('tr[data-key="198.51.100.23"] a.btn', { hasText: 'Unblock' }).click();
        await page.locator('dialog#popup [data-outcome]').waitFor();
        const result = await page.locator('dialog#popup .eb-result').textContent();
        expect(asked[0]).toMatch(/^Unblock 198\.51\.100\.23\?/);
        expect(result).toMatch(/^Unblocked 198\.51\.100\.23 at .* WAF: -198\.51\.100\.23\/32\.$/);
        await page.screenshot({ path: join(SHOTS, 'widget-unblocked.png') });
        expect(addressesOf(world, 0)).not.toContain('198.51.100.23/32');
      } finally {
        await browser.close();
      }
    },
  );
});
