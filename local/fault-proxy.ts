/**
 * A loopback HTTP proxy put in front of a local server (S3, DynamoDB, WAF)
 * to inject the failures a pipeline meets in the cloud: a connection reset
 * in the middle of a response body, added latency, and 5xx answers.
 *
 * It is HTTP-aware so faults can target one kind of request (a GetObject,
 * one `X-Amz-Target`), and it forwards requests byte for byte otherwise,
 * keeping the `Host` header so signatures computed by the client stay
 * valid. Decisions are seeded, so a run can be replayed.
 */
import {
  Agent,
  createServer,
  type IncomingMessage,
  type OutgoingHttpHeaders,
  request,
  type Server,
  type ServerResponse,
} from 'node:http';
import type { Socket } from 'node:net';
import { closeServer, listenLoopback } from './loopback';
import { seededRandom } from './rng';

/** Which requests a fault applies to; every given field must match. */
export interface FaultMatch {
  /** HTTP method, e.g. `GET`. */
  readonly method?: string;
  /** Path prefix (`/bucket/key`), or a pattern tested on path plus query. */
  readonly path?: string | RegExp;
  /** `X-Amz-Target` operation suffix, e.g. `UpdateIPSet` or `DynamoDB_20120810.PutItem`. */
  readonly target?: string;
}

/** One fault rule. The first active rule that matches and fires applies. */
export interface ProxyFault {
  /** @default - every request */
  readonly match?: FaultMatch;
  /**
   * Probability (0 to 1) that a matching request gets the fault.
   * @default 1
   */
  readonly probability?: number;
  /** Apply to one request, then retire the rule. Same as `times: 1`. */
  readonly once?: boolean;
  /** Apply to this many requests, then retire the rule. @default - unlimited */
  readonly times?: number;
  /** Wait this long before handling the request (combines with the others). */
  readonly delayMs?: number;
  /** Reset the client connection (TCP RST) before any response byte. */
  readonly resetBeforeResponse?: boolean;
  /**
   * Forward the request, send the response head and this many body bytes,
   * then reset the client connection. A body no longer than this goes
   * through whole (and does not count as a fault).
   */
  readonly resetAfterBytes?: number;
  /** Answer with this HTTP status instead of forwarding (500, 503, ...). */
  readonly status?: number;
  /** Body of that answer. @default '' */
  readonly body?: string;
  /** Headers of that answer. */
  readonly headers?: Readonly<Record<string, string>>;
}

/** Options of {@link FaultProxy.start}. */
export interface FaultProxyOptions {
  /** @default 0 - a free port */
  readonly port?: number;
  /** Seed of the generator behind `probability`. @default 1 */
  readonly seed?: number;
  /** Rules active from the start. @default - none */
  readonly faults?: ProxyFault | readonly ProxyFault[];
}

/** What the proxy has done so far. */
export interface FaultProxyStats {
  readonly requests: number;
  readonly forwarded: number;
  readonly faults: {
    readonly delay: number;
    readonly reset: number;
    readonly error: number;
  };
}

/** Base error of this module. */
export class FaultProxyError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'FaultProxyError';
  }
}

interface ActiveRule {
  readonly fault: ProxyFault;
  left: number;
}

// Hop-by-hop headers belong to one connection and are not forwarded.
const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-authenticate',
  'proxy-authorization',
  'proxy-connection',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
  'expect',
]);

/**
 * The proxy. Start one with {@link FaultProxy.start}, point the client at
 * {@link endpoint}, and steer it with {@link set} and {@link clear}.
 *
 * @example
 * const proxy = await FaultProxy.start('http://127.0.0.1:4568');
 * proxy.set({ match: { method: 'GET' }, resetAfterBytes: 4096, once: true });
 */
