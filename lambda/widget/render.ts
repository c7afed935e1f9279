/**
 * The widget's HTML: HTML, CSS and inline SVG only, since CloudWatch
 * removes scripts (and tags such as `<iframe>` and `<use>`) from what a
 * custom widget returns.
 * https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/add_custom_widget_dashboard_security.html
 *
 * Buttons act through `<cwdb-action action="call">`: paging and the filter
 * call the read-only function again (`display="widget"`: its answer
 * replaces the widget); Unblock and Block call the acting function with a
 * token minted here (`display="popup"`, after a confirmation).
 */
import type { BlockView } from '../state/operator';
import type { WidgetContext } from './event';
import type { LoggedEvent } from './events';
import { callAction, esc, localTime, parseIso, span } from './html';
import type { WidgetView } from './model';
import { WIDGET_CSS } from './style';
import type { TokenClaim } from './token';

/** What a render needs besides the view. */
export interface RenderOptions {
  readonly view: WidgetView;
  readonly context: WidgetContext;
  /** The read-only function (paging, filter). */
  readonly viewEndpoint: string;
  /** The acting function (Unblock, Block). */
  readonly actEndpoint: string;
  /** Mints the token of one action (the read-only function's key); null: no actions. */
  readonly mint: ((action: TokenClaim['action'], target: string) => string) | null;
}

/** A reconcile older than this is shown as a warning: the schedule runs every minute. */
const STALE_RECONCILE_SECONDS = 180;

function modePanel(view: WidgetView, tz: WidgetContext['timezone']): string {
  const { mode, override } = view.status;
  const warnings: string[] = [];
  if (override !== null) {
    const who = override.by === null ? '' : ` by ${esc(override.by)}`;
    const verb = override.mode === 'observe' ? 'Paused' : `Mode set to ${esc(override.mode)}`;
    warnings.push(
      `${verb}${who} at ${esc(override.at)}: ${
        override.mode === 'observe'
          ? 'decisions are recorded, but WAF is not updated and nothing new is blocked'
          : 'WAF counts these addresses and does not block them'
      }. Run <code>edgeban resume</code> to return to the configured mode.`,
    );
  } else if (mode === 'observe') {
    warnings.push('Observe mode: decisions are recorded, WAF is not updated.');
  } else if (mode === 'count') {
    warnings.push('Count mode: WAF counts the addresses below and does not block them.');
  }
  const st = view.status;
  const lastMs = parseIso(st.lastReconcile);
  const age = Number.isNaN(lastMs) ? null : (view.nowMs - lastMs) / 1000;
  if (age === null) warnings.push('The reconciler has not run yet.');
  else if (age > STALE_RECONCILE_SECONDS) {
    warnings.push(`The reconciler last ran ${span(age)} ago; it runs every minute.`);
  }
  const lag = st.lagSeconds === null ? 'no logs yet' : span(st.lagSeconds);
  return `<div class="eb-top">
<div class="eb-stat"><div class="eb-label">Mode</div><div class="eb-value eb-mode eb-mode-${esc(mode)}" data-mode="${esc(mode)}">${esc(mode)}${override?.mode === 'observe' ? ' (paused)' : ''}</div></div>
<div class="eb-stat"><div class="eb-label">${view.filter === null ? 'Active blocks' : 'Blocks covering it'}</div><div class="eb-value">${view.total.toLocaleString('en-US')} <span class="eb-note">(${view.keys.toLocaleString('en-US')} keys)</span></div></div>
<div class="eb-stat"><div class="eb-label">Last reconcile</div><div class="eb-value eb-reconcile">${
    age === null ? 'never' : `${span(age)} ago`
  }</div><div class="eb-note">${st.lastReconcile === null ? '' : esc(localTime(lastMs, tz))}</div></div>
<div class="eb-stat"><div class="eb-label">Log lag</div><div class="eb-value eb-lag">${esc(lag)}</div><div class="eb-note">pipeline clock minus newest log minute</div></div>
${fillChart(view)}
</div>
${warnings.map((w) => `<div class="eb-warn">${w}</div>`).join('\n')}`;
}

function fillChart(view: WidgetView): string {
  const sets = view.status.ipSets;
  if (sets.length === 0) {
    return '<div class="eb-stat"><div class="eb-label">IP set fill</div><div class="eb-note">not read yet</div></div>';
  }
  const w = 300;
  const rowH = 20;
  const bars = sets
    .map((s, i) => {
      const share = s.capacity > 0 ? Math.min(1, s.size / s.capacity) : 0;
      const y = i * rowH;
      const pct = (share * 100).toFixed(share < 0.1 ? 1 : 0);
      return `<rect class="eb-track" x="0" y="${y + 12}" width="${w}" height="6" rx="3"/><rect class="${share >= 0.8 ? 'eb-over' : 'eb-used'}" x="0" y="${y + 12}" width="${Math.max(share > 0 ? 2 : 0, Math.round(share * w))}" height="6" rx="3"/><text x="0" y="${y + 10}">${esc(s.name)}: ${s.size.toLocaleString('en-US')} of ${s.capacity.toLocaleString('en-US')} (${pct}%)</text>`;
    })
    .join('');
  return `<div class="eb-stat"><div class="eb-label">IP set fill</div><svg class="eb-fill" width="${w}" height="${sets.length * rowH}" viewBox="0 0 ${w} ${sets.length * rowH}" role="img" aria-label="IP set fill">${bars}</svg></div>`;
}

