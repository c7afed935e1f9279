/**
 * Small HTML helpers of the widget: escaping, times in the dashboard's
 * time zone, and the `<cwdb-action>` element.
 */
import type { WidgetTimezone } from './event';

/** Escapes text for an HTML element or a double-quoted attribute. */
export function esc(text: string | number | null | undefined): string {
  return String(text ?? '')
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&#39;');
}

/** `YYYY-MM-DD HH:MM` of epoch ms in the dashboard's time zone. */
export function localTime(ms: number, tz: WidgetTimezone): string {
  const d = new Date(ms + tz.offsetMinutes * 60_000);
  return d.toISOString().slice(0, 16).replace('T', ' ');
}

/** `YYYY-MM-DDTHH:MM:SSZ` (the operator commands' times) to epoch ms; NaN when not a time. */
export function parseIso(iso: string | null): number {
  return iso === null ? Number.NaN : Date.parse(iso);
}

/** A span of seconds, rounded to its two largest units: `3h 20m`, `45s`. */
export function span(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  const units: [number, string][] = [
    [86400, 'd'],
    [3600, 'h'],
    [60, 'm'],
    [1, 's'],
  ];
  const parts: string[] = [];
  let rest = s;
  for (const [size, name] of units) {
    if (rest >= size || (size === 1 && parts.length === 0)) {
      parts.push(`${Math.floor(rest / size)}${name}`);
      rest %= size;
    }
    if (parts.length === 2) break;
  }
  return parts.join(' ');
}

/** Where a `<cwdb-action action="call">` shows the function's answer. */
export type ActionDisplay = 'popup' | 'widget';

/**
 * A `<cwdb-action action="call">`: it acts for the element just before it.
 * Its body is the JSON the console passes to the function as top-level
 * event fields; `confirmation` asks before calling; `display` is `popup`
 * (the answer in a pop-up, the widget unchanged) or `widget` (the answer
 * replaces the widget's content).
 * https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/add_custom_widget_dashboard_interactivity.html
 */
export function callAction(
  endpoint: string,
  params: Record<string, unknown>,
  display: ActionDisplay,
  confirmation?: string,
): string {
  const confirm = confirmation === undefined ? '' : ` confirmation="${esc(confirmation)}"`;
  return `<cwdb-action action="call" endpoint="${esc(endpoint)}" display="${display}"${confirm}>${esc(JSON.stringify(params))}</cwdb-action>`;
}
