/**
 * The CloudWatch custom widget event, as the console sends it.
 *
 * Every call carries `widgetContext` (dashboardName, widgetId, accountId,
 * locale, timezone {label, offsetISO, offsetInMinutes}, period, timeRange,
 * theme `light` | `dark`, title, forms {all: {name: value}}, params, width,
 * height); the widget's own parameters, and the JSON body of a
 * `<cwdb-action action="call">`, arrive as top-level fields; `describe:
 * true` asks for the widget's documentation (Markdown).
 * https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/add_custom_widget_dashboard_about.html
 * https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/add_custom_widget_dashboard_interactivity.html
 * (the samples of aws-samples/cloudwatch-custom-widgets-samples read
 * `event.describe`, `event.widgetContext.forms.all` and a call's JSON as
 * `event.action`, `event.instanceId`).
 *
 * Nothing here trusts the event: it is input typed by whoever edits the
 * dashboard or fills the form, so every field is checked and bounded.
 */

/** The dashboard's time zone. */
export interface WidgetTimezone {
  /** `UTC` or `Local`. */
  readonly label: string;
  /** Minutes east of UTC, from `offsetISO` (`+02:00` is 120). */
  readonly offsetMinutes: number;
  /** `+02:00`. */
  readonly offsetISO: string;
}

/** What the widget uses of `widgetContext`. */
export interface WidgetContext {
  readonly dashboardName: string;
  readonly widgetId: string;
  readonly theme: 'light' | 'dark';
  readonly timezone: WidgetTimezone;
  /** `widgetContext.forms.all`: the widget's form fields by name, as strings. */
  readonly forms: Readonly<Record<string, string>>;
}

/** A widget event, checked. */
export interface WidgetEvent {
  readonly describe: boolean;
  readonly context: WidgetContext;
  /** The top-level fields other than `widgetContext` and `describe`. */
  readonly params: Readonly<Record<string, unknown>>;
}

/** Longest form or parameter value read; longer ones are cut (nothing legitimate is longer). */
const MAX_FIELD = 512;

export const UTC: WidgetTimezone = { label: 'UTC', offsetMinutes: 0, offsetISO: '+00:00' };

function record(v: unknown): Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
    ? (v as Record<string, unknown>)
    : {};
}

function text(v: unknown, fallback = ''): string {
  if (typeof v === 'string') return v.slice(0, MAX_FIELD);
  if (typeof v === 'number' && Number.isFinite(v)) return String(v);
  return fallback;
}

/** `+05:30` → 330; anything else → null. Offsets run from -12:00 to +14:00. */
export function parseOffset(iso: string): number | null {
  const m = /^([+-])(\d{2}):(\d{2})$/.exec(iso);
  if (m === null) return null;
  const minutes = Number(m[2]) * 60 + Number(m[3]);
  if (minutes > 14 * 60 || Number(m[3]) >= 60) return null;
  return m[1] === '-' ? -minutes : minutes;
}

function timezone(v: unknown): WidgetTimezone {
  const tz = record(v);
  const iso = text(tz.offsetISO);
  const offset = parseOffset(iso);
  if (offset === null) return UTC;
  return {
    label: text(tz.label, 'UTC').slice(0, 32) || 'UTC',
    offsetMinutes: offset,
    offsetISO: iso,
  };
}

/** Reads a widget event; whatever is missing or malformed falls back to a safe default. */
export function parseWidgetEvent(event: unknown): WidgetEvent {
  const e = record(event);
  const ctx = record(e.widgetContext);
  const forms: Record<string, string> = {};
  for (const [k, v] of Object.entries(record(record(ctx.forms).all))) {
    if (/^[A-Za-z][A-Za-z0-9_-]{0,31}$/.test(k)) forms[k] = text(v);
  }
  const params: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(e)) {
    if (k !== 'widgetContext' && k !== 'describe') params[k] = v;
  }
  return {
    describe: e.describe === true,
    context: {
      dashboardName: text(ctx.dashboardName).slice(0, 255),
      widgetId: text(ctx.widgetId).slice(0, 64),
      theme: ctx.theme === 'dark' ? 'dark' : 'light',
      timezone: timezone(ctx.timezone),
      forms,
    },
    params,
  };
}

/** A parameter or form field as a trimmed string, or '' when absent. */
export function field(ev: WidgetEvent, name: string): string {
  const fromParams = text(ev.params[name]).trim();
  return fromParams !== '' ? fromParams : (ev.context.forms[name] ?? '').trim();
}

/** `page` (1-based) from the parameters; 1 when absent or not a whole number >= 1. */
export function pageParam(ev: WidgetEvent): number {
  const p = Number(text(ev.params.page));
  return Number.isSafeInteger(p) && p >= 1 ? p : 1;
}
