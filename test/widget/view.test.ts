import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { setMode } from '../../lambda/state/operator';
import { parseWidgetEvent } from '../../lambda/widget/event';
import { view } from '../../lambda/widget/view';
import { type LocalCloud, startLocalCloud } from '../../local/cloud';
import { newWorld, type World } from '../reconciler/env';
import { ACT_ARN, seedState, VIEW_ARN, viewDeps, widgetEvent } from './env';

let cloud: LocalCloud;
let world: World;

beforeAll(async () => {
  cloud = await startLocalCloud();
  world = await newWorld(cloud);
  await seedState(world);
});

afterAll(async () => {
  await cloud?.stop();
});

const render = (o: Parameters<typeof widgetEvent>[0] = {}) =>
  view(viewDeps(world), parseWidgetEvent(widgetEvent(o)));

/** The `<tr>` of a key and rule ('' for manual). */
function row(html: string, key: string, rule: string): string {
  const start = html.indexOf(
    `<tr data-key="${key}" data-source="${rule === '' ? 'manual' : 'rule'}" data-rule="${rule}">`,
  );
  expect(start, `row ${key} ${rule}`).toBeGreaterThanOrEqual(0);
  return html.slice(start, html.indexOf('</tr>', start));
}

describe('the read-only widget', () => {
  it('shows each rule block with its rule, peak against threshold, window, times, offence and WAF state', async () => {
    const html = await render({ offsetISO: '+02:00' });
    const flood = row(html, '192.0.2.7', 'flood');
    expect(flood).toContain('<span class="eb-src eb-src-rule">rule</span> flood');
    expect(flood).toMatch(/2,301 \/ 100 <span class="eb-over">23\.0×<\/span>/);
    expect(flood).toContain('<td class="num">5m</td>');
    // T0 is 10:00Z; firstExceeded a minute before; until 8h after: shown at UTC+02:00.
    expect(flood).toContain('<td class="time">2024-05-01 11:59</td>');
    expect(flood).toContain('2024-05-01 20:00<br><span class="eb-note">in 8h</span>');
    expect(flood).toContain('<td class="num">2</td>');
    expect(flood).toContain('<span class="eb-yes">yes</span>');
    const login = row(html, '192.0.2.7', 'login');
    expect(login).toMatch(/37 \/ 10 /);
    expect(login).toContain('<td class="num">1m</td>');
    expect(row(html, '203.0.113.0/24', 'flood')).toContain('412 / 100');
    expect(row(html, '2001:db8:bad:1::/64', 'flood')).toContain('in 2h');
    expect(html).toContain('Times in Local (UTC+02:00).');
  });

  it('shows manual blocks with who and why, and an Unblock button carrying a token per key', async () => {
    const html = await render();
    const alice = row(html, '198.51.100.23', '');
    expect(alice).toContain('eb-src-manual');
    expect(alice).toContain('alice<br><span class="eb-note">credential stuffing</span>');
    expect(alice).toContain('<td class="num">–</td>');
    expect(alice).toMatch(
      new RegExp(
        `<cwdb-action action="call" endpoint="${ACT_ARN}" display="popup" confirmation="Unblock 198\\.51\\.100\\.23\\? [^"]+">\\{&quot;action&quot;:&quot;unblock&quot;,&quot;key&quot;:&quot;198\\.51\\.100\\.23&quot;,&quot;token&quot;:&quot;v1\\.\\d+\\.[A-Za-z0-9_-]{43}&quot;\\}</cwdb-action>`,
      ),
    );
    expect(row(html, '198.51.100.0/28', '')).toContain('bob');
    // The block form carries its own token and calls the acting function.
    expect(html).toMatch(/<input id="eb-target" name="target"/);
    expect(html).toMatch(/&quot;action&quot;:&quot;block&quot;,&quot;token&quot;:&quot;v1\./);
  });

  it('lists recent events of every key from the event log, newest first, resets included', async () => {
    const html = await render();
    const events = html.slice(html.indexOf('<table class="eb-events">'));
    const kinds = [...events.matchAll(/<tr data-kind="(\w+)">/g)].map((m) => m[1]);
    expect(kinds).toContain('reset');
    expect(kinds).toContain('unblock');
    expect(kinds.filter((k) => k === 'block').length).toBeGreaterThanOrEqual(6);
    const times = [...events.matchAll(/<td class="time">([^<]+)<\/td>/g)].map((m) => m[1] ?? '');
    expect(times).toEqual([...times].sort().reverse());
    expect(events).toContain('IP set rewritten by a deployment; re-added');
  });

  it('shows the mode, IP set fill and the last reconcile, and warns when paused', async () => {
    let html = await render();
    expect(html).toContain('data-mode="block"');
    expect(html).toMatch(/<svg class="eb-fill"[^>]*>.*edgeban-ipv4-0: 4 of 10,000/s);
    expect(html).toContain('<div class="eb-value eb-reconcile">0s ago</div>');
    expect(html).not.toContain('Paused');
    await setMode(world.operatorDeps(), 'observe', 'dave');
    try {
      html = await render();
      expect(html).toContain('data-mode="observe"');
      expect(html).toMatch(
        /<div class="eb-warn">Paused by dave at 2024-05-01T10:00:00Z: decisions are recorded, but WAF is not updated/,
      );
    } finally {
      await setMode(world.operatorDeps(), null, 'dave');
    }
  });

  it('checks a guarded address typed in the filter, and shows the range that covers an address', async () => {
    let html = await render({ forms: { filter: '10.1.2.3' } });
    expect(html).toMatch(
      /<div class="eb-warn eb-check" data-blocked="false" data-guarded="true"><b>10\.1\.2\.3<\/b> is guarded by <b>10\.0\.0\.0\/8/,
    );
    expect(html).toContain('No active block covers it.');
    expect(html).toContain(
      '<div class="eb-label">Blocks covering it</div><div class="eb-value">0 ',
    );
    html = await render({ forms: { filter: '203.0.113.77' } });
    expect(html).toContain('data-blocked="true" data-guarded="false"');
    expect(html).toContain('of the range 203.0.113.0/24');
    expect(html.match(/<tr data-key=/g)).toHaveLength(1);
    // The events shown are the address's and its ranges' (the CLI's history), not every key's.
    const events = html.slice(html.indexOf('<h3 class="eb-events-of">'));
    expect(events).toMatch(
      /^<h3 class="eb-events-of">Events of 203\.0\.113\.77 and the ranges around it<\/h3>/,
    );
    expect(events).toContain('<td class="key">203.0.113.0/24</td>');
    expect(events).not.toContain('192.0.2.7');
    html = await render({ forms: { filter: 'not-an-ip' } });
    expect(html).toContain(
      '<div class="eb-error eb-check">not an IP address or CIDR: not-an-ip</div>',
    );
    // Show all clears a filter still typed in the form.
    html = await render({ forms: { filter: '203.0.113.77' }, params: { page: 1, filter: '*' } });
    expect(html.match(/<tr data-key=/g)).toHaveLength(6);
  });

  it('calls the read-only function again for the filter', async () => {
    const html = await render();
    expect(html).toContain(
      `<a class="btn btn-primary">Check</a><cwdb-action action="call" endpoint="${VIEW_ARN}" display="widget">{&quot;page&quot;:1}</cwdb-action>`,
    );
  });

  it('returns its documentation for describe', async () => {
    const docs = await render({ describe: true });
    expect(docs).toMatch(/^## edgeban: blocks/);
    expect(docs).toContain('CloudTrail');
  });

  it('escapes what it shows', async () => {
    const html = await render({ forms: { filter: '<script>alert(1)</script>' } });
    expect(html).not.toContain('<script>');
    expect(html).toContain('&lt;script&gt;');
  });
});
