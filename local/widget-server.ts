/**
 * The console widget on 127.0.0.1, for `edgeban local --serve`: the same
 * read-only and acting code as the two Lambda functions, over the local
 * pipeline's state table, and a host page that does what the CloudWatch
 * console does with the widget's HTML: it hides each `<cwdb-action>`,
 * makes the element before it call the named function (after the
 * confirmation) with the action's JSON and the form fields as
 * `widgetContext.forms.all`, and shows the answer in a pop-up or in place
 * of the widget. The widget's HTML is exactly what the Lambda returns.
 */
import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { ReconcileResult } from '../lambda/reconciler/reconcile';
import type { OperatorDeps } from '../lambda/state/operator';
import { act } from '../lambda/widget/act';
import { parseWidgetEvent } from '../lambda/widget/event';
import { view } from '../lambda/widget/view';
import { closeServer, listenLoopback } from './loopback';
import type { LocalPipeline } from './pipeline';

/** The function names the local page calls; the console would call ARNs. */
export const LOCAL_WIDGET_ARNS = {
  view: 'arn:aws:lambda:us-east-1:000000000000:function:edgeban-local-widget',
  act: 'arn:aws:lambda:us-east-1:000000000000:function:edgeban-local-widget-act',
} as const;

/** Options of {@link startWidgetServer}. */
export interface WidgetServerOptions {
  readonly operator: OperatorDeps;
  /** Applies a change to WAF (the local reconciler); returns one sentence. */
  readonly apply: (changedAt: number) => Promise<string>;
  /** @default 0 (any free port) */
  readonly port?: number;
}

/** A running local widget. */
export interface WidgetServer {
  /** `http://127.0.0.1:PORT/` */
  readonly url: string;
  close(): Promise<void>;
}

const HOST_SCRIPT = `
const widget = document.getElementById('widget');
const popup = document.getElementById('popup');
const theme = document.body.dataset.theme;
const offsetISO = document.body.dataset.offset;
function forms() {
  const all = {};
  for (const el of widget.querySelectorAll('input[name], select[name], textarea[name]')) all[el.name] = el.value;
  return all;
}
function bind() {
  for (const action of widget.querySelectorAll('cwdb-action[action="call"]')) {
    const target = action.previousElementSibling;
    if (!target) continue;
    target.addEventListener('click', async (e) => {
      e.preventDefault();
      const confirmation = action.getAttribute('confirmation');
      if (confirmation && !window.confirm(confirmation)) return;
      const res = await fetch('/call', { method: 'POST', headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ endpoint: action.getAttribute('endpoint'), params: JSON.parse(action.textContent || '{}'), forms: forms(), theme, offsetISO }) });
      const html = await res.text();
      if (action.getAttribute('display') === 'popup') {
        popup.querySelector('.content').innerHTML = html;
        popup.showModal();
      } else {
        widget.innerHTML = html;
        bind();
      }
    });
  }
}
bind();
popup.querySelector('button').addEventListener('click', () => { popup.close(); location.reload(); });
`;

/**
 * The page around the widget's HTML, as a console dashboard would frame it.
 * `cwdb-action` elements are hidden, as the console hides them.
 */
