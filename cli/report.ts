/**
 * `replay --report FILE`: one self-contained HTML page for choosing
 * thresholds. Charts are inline SVG; the page loads nothing remote.
 */
import type { Engine } from '../lambda/core/engine';
import { formatMinute } from '../lambda/core/formats/time';
import { compareKeys } from '../lambda/core/ip';
import type { EdgebanConfig } from '../lambda/core/types';
import type { ReplayDocument } from './replay';

/** Multiples of each rule's threshold shown in the what-if table. */
export const WHAT_IF = [0.5, 1, 2, 5] as const;

/** How many keys the requests-over-time chart shows. */
const TOP_KEYS = 8;

const COLORS = [
  '#1b6ca8',
  '#d1495b',
  '#edae49',
  '#00798c',
  '#6a4c93',
  '#3a7d44',
  '#8d6a9f',
  '#c05805',
];

/** Per-rule figures of the report. */
export interface RuleReport {
  name: string;
  threshold: number;
  windowMinutes: number;
  /** Peak window count of every key with matching requests. */
  peaks: number[];
  /** Keys that would fire at each multiple of the threshold. */
  whatIf: { factor: number; threshold: number; keys: number }[];
  /** Top keys by matching requests, with their per-minute counts. */
  top: { key: string; total: number; minutes: number[]; counts: number[] }[];
}

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** Most requests first, then keys in address order. */
function byTotal(a: { key: string; total: number }, b: { key: string; total: number }): number {
  return b.total - a.total || compareKeys(a.key, b.key);
}

/** Collects the report's figures from a finished replay. */
export function collectRuleReports(engine: Engine, config: EdgebanConfig): RuleReport[] {
  const reports: RuleReport[] = config.rules.map((r) => ({
    name: r.name,
    threshold: r.threshold,
    windowMinutes: r.windowMinutes,
    peaks: [],
    whatIf: [],
    top: [],
  }));
  for (const pair of engine.evaluateAll()) {
    const report = reports[pair.ruleIndex]!;
    report.peaks.push(pair.state.peak);
    const total = pair.counts.total();
    const top = report.top;
    // Ties go to the lower key, so the top keys do not depend on the order
    // pairs come in (replay's worker threads merge in any order).
    const last = top[top.length - 1];
    if (top.length < TOP_KEYS || byTotal({ key: pair.key, total }, last!) < 0) {
      top.push({
        key: pair.key,
        total,
        minutes: [...pair.counts.minutes],
        counts: [...pair.counts.counts],
      });
      top.sort(byTotal);
      if (top.length > TOP_KEYS) top.pop();
    }
  }
  for (const report of reports) {
    // A key fires at a threshold exactly when its peak exceeds it.
    report.whatIf = WHAT_IF.map((factor) => {
      const threshold = Math.max(1, Math.round(report.threshold * factor));
      return { factor, threshold, keys: report.peaks.filter((p) => p > threshold).length };
    });
  }
  return reports;
}