export class FaultProxy {
  /**
   * Starts a proxy on 127.0.0.1 forwarding to `target`.
   * @param target - `http://host:port` of the server behind it
   */
  static async start(target: string, options: FaultProxyOptions = {}): Promise<FaultProxy> {
    const url = new URL(target);
    if (url.protocol !== 'http:') {
      throw new FaultProxyError(`target must be an http:// URL, got ${target}`);
    }
    const proxy = new FaultProxy(url, options);
    await proxy.listen(options.port ?? 0);
    return proxy;
  }

  private readonly server: Server;
  private readonly agent = new Agent({ keepAlive: true });
  private readonly targetHost: string;
  private readonly targetPort: number;
  private readonly timers = new Set<NodeJS.Timeout>();
  private rules: ActiveRule[] = [];
  private random: () => number;
  private boundPort = 0;
  private counts = { requests: 0, forwarded: 0, delay: 0, reset: 0, error: 0 };

  private constructor(
    readonly target: URL,
    options: FaultProxyOptions,
  ) {
    this.targetHost = target.hostname;
    this.targetPort = Number(target.port || 80);
    this.random = seededRandom(options.seed ?? 1);
    if (options.faults) this.set(options.faults);
    this.server = createServer((req, res) => {
      this.handle(req, res).catch(() => res.destroy());
    });
  }

  /** `http://127.0.0.1:<port>`, the endpoint clients use instead of the target. */
  get endpoint(): string {
    return `http://127.0.0.1:${this.boundPort}`;
  }

  get port(): number {
    return this.boundPort;
  }

  /**
   * Replaces the active rules.
   * @param faults - one rule or a list, tried in order
   */
  set(faults: ProxyFault | readonly ProxyFault[]): void {
    const list: readonly ProxyFault[] = Array.isArray(faults) ? faults : [faults as ProxyFault];
    for (const f of list) checkFault(f);
    this.rules = list.map((fault) => ({
      fault,
      left: fault.once ? 1 : (fault.times ?? Number.POSITIVE_INFINITY),
    }));
  }

  /** Removes every rule: requests are forwarded untouched. */
  clear(): void {
    this.rules = [];
  }

  /** Re-seeds the generator behind `probability`. */
  seed(seed: number): void {
    this.random = seededRandom(seed);
  }

  stats(): FaultProxyStats {
    const { requests, forwarded, delay, reset, error } = this.counts;
    return { requests, forwarded, faults: { delay, reset, error } };
  }

  /** Stops listening, drops every connection and pending delay. */
  async close(): Promise<void> {
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    this.agent.destroy();
    await closeServer(this.server);
  }

  private async listen(port: number): Promise<void> {
    this.boundPort = await listenLoopback(this.server, port);
  }

  private pick(req: IncomingMessage): ProxyFault | undefined {
    for (const rule of this.rules) {
      if (rule.left <= 0 || !matches(rule.fault.match, req)) continue;
      const p = rule.fault.probability ?? 1;
      if (p < 1 && this.random() >= p) continue;
      rule.left--;
      this.rules = this.rules.filter((r) => r.left > 0);
      return rule.fault;
    }
    return undefined;
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    this.counts.requests++;
    const fault = this.pick(req);
    if (fault?.delayMs) {
      this.counts.delay++;
      await new Promise<void>((resolve) => {
        const t = setTimeout(() => {
          this.timers.delete(t);
          resolve();
        }, fault.delayMs);
        this.timers.add(t);
      });
      if (req.socket.destroyed) return;
    }
    if (fault?.resetBeforeResponse) {
      this.counts.reset++;
      resetSocket(req.socket);
      return;
    }
    if (fault?.status !== undefined) {
      this.counts.error++;
      req.resume();
      const body = Buffer.from(fault.body ?? '');
      res.writeHead(fault.status, { ...fault.headers, 'content-length': body.length });
      res.end(body);
      return;
    }
    this.forward(req, res, fault?.resetAfterBytes);
  }