export function hostPage(
  widgetHtml: string,
  theme: 'light' | 'dark',
  offsetISO = '+00:00',
  script = true,
): string {
  const bg = theme === 'dark' ? '#0b1622' : '#f2f3f3';
  const frame = theme === 'dark' ? '#414d5c' : '#c6c6cd';
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>edgeban: blocks (local widget)</title>
<style>body{margin:0;padding:16px;background:${bg}} #widget{border:1px solid ${frame};max-width:1600px;margin:0 auto}
cwdb-action{display:none} dialog{min-width:420px;max-width:800px;padding:0;border:1px solid ${frame}} dialog .bar{text-align:right;padding:6px}</style></head>
<body data-theme="${theme}" data-offset="${offsetISO}"><div id="widget">${widgetHtml}</div>
<dialog id="popup"><div class="content"></div><div class="bar"><button type="button">Close</button></div></dialog>
${script ? `<script>${HOST_SCRIPT}</script>` : ''}</body></html>`;
}

/** A `widgetContext` as the console sends it, for the local page. */
export function localWidgetEvent(
  params: Record<string, unknown>,
  forms: Record<string, string>,
  theme: 'light' | 'dark',
  offsetISO: string,
): Record<string, unknown> {
  return {
    ...params,
    widgetContext: {
      dashboardName: 'edgeban-local',
      widgetId: 'widget-local',
      accountId: '000000000000',
      locale: 'en',
      timezone: { label: offsetISO === '+00:00' ? 'UTC' : 'Local', offsetISO, offsetInMinutes: 0 },
      theme,
      title: 'edgeban: blocks',
      forms: { all: forms },
      params: {},
    },
  };
}

async function body(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const c of req) {
    size += (c as Buffer).length;
    if (size > 65_536) throw new Error('request too large');
    chunks.push(c as Buffer);
  }
  return JSON.parse(Buffer.concat(chunks).toString('utf8'));
}

function send(res: ServerResponse, status: number, type: string, text: string): void {
  res.writeHead(status, { 'content-type': `${type}; charset=utf-8`, 'cache-control': 'no-store' });
  res.end(text);
}

/** Serves the widget on 127.0.0.1 until closed. */
export async function startWidgetServer(options: WidgetServerOptions): Promise<WidgetServer> {
  // A fresh key per run: tokens of an earlier run's pages are void.
  const tokenKey = randomBytes(32);
  const viewDeps = {
    operator: options.operator,
    tokenKey,
    viewEndpoint: LOCAL_WIDGET_ARNS.view,
    actEndpoint: LOCAL_WIDGET_ARNS.act,
  };
  const actDeps = { operator: options.operator, tokenKey, apply: options.apply };
  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    if (req.method === 'GET' && url.pathname === '/') {
      const theme = url.searchParams.get('theme') === 'dark' ? 'dark' : 'light';
      // `?tz=+02:00` typed in a browser arrives with the plus decoded as a space.
      const offset = (url.searchParams.get('tz') ?? '+00:00').replace(/^ /, '+');
      const ev = parseWidgetEvent(localWidgetEvent({}, {}, theme, offset));
      send(
        res,
        200,
        'text/html',
        hostPage(await view(viewDeps, ev), theme, ev.context.timezone.offsetISO),
      );
      return;
    }
    if (req.method === 'POST' && url.pathname === '/call') {
      const b = (await body(req)) as Record<string, unknown>;
      const params =
        typeof b.params === 'object' && b.params !== null
          ? (b.params as Record<string, unknown>)
          : {};
      const forms =
        typeof b.forms === 'object' && b.forms !== null ? (b.forms as Record<string, string>) : {};
      const theme = b.theme === 'dark' ? 'dark' : 'light';
      const ev = parseWidgetEvent(
        localWidgetEvent(params, forms, theme, String(b.offsetISO ?? '+00:00')),
      );
      if (b.endpoint === LOCAL_WIDGET_ARNS.view) {
        send(res, 200, 'text/html', await view(viewDeps, ev));
      } else if (b.endpoint === LOCAL_WIDGET_ARNS.act) {
        send(res, 200, 'text/html', (await act(actDeps, ev)).html);
      } else {
        send(res, 404, 'text/plain', 'no such function');
      }
      return;
    }
    send(res, 404, 'text/plain', 'not found');
  };
  const server: Server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      send(
        res,
        500,
        'text/plain',
        `edgeban widget: ${err instanceof Error ? err.message : String(err)}`,
      );
    });
  });
  const port = await listenLoopback(server, options.port ?? 0);
  return { url: `http://127.0.0.1:${port}/`, close: () => closeServer(server) };
}

/** One sentence on what a reconcile did to WAF, for the action's pop-up. */
export function appliedSentence(r: ReconcileResult): string {
  if (r.busy) return 'Another reconcile was running: the next one applies it.';
  if (r.failedSets.length > 0)
    return `WAF not updated now (${r.failedSets.join(', ')}); the next reconcile retries.`;
  const changes = [...r.added.map((c) => `+${c}`), ...r.removed.map((c) => `-${c}`)];
  return `WAF: ${changes.length === 0 ? 'unchanged' : changes.join(' ')}${r.mode === 'observe' ? ' (observe mode: WAF is not updated)' : ''}.`;
}

/** The widget over a running local pipeline: actions reconcile at once, as the CLI's `--local` does. */
export function serveWidget(pipeline: LocalPipeline, port = 0): Promise<WidgetServer> {
  return startWidgetServer({
    operator: {
      ddb: pipeline.ddb,
      tableName: pipeline.tableName,
      config: pipeline.config,
      guard: pipeline.guard,
      now: () => pipeline.clock.now(),
    },
    apply: async () => appliedSentence((await pipeline.reconcileNow('message')).result),
    port,
  });
}
