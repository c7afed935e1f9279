import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { history } from '../../lambda/state/operator';
import { act, WIDGET_ACTOR } from '../../lambda/widget/act';
import { parseWidgetEvent } from '../../lambda/widget/event';
import { mintToken, TOKEN_TTL_SECONDS } from '../../lambda/widget/token';
import { view } from '../../lambda/widget/view';
import { type LocalCloud, startLocalCloud } from '../../local/cloud';
import { addressesOf, newWorld, type World } from '../reconciler/env';
import {
  actDeps,
  DASHBOARD,
  type EventOptions,
  KEY,
  seedState,
  viewDeps,
  WIDGET,
  widgetEvent,
} from './env';

let cloud: LocalCloud;

beforeAll(async () => {
  cloud = await startLocalCloud();
});

afterAll(async () => {
  await cloud?.stop();
});

async function seeded(): Promise<World> {
  const w = await newWorld(cloud);
  await seedState(w);
  return w;
}

/** The JSON body of the first `<cwdb-action>` whose body matches, as the console would pass it. */
function buttonParams(html: string, match: RegExp): Record<string, unknown> {
  for (const m of html.matchAll(/<cwdb-action action="call"[^>]*>([^<]*)<\/cwdb-action>/g)) {
    const body = (m[1] ?? '').replace(/&quot;/g, '"').replace(/&amp;/g, '&');
    if (match.test(body)) return JSON.parse(body) as Record<string, unknown>;
  }
  throw new Error(`no button matches ${match}`);
}

const press = (w: World, o: EventOptions) => act(actDeps(w), parseWidgetEvent(widgetEvent(o)));

