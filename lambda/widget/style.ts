/**
 * The widget's CSS: one sheet, colours from custom properties set per
 * theme (`widgetContext.theme` is `light` or `dark`), so it reads on both
 * console themes. CloudWatch's default widget styles are switched off with
 * a `cwdb-no-default-styles` element and this sheet styles every element,
 * so the console and the local page look the same.
 * https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/add_custom_widget_dashboard_about.html
 */

const LIGHT = `--bg:#ffffff;--fg:#16191f;--muted:#5f6b7a;--line:#c6c6cd;--alt:#f4f4f6;
--accent:#0972d3;--accent-fg:#ffffff;--danger:#c7162b;--danger-fg:#ffffff;--ok:#037f0c;
--warn-bg:#fff4d6;--warn-fg:#4d3800;--warn-line:#c48b00;--err-bg:#fde8e8;--err-fg:#8c0d16;
--bar:#0972d3;--track:#e3e5e8;--manual:#7d3fc2;--rule:#0f6e87;`;

const DARK = `--bg:#0f1b2a;--fg:#e1e4e8;--muted:#a3adba;--line:#414d5c;--alt:#16263a;
--accent:#539fe5;--accent-fg:#0f1b2a;--danger:#ff6b6b;--danger-fg:#0f1b2a;--ok:#41c95a;
--warn-bg:#3d2f00;--warn-fg:#ffe08a;--warn-line:#d9a400;--err-bg:#4a1519;--err-fg:#ffc9cc;
--bar:#539fe5;--track:#2a3a4f;--manual:#c79bff;--rule:#5fd0e8;`;

/** The sheet, scoped to `.eb` so it touches nothing else on the dashboard. */
export const WIDGET_CSS = `
.eb{${LIGHT}background:var(--bg);color:var(--fg);font:13px/1.4 "Amazon Ember","Helvetica Neue",Roboto,Arial,sans-serif;padding:8px 10px}
.eb.eb-dark{${DARK}}
.eb *{box-sizing:border-box}
.eb h3{font-size:14px;margin:14px 0 6px;font-weight:700}
.eb .eb-top{display:flex;flex-wrap:wrap;gap:10px 24px;align-items:flex-start}
.eb .eb-stat{min-width:150px}
.eb .eb-label{color:var(--muted);font-size:11px;text-transform:uppercase;letter-spacing:.04em}
.eb .eb-value{font-size:15px;font-weight:700}
.eb .eb-mode-block{color:var(--ok)}
.eb .eb-mode-count,.eb .eb-mode-observe{color:var(--warn-line)}
.eb .eb-warn{background:var(--warn-bg);color:var(--warn-fg);border-left:4px solid var(--warn-line);padding:6px 10px;margin:8px 0}
.eb .eb-error{background:var(--err-bg);color:var(--err-fg);border-left:4px solid var(--danger);padding:6px 10px;margin:8px 0}
.eb .eb-note{color:var(--muted);font-size:12px}
.eb .eb-fill text{fill:var(--fg);font-size:11px}
.eb .eb-fill .eb-track{fill:var(--track)}
.eb .eb-fill .eb-used{fill:var(--bar)}
.eb .eb-fill .eb-over{fill:var(--danger)}
.eb form{display:flex;flex-wrap:wrap;gap:6px 10px;align-items:center;margin:6px 0}
.eb input{background:var(--bg);color:var(--fg);border:1px solid var(--line);border-radius:4px;padding:4px 6px;font:inherit}
.eb a.btn{display:inline-block;cursor:pointer;border:1px solid var(--accent);color:var(--accent);border-radius:14px;padding:2px 12px;text-decoration:none;font-weight:700;white-space:nowrap;background:transparent}
.eb a.btn-primary{background:var(--accent);color:var(--accent-fg)}
.eb a.btn-danger{border-color:var(--danger);color:var(--danger)}
.eb a.btn-block{background:var(--danger);border-color:var(--danger);color:var(--danger-fg)}
.eb table{border-collapse:collapse;width:100%;margin:4px 0}
.eb th{text-align:left;color:var(--muted);font-size:11px;text-transform:uppercase;letter-spacing:.03em;border-bottom:2px solid var(--line);padding:4px 6px;white-space:nowrap}
.eb td{border-bottom:1px solid var(--line);padding:4px 6px;vertical-align:top}
.eb tbody tr:nth-child(even) td{background:var(--alt)}
.eb td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
.eb td.time{white-space:nowrap;font-variant-numeric:tabular-nums}
.eb td.key{font-family:Menlo,Consolas,monospace;font-weight:700;white-space:nowrap}
.eb .eb-src{display:inline-block;border-radius:3px;padding:0 5px;font-size:11px;font-weight:700;border:1px solid currentColor}
.eb .eb-src-rule{color:var(--rule)}
.eb .eb-src-manual{color:var(--manual)}
.eb .eb-over{color:var(--danger);font-weight:700}
.eb .eb-yes{color:var(--ok);font-weight:700}
.eb .eb-no{color:var(--warn-line);font-weight:700}
.eb .eb-kind{font-weight:700}
.eb .eb-kind-block{color:var(--danger)}
.eb .eb-kind-unblock{color:var(--ok)}
.eb .eb-kind-expire{color:var(--muted)}
.eb .eb-kind-reset{color:var(--warn-line)}
.eb nav.eb-pager{display:flex;gap:12px;align-items:center;margin:6px 0}
.eb .eb-ok{color:var(--ok);font-weight:700}
`;