  private forward(req: IncomingMessage, res: ServerResponse, resetAfter: number | undefined): void {
    this.counts.forwarded++;
    const headers: OutgoingHttpHeaders = {};
    for (const [name, value] of Object.entries(req.headers)) {
      if (value !== undefined && !HOP_BY_HOP.has(name)) headers[name] = value;
    }
    const upstream = request({
      host: this.targetHost,
      port: this.targetPort,
      method: req.method,
      path: req.url,
      headers,
      agent: this.agent,
    });
    upstream.on('error', () => {
      if (res.headersSent) res.destroy();
      else {
        res.writeHead(502, { 'content-length': 0 });
        res.end();
      }
    });
    res.on('close', () => {
      if (!res.writableFinished) upstream.destroy();
    });
    req.pipe(upstream);
    upstream.on('response', (up) => {
      const out: OutgoingHttpHeaders = {};
      for (const [name, value] of Object.entries(up.headers)) {
        if (value !== undefined && !HOP_BY_HOP.has(name)) out[name] = value;
      }
      res.writeHead(up.statusCode ?? 502, up.statusMessage, out);
      if (resetAfter === undefined) {
        up.pipe(res);
        return;
      }
      let sent = 0;
      const cut = (): void => {
        up.destroy();
        resetSocket(res.socket);
      };
      if (resetAfter === 0) {
        this.counts.reset++;
        res.flushHeaders();
        res.socket?.write('', cut);
        return;
      }
      let cutting = false;
      up.on('data', (chunk: Buffer) => {
        if (cutting) return;
        const room = resetAfter - sent;
        if (chunk.length <= room) {
          sent += chunk.length;
          res.write(chunk);
          return;
        }
        cutting = true;
        this.counts.reset++;
        res.write(chunk.subarray(0, room), cut);
      });
      // A body no longer than the cut point goes through whole.
      up.on('end', () => {
        if (!cutting) res.end();
      });
    });
  }
}

function resetSocket(socket: Socket | null): void {
  if (!socket || socket.destroyed) return;
  socket.resetAndDestroy();
}

function matches(match: FaultMatch | undefined, req: IncomingMessage): boolean {
  if (!match) return true;
  if (match.method && req.method !== match.method.toUpperCase()) return false;
  const url = req.url ?? '/';
  if (typeof match.path === 'string') {
    if (!(url.split('?')[0] ?? '').startsWith(match.path)) return false;
  } else if (match.path && !match.path.test(url)) {
    return false;
  }
  if (match.target) {
    const target = req.headers['x-amz-target'];
    if (typeof target !== 'string' || !target.endsWith(match.target)) return false;
  }
  return true;
}

function checkFault(f: ProxyFault): void {
  if (f.probability !== undefined && !(f.probability >= 0 && f.probability <= 1)) {
    throw new FaultProxyError(`probability must be between 0 and 1, got ${f.probability}`);
  }
  if (f.times !== undefined && !(Number.isInteger(f.times) && f.times >= 1)) {
    throw new FaultProxyError(`times must be an integer >= 1, got ${f.times}`);
  }
  if (f.delayMs !== undefined && !(f.delayMs >= 0)) {
    throw new FaultProxyError(`delayMs must be >= 0, got ${f.delayMs}`);
  }
  if (
    f.resetAfterBytes !== undefined &&
    !(Number.isInteger(f.resetAfterBytes) && f.resetAfterBytes >= 0)
  ) {
    throw new FaultProxyError(`resetAfterBytes must be an integer >= 0, got ${f.resetAfterBytes}`);
  }
  if (
    f.status !== undefined &&
    !(Number.isInteger(f.status) && f.status >= 100 && f.status <= 599)
  ) {
    throw new FaultProxyError(`status must be an HTTP status code, got ${f.status}`);
  }
  const kinds = [f.resetBeforeResponse, f.resetAfterBytes !== undefined, f.status !== undefined];
  if (kinds.filter(Boolean).length > 1) {
    throw new FaultProxyError(
      'a fault takes at most one of resetBeforeResponse, resetAfterBytes and status',
    );
  }
}