describe('the acting widget function', () => {
  it('unblocks a key with the token of its row, and WAF drops it', async () => {
    const w = await seeded();
    expect(addressesOf(w, 0)).toContain('192.0.2.7/32');
    const html = await view(viewDeps(w), parseWidgetEvent(widgetEvent()));
    const params = buttonParams(html, /"key":"192\.0\.2\.7"/);
    w.clock += 60_000;
    const r = await press(w, { params });
    expect(r.outcome).toBe('done');
    expect(r.message).toMatch(
      /^Unblocked 192\.0\.2\.7 at 2024-05-01T10:01:00Z \(ended: flood, login\)\. WAF: -192\.0\.2\.7\/32\.$/,
    );
    expect(r.html).toContain('data-outcome="done"');
    expect(addressesOf(w, 0)).not.toContain('192.0.2.7/32');
    const h = await history(w.operatorDeps(), '192.0.2.7');
    const unblocks = h.events.filter((e) => e.kind === 'unblock');
    expect(unblocks.map((e) => e.by)).toEqual([WIDGET_ACTOR, WIDGET_ACTOR]);
    expect(unblocks[0]?.reason).toBe(`from dashboard ${DASHBOARD}`);
  });

  it('blocks an address typed in the form for the duration given, and WAF holds it', async () => {
    const w = await seeded();
    const html = await view(viewDeps(w), parseWidgetEvent(widgetEvent()));
    const params = buttonParams(html, /"action":"block"/);
    const r = await press(w, {
      params,
      forms: { filter: '', target: '198.51.100.200', duration: '2h', reason: 'abuse report 123' },
    });
    expect(r.message).toMatch(
      /^Blocked 198\.51\.100\.200 until 2024-05-01T12:00:00Z\. WAF: \+198\.51\.100\.200\/32\.$/,
    );
    expect(addressesOf(w, 0)).toContain('198.51.100.200/32');
    const after = await view(viewDeps(w), parseWidgetEvent(widgetEvent()));
    expect(after).toMatch(
      /<tr data-key="198\.51\.100\.200" data-source="manual"[\s\S]*?console widget<br><span class="eb-note">abuse report 123/,
    );
  });

  it('refuses what the CLI refuses, as readable messages, and writes nothing', async () => {
    const w = await seeded();
    const token = mintToken(
      KEY,
      { action: 'block', target: '*', dashboard: DASHBOARD, widget: WIDGET },
      w.clock,
    );
    const block = (forms: Record<string, string>) =>
      press(w, { params: { action: 'block', token }, forms });
    const cases: [Record<string, string>, RegExp][] = [
      [{ target: '10.1.2.3' }, /^Refused: 10\.1\.2\.3 is guarded: 10\.0\.0\.0\/8/],
      [{ target: '198.51.0.0/12' }, /^Refused: 198\.48\.0\.0\/12 is wider than minPrefix \/16\.$/],
      [{ target: 'bogus' }, /^Refused: not an IP address or CIDR: bogus\.$/],
      [
        { target: '192.0.2.1', duration: '1 week' },
        /^The duration must be like 90s, 30m, 4h or 7d, got 1 week\.$/,
      ],
      [{ target: '' }, /^Type an address or CIDR to block\.$/],
    ];
    for (const [forms, message] of cases) {
      const r = await block(forms);
      expect(r.outcome, JSON.stringify(forms)).toBe('refused');
      expect(r.message).toMatch(message);
    }
    const unblockToken = (key: string) =>
      mintToken(
        KEY,
        { action: 'unblock', target: key, dashboard: DASHBOARD, widget: WIDGET },
        w.clock,
      );
    const inside = await press(w, {
      params: { action: 'unblock', key: '203.0.113.9', token: unblockToken('203.0.113.9') },
    });
    expect(inside.message).toBe(
      'Refused: 203.0.113.9 is inside the blocked range 203.0.113.0/24: unblock 203.0.113.0/24 instead.',
    );
    expect(addressesOf(w, 0)).toEqual([
      '192.0.2.7/32',
      '198.51.100.0/28',
      '198.51.100.23/32',
      '203.0.113.0/24',
    ]);
  });

  it('refuses a forged, expired, foreign or missing token and changes nothing', async () => {
    const w = await seeded();
    const claim = {
      action: 'unblock' as const,
      target: '192.0.2.7',
      dashboard: DASHBOARD,
      widget: WIDGET,
    };
    const good = mintToken(KEY, claim, w.clock);
    const forgedKey = Buffer.from('another key, 32 bytes or longer!!', 'utf8');
    const attempts: [string, Record<string, unknown>, EventOptions, RegExp][] = [
      ['no token', { action: 'unblock', key: '192.0.2.7' }, {}, /carries no token/],
      ['malformed', { action: 'unblock', key: '192.0.2.7', token: 'v1.x.y' }, {}, /malformed/],
      [
        'forged',
        { action: 'unblock', key: '192.0.2.7', token: mintToken(forgedKey, claim, w.clock) },
        {},
        /not valid/,
      ],
      [
        'for another key',
        { action: 'unblock', key: '203.0.113.0/24', token: good },
        {},
        /not valid/,
      ],
      [
        'for the block form',
        { action: 'block', token: good },
        { forms: { target: '192.0.2.9' } },
        /not valid/,
      ],
      [
        'planted on another dashboard',
        { action: 'unblock', key: '192.0.2.7', token: good },
        { dashboard: 'attacker' },
        /not valid/,
      ],
      ['unknown action', { action: 'pause', token: good }, {}, /Unknown action/],
    ];
    for (const [what, params, o, message] of attempts) {
      const r = await press(w, { ...o, params });
      expect(r.outcome, what).toBe('denied');
      expect(r.message, what).toMatch(message);
    }
    w.clock += TOKEN_TTL_SECONDS * 1000;
    const expired = await press(w, {
      params: { action: 'unblock', key: '192.0.2.7', token: good },
    });
    expect(expired.outcome).toBe('denied');
    expect(expired.message).toMatch(/too old to act from: refresh the widget/);
    expect(addressesOf(w, 0)).toContain('192.0.2.7/32');
  });
});