function filterPanel(o: RenderOptions): string {
  const f = o.view.filter;
  const form = `<form class="eb-filter"><label for="eb-filter">Check an address or CIDR</label><input id="eb-filter" name="filter" value="${esc(f?.text ?? '')}" placeholder="198.51.100.7 or 203.0.113.0/24" size="28"><a class="btn btn-primary">Check</a>${callAction(o.viewEndpoint, { page: 1 }, 'widget')}${
    f === null
      ? ''
      : `<a class="btn">Show all</a>${callAction(o.viewEndpoint, { page: 1, filter: '*' }, 'widget')}`
  }</form>`;
  if (f === null) return form;
  if (f.error !== null || f.check === null) {
    return `${form}<div class="eb-error eb-check">${esc(f.error ?? 'not understood')}</div>`;
  }
  const c = f.check;
  const lines: string[] = [];
  if (c.guardedBy !== null) {
    lines.push(
      `<b>${esc(c.ip)}</b> is guarded by <b>${esc(c.guardedBy)}</b>: edgeban never blocks it, and a block or key overlapping it is refused.`,
    );
  }
  if (c.blocked) {
    const keys = [...new Set(c.blocks.map((b) => b.key))];
    const cover = keys.map((k) => (k === c.ip ? `${esc(k)} itself` : `the range ${esc(k)}`));
    lines.push(
      `<b>${esc(c.ip)}</b> is blocked: ${c.blocks.length} active block${c.blocks.length === 1 ? '' : 's'} of ${cover.join(', ')} (below).`,
    );
  } else if (c.guardedBy === null) {
    lines.push(`<b>${esc(c.ip)}</b> is not blocked and not guarded.`);
  }
  const cls = c.guardedBy !== null ? 'eb-warn' : 'eb-note';
  return `${form}<div class="${cls} eb-check" data-blocked="${c.blocked}" data-guarded="${c.guardedBy !== null}">${lines.join('<br>')}</div>`;
}

function sourceCell(b: BlockView): string {
  return b.source === 'manual'
    ? '<span class="eb-src eb-src-manual">manual</span>'
    : `<span class="eb-src eb-src-rule">rule</span> ${esc(b.rule)}`;
}

function peakCell(b: BlockView, view: WidgetView): string {
  if (b.source === 'manual' || b.peak === undefined || b.peak === null) return '–';
  const threshold = b.rule === null ? undefined : view.thresholds.get(b.rule);
  const over = threshold === undefined ? '' : ` / ${threshold.toLocaleString('en-US')}`;
  const ratio =
    threshold === undefined || threshold === 0
      ? ''
      : ` <span class="eb-over">${(b.peak / threshold).toFixed(1)}×</span>`;
  return `${b.peak.toLocaleString('en-US')}${over}${ratio}`;
}

function whoCell(b: BlockView): string {
  const reason = b.reason === null ? '' : esc(b.reason);
  if (b.source !== 'manual') return `<span class="eb-note">${reason}</span>`;
  return `${esc(b.by ?? 'unknown')}${reason === '' ? '' : `<br><span class="eb-note">${reason}</span>`}`;
}

function blockRow(b: BlockView, o: RenderOptions, tokens: Map<string, string>): string {
  const tz = o.context.timezone;
  const until = parseIso(b.blockedUntil);
  const first = parseIso(b.firstExceeded);
  let token = tokens.get(b.key);
  if (token === undefined && o.mint !== null) {
    token = o.mint('unblock', b.key);
    tokens.set(b.key, token);
  }
  const confirm = `Unblock ${b.key}? Every block of ${b.key} ends now and WAF drops it within a minute; only new traffic can block it again. Recorded as by the console widget.`;
  return `<tr data-key="${esc(b.key)}" data-source="${b.source}" data-rule="${esc(b.rule ?? '')}">
<td class="key">${esc(b.key)}</td>
<td>${sourceCell(b)}</td>
<td class="num">${peakCell(b, o.view)}</td>
<td class="num">${esc(b.window ?? '–')}</td>
<td class="time">${Number.isNaN(first) ? '–' : esc(localTime(first, tz))}</td>
<td class="time">${esc(localTime(until, tz))}<br><span class="eb-note">in ${esc(span((until - o.view.nowMs) / 1000))}</span></td>
<td class="num">${b.offences ?? '–'}</td>
<td>${whoCell(b)}</td>
<td class="waf">${b.inWaf ? '<span class="eb-yes">yes</span>' : '<span class="eb-no">not yet</span>'}</td>
<td>${token === undefined ? '' : `<a class="btn btn-danger">Unblock</a>${callAction(o.actEndpoint, { action: 'unblock', key: b.key, token }, 'popup', confirm)}`}</td>
</tr>`;
}