/** Log-scale histogram of peaks with the threshold drawn as a line. */
export function histogramSvg(report: RuleReport): string {
  const width = 640;
  const height = 220;
  const pad = { l: 48, r: 12, t: 12, b: 36 };
  const maxPeak = Math.max(report.threshold * 2, ...report.peaks, 1);
  const bins = Math.max(1, Math.ceil(Math.log10(maxPeak + 1) * 8));
  const counts = new Array<number>(bins).fill(0);
  const binOf = (v: number) => Math.min(bins - 1, Math.floor(Math.log10(v + 1) * 8));
  for (const p of report.peaks) counts[binOf(p)]!++;
  const maxCount = Math.max(1, ...counts);
  const plotW = width - pad.l - pad.r;
  const plotH = height - pad.t - pad.b;
  const barW = plotW / bins;
  const y = (c: number) => (c === 0 ? 0 : (Math.log10(c + 1) / Math.log10(maxCount + 1)) * plotH);
  const bars = counts
    .map((c, i) => {
      const h = y(c);
      return `<rect class="bar" x="${(pad.l + i * barW).toFixed(1)}" y="${(pad.t + plotH - h).toFixed(1)}" width="${Math.max(1, barW - 1).toFixed(1)}" height="${h.toFixed(1)}" fill="#1b6ca8"><title>${c} keys</title></rect>`;
    })
    .join('');
  const tx = pad.l + (Math.log10(report.threshold + 1) * 8 * plotW) / bins;
  const ticks: string[] = [];
  for (let d = 1; d <= maxPeak * 10; d *= 10) {
    const x = pad.l + (Math.log10(d + 1) * 8 * plotW) / bins;
    if (x > width - pad.r) break;
    ticks.push(
      `<line x1="${x.toFixed(1)}" x2="${x.toFixed(1)}" y1="${pad.t + plotH}" y2="${pad.t + plotH + 4}" stroke="#555"/><text x="${x.toFixed(1)}" y="${pad.t + plotH + 16}" font-size="10" text-anchor="middle">${d}</text>`,
    );
  }
  return (
    `<svg class="chart histogram" xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" role="img" aria-label="peak counts of rule ${escapeHtml(report.name)}">` +
    `<rect width="${width}" height="${height}" fill="#fff"/>${bars}` +
    `<line x1="${pad.l}" x2="${width - pad.r}" y1="${pad.t + plotH}" y2="${pad.t + plotH}" stroke="#555"/>${ticks.join('')}` +
    `<line class="threshold" x1="${tx.toFixed(1)}" x2="${tx.toFixed(1)}" y1="${pad.t}" y2="${pad.t + plotH}" stroke="#d1495b" stroke-width="2" stroke-dasharray="4 3"/>` +
    `<text x="${(tx + 4).toFixed(1)}" y="${pad.t + 10}" font-size="11" fill="#d1495b">threshold ${report.threshold}</text>` +
    `<text x="${pad.l + plotW / 2}" y="${height - 4}" font-size="11" text-anchor="middle">peak requests in a ${report.windowMinutes}-minute window (log scale); bar height: keys (log scale)</text>` +
    '</svg>'
  );
}

/** Requests per minute of the top keys, one polyline each. */
export function timelineSvg(report: RuleReport): string {
  const width = 640;
  const height = 240;
  const pad = { l: 48, r: 12, t: 12, b: 40 };
  if (report.top.length === 0) return '<p>No matching requests.</p>';
  const all = report.top.flatMap((t) => t.minutes);
  const minM = Math.min(...all);
  const maxM = Math.max(minM + 1, ...all);
  const maxC = Math.max(1, ...report.top.flatMap((t) => t.counts));
  const plotW = width - pad.l - pad.r;
  const plotH = height - pad.t - pad.b;
  const x = (m: number) => pad.l + ((m - minM) / (maxM - minM)) * plotW;
  const y = (c: number) => pad.t + plotH - (c / maxC) * plotH;
  const lines = report.top
    .map((t, i) => {
      const pts: string[] = [];
      for (let j = 0; j < t.minutes.length; j++) {
        const m = t.minutes[j]!;
        // Minutes without requests are zero: drop to the axis between gaps.
        if (j > 0 && m - t.minutes[j - 1]! > 1)
          pts.push(
            `${x(t.minutes[j - 1]! + 1).toFixed(1)},${y(0).toFixed(1)}`,
            `${x(m - 1).toFixed(1)},${y(0).toFixed(1)}`,
          );
        pts.push(`${x(m).toFixed(1)},${y(t.counts[j]!).toFixed(1)}`);
      }
      return `<polyline class="series" fill="none" stroke="${COLORS[i % COLORS.length]}" stroke-width="1.5" points="${pts.join(' ')}"><title>${escapeHtml(t.key)}</title></polyline>`;
    })
    .join('');
  const legend = report.top
    .map(
      (t, i) =>
        `<tspan fill="${COLORS[i % COLORS.length]}">■ ${escapeHtml(t.key)}</tspan><tspan> </tspan>`,
    )
    .join('');
  return (
    `<svg class="chart timeline" xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" role="img" aria-label="requests per minute of the top keys of rule ${escapeHtml(report.name)}">` +
    `<rect width="${width}" height="${height}" fill="#fff"/>` +
    `<line x1="${pad.l}" x2="${width - pad.r}" y1="${pad.t + plotH}" y2="${pad.t + plotH}" stroke="#555"/>` +
    `<line x1="${pad.l}" x2="${pad.l}" y1="${pad.t}" y2="${pad.t + plotH}" stroke="#555"/>` +
    `<text x="${pad.l - 4}" y="${pad.t + 8}" font-size="10" text-anchor="end">${maxC}</text>` +
    `<text x="${pad.l}" y="${pad.t + plotH + 14}" font-size="10">${formatMinute(minM)}</text>` +
    `<text x="${width - pad.r}" y="${pad.t + plotH + 14}" font-size="10" text-anchor="end">${formatMinute(maxM)}</text>` +
    `${lines}<text x="${pad.l}" y="${height - 6}" font-size="10">${legend}</text></svg>`
  );
}