function blocksTable(o: RenderOptions): string {
  const v = o.view;
  const tz = o.context.timezone;
  if (v.rows.length === 0) {
    return `<p class="eb-note eb-empty">${v.filter === null ? 'No active blocks.' : 'No active block covers it.'}</p>`;
  }
  const tokens = new Map<string, string>();
  const head = `<tr><th>Key</th><th>Source</th><th>Peak / threshold</th><th>Window</th><th>First exceeded</th><th>Until</th><th>Offence</th><th>Who / reason</th><th>In WAF</th><th></th></tr>`;
  const rows = v.rows.map((b) => blockRow(b, o, tokens)).join('\n');
  const filter = v.filter?.text ?? '';
  const pageButton = (page: number, label: string) =>
    `<a class="btn">${label}</a>${callAction(o.viewEndpoint, { page, filter }, 'widget')}`;
  const pager =
    v.pages <= 1
      ? ''
      : `<nav class="eb-pager">${v.page > 1 ? pageButton(1, '« First') + pageButton(v.page - 1, '‹ Previous') : ''}<span class="eb-page">Page ${v.page} of ${v.pages}</span>${
          v.page < v.pages ? pageButton(v.page + 1, 'Next ›') + pageButton(v.pages, 'Last »') : ''
        }</nav>`;
  return `<table class="eb-blocks"><thead>${head}</thead><tbody>
${rows}
</tbody></table>${pager}<div class="eb-note">Times in ${esc(tz.label)} (UTC${esc(tz.offsetISO)}).</div>`;
}

function blockForm(o: RenderOptions): string {
  if (o.mint === null) {
    return '<div class="eb-error eb-noactions">Unblock and Block are unavailable: the widget key could not be read (see the read-only function\'s log). The table is current.</div>';
  }
  const token = o.mint('block', '*');
  const confirm =
    'Block the address or CIDR in the form, for the duration given? The reconciler puts it into WAF within a minute. Recorded as by the console widget.';
  return `<h3>Block by hand</h3><form class="eb-blockform"><label for="eb-target">Address or CIDR</label><input id="eb-target" name="target" placeholder="198.51.100.7 or 203.0.113.0/24" size="24"><label for="eb-duration">for</label><input id="eb-duration" name="duration" value="" placeholder="4h" size="5"><label for="eb-reason">reason</label><input id="eb-reason" name="reason" placeholder="recorded in the history" size="30"><a class="btn btn-block">Block</a>${callAction(o.actEndpoint, { action: 'block', token }, 'popup', confirm)}</form><div class="eb-note">Durations like 90s, 30m, 4h, 7d; empty means block.duration. Guarded addresses and ranges wider than minPrefix are refused.</div>`;
}

function eventRow(e: LoggedEvent, o: RenderOptions): string {
  return `<tr data-kind="${esc(e.kind)}"><td class="time">${esc(localTime(e.at, o.context.timezone))}</td><td class="eb-kind eb-kind-${esc(e.kind)}">${esc(e.kind)}</td><td class="key">${esc(e.key)}</td><td>${esc(e.rule ?? (e.kind === 'reset' ? '' : 'manual'))}</td><td>${esc(e.by ?? '')}</td><td class="eb-note">${esc(e.reason ?? '')}</td></tr>`;
}

function eventsTable(o: RenderOptions): string {
  const ev = o.view.events;
  const of = o.view.eventsOf;
  const title =
    of === null
      ? '<h3>Recent events</h3>'
      : `<h3 class="eb-events-of">Events of ${esc(of)} and the ranges around it</h3>`;
  if (ev.length === 0) {
    return `${title}<p class="eb-note">${of === null ? 'None in the last 7 days.' : 'None.'}</p>`;
  }
  return `${title}<table class="eb-events"><thead><tr><th>When</th><th>Event</th><th>Key</th><th>Rule</th><th>By</th><th>Reason</th></tr></thead><tbody>${ev
    .map((e) => eventRow(e, o))
    .join('')}</tbody></table>`;
}

/** The widget's HTML for one view. */
export function renderWidget(o: RenderOptions): string {
  return `<div class="cwdb-no-default-styles"></div><style>${WIDGET_CSS}</style>
<div class="eb eb-${o.context.theme}" data-theme="${o.context.theme}">
${modePanel(o.view, o.context.timezone)}
${filterPanel(o)}
${blocksTable(o)}
${blockForm(o)}
${eventsTable(o)}
<p class="eb-note">Acting needs lambda:InvokeFunction on the acting function; actions are recorded as by the console widget (who pressed: CloudTrail Lambda data events). A page older than 15 minutes must be refreshed to act.</p>
</div>`;
}