/** The whole report page. */
export function renderReport(
  doc: ReplayDocument,
  reports: RuleReport[],
  generatedAt: Date = new Date(),
): string {
  const s = doc.summary;
  const sections = reports
    .map((r) => {
      const rows = r.whatIf
        .map(
          (w) =>
            `<tr><td>${w.factor}x</td><td>${w.threshold}</td><td class="num">${w.keys}</td></tr>`,
        )
        .join('');
      return `<section class="rule" data-rule="${escapeHtml(r.name)}">
<h2>Rule <code>${escapeHtml(r.name)}</code>: more than ${r.threshold} in ${r.windowMinutes} min</h2>
<p>${r.peaks.length} keys with matching requests; ${r.peaks.filter((p) => p > r.threshold).length} over the threshold.</p>
<h3>Peak window counts per key</h3>
${histogramSvg(r)}
<h3>What if the threshold were…</h3>
<table class="whatif"><thead><tr><th>factor</th><th>threshold</th><th>keys blocked</th></tr></thead><tbody>${rows}</tbody></table>
<h3>Requests per minute, top keys</h3>
${timelineSvg(r)}
</section>`;
    })
    .join('\n');
  const decisions = doc.decisions
    .map(
      (d) =>
        `<tr><td>${escapeHtml(d.key)}</td><td>${escapeHtml(d.rule)}</td><td class="num">${d.peak}</td><td>${d.firstExceeded}</td><td>${d.blockedUntil}</td><td class="num">${d.offences}</td></tr>`,
    )
    .join('');
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>edgeban replay report</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body{font:14px/1.45 system-ui,sans-serif;margin:2rem auto;max-width:60rem;color:#222;padding:0 1rem}
table{border-collapse:collapse;margin:.5rem 0}td,th{border-bottom:1px solid #ddd;padding:.2rem .6rem;text-align:left}
td.num{text-align:right}code{background:#f3f3f3;padding:0 .2rem}section.rule{margin-top:2rem}
svg.chart{border:1px solid #ddd;max-width:100%;height:auto}
</style></head><body>
<h1>edgeban replay report</h1>
<p>${s.files} files, ${s.lines} lines: ${s.requests} requests, ${s.rejected} rejected, ${s.skippedFiles} skipped and ${s.damagedFiles} damaged files. Generated ${generatedAt.toISOString()}.</p>
${sections}
<section><h2>Decisions (${doc.decisions.length})</h2>
<table class="decisions"><thead><tr><th>key</th><th>rule</th><th>peak</th><th>first exceeded</th><th>blocked until</th><th>offences</th></tr></thead><tbody>${decisions}</tbody></table></section>
</body></html>
`;
}
