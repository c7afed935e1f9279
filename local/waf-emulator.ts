/**
 * A local WAFv2 endpoint speaking the service's wire protocol (AWS JSON 1.1:
 * `POST /`, `X-Amz-Target: AWSWAF_20190729.<Operation>`), so the real
 * `@aws-sdk/client-wafv2` client runs against it unchanged.
 *
 * It keeps IP sets (and enough of web ACLs for an IP-set rule) per scope
 * and region, rotates the LockToken on every write, validates what the
 * real service validates, and injects the failures a careful writer has
 * to survive: optimistic-lock conflicts from a concurrent writer and
 * throttling, both seeded. It also plays what AWS itself does to a
 * pipeline, each behaviour switched on by an option and run on an injected
 * clock so tests stay fast:
 * - per-account request quotas per action name (`quotas`, see `waf/quotas.ts`);
 * - reads that lag writes (`readLagMs`): GetIPSet and ListIPSets answer
 *   the addresses and LockToken a set had that long ago. AWS documents
 *   that changes take "from a few seconds to a number of minutes" to
 *   propagate, not the shape of a stale answer; this is our model;
 * - `WAFUnavailableEntityException` for a set created moments ago
 *   (`unavailableAfterCreateMs`);
 * - a CloudFormation update of a set ({@link WafEmulator.cloudFormationUpdate}),
 *   which replaces its addresses with the template's list
 *   (aws-waf-security-automations issue #233, "Updating the stack removes
 *   configured IP set").
 * Tests observe every call (with its time) and every address that was
 * ever sent.
 */
import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { type CidrProblem, cidrProblem, type IpAddressVersion } from './cidr';
import { closeServer, listenLoopback } from './loopback';
import { seededRandom } from './rng';
import {
  ADDRESS_RULE,
  Constraints,
  DESCRIPTION_RULE,
  headerValue,
  ID_RULE,
  InjectedFault,
  invalidParameter,
  LOCK_RULE,
  MESSAGES,
  NAME_RULE,
  NEXT_MARKER,
  nonexistent,
  parseInput,
  readBody,
  SCOPE_RULE,
  sendJson,
  serialization,
  VERSIONS,
  WafEmulatorError,
  WafServiceError,
} from './waf/protocol';
import { QuotaBuckets, type WafQuotas } from './waf/quotas';

export type { IpAddressVersion } from './cidr';
export { WafEmulatorError } from './waf/protocol';
export { DEFAULT_QUOTAS, type WafQuotas } from './waf/quotas';

/** `Scope` of a WAFv2 resource. */
export type WafScope = 'CLOUDFRONT' | 'REGIONAL';

/** The `X-Amz-Target` prefix of every WAFv2 operation. */
export const WAF_TARGET_PREFIX = 'AWSWAF_20190729.';

/** The account id in the ARNs the emulator forms. */
export const LOCAL_ACCOUNT_ID = '123456789012';

/** Addresses one IP set holds at most (a WAFv2 quota). */
export const MAX_ADDRESSES_PER_SET = 10_000;

/** Faults the emulator injects. Every field is optional; absent means off. */
export interface WafFaults {
  /**
   * Seed of the random generator that decides the rate-based faults.
   * @default 1
   */
  readonly seed?: number;
  /**
   * Probability (0 to 1) that an UpdateIPSet carrying the current token
   * fails with `WAFOptimisticLockException` as if another writer had
   * updated the set just before: the token rotates, the addresses stay.
   */
  readonly lockConflictRate?: number;
  /** The next N such UpdateIPSet calls fail that way, before the rate applies. */
  readonly lockConflictNext?: number;
  /** Probability (0 to 1) that a call is refused with `ThrottlingException`. */
  readonly throttleRate?: number;
  /** The next N calls are refused with `ThrottlingException`, before the rate applies. */
  readonly throttleNext?: number;
  /**
   * Operations the throttling faults apply to, e.g. `['UpdateIPSet']`.
   * @default - every operation
   */
  readonly throttleOperations?: readonly string[];
}

/** Options of {@link WafEmulator.start}. */
export interface WafEmulatorOptions {
  /**
   * Port on 127.0.0.1.
   * @default 0 - a free port
   */
  readonly port?: number;
  /** @default LOCAL_ACCOUNT_ID */
  readonly accountId?: string;
  /** @default MAX_ADDRESSES_PER_SET */
  readonly maxAddressesPerSet?: number;
  /**
   * IP sets per scope and region (a WAFv2 quota).
   * @default 100
   */
  readonly maxIpSetsPerScope?: number;
  /**
   * Refuse CIDRs with bits set below the prefix (`192.0.2.7/24`), as WAFv2
   * does for IPv4; applied to IPv6 too, which is stricter than needed for
   * a pipeline that writes masked keys only.
   * @default true
   */
  readonly rejectHostBits?: boolean;
  /** @default - no faults */
  readonly faults?: WafFaults;
  /**
   * The clock quotas, read lag and fresh-set unavailability run on: give
   * the tests' simulated clock so they stay fast.
   * @default - the wall clock
   */
  readonly clock?: WafClock;
  /**
   * Per-account request quotas: `true` for AWS's documented write quota
   * and our read assumption ({@link DEFAULT_QUOTAS}), or the rates.
   * @default - no quotas
   */
  readonly quotas?: boolean | WafQuotas;
  /**
   * Reads (GetIPSet, ListIPSets) answer what a set held this many
   * milliseconds ago: its previous addresses and LockToken.
   * @default 0 - reads are current
   */
  readonly readLagMs?: number;
  /**
   * GetIPSet, UpdateIPSet and DeleteIPSet of a set created less than this
   * many milliseconds ago answer `WAFUnavailableEntityException`.
   * @default 0 - a new set is usable at once
   */
  readonly unavailableAfterCreateMs?: number;
}

/** A source of the emulator's time (epoch milliseconds). */
export interface WafClock {
  now(): number;
}

/** What the emulator plays of AWS's own behaviour (see {@link WafEmulatorOptions}). */
export interface WafRealism {
  readonly quotas?: boolean | WafQuotas;
  readonly readLagMs?: number;
  readonly unavailableAfterCreateMs?: number;
}

/** The template side of a CloudFormation update of an IP set. */
export interface CloudFormationUpdate {
  /**
   * The template's `Addresses`, which replace the set's.
   * @default [] - what edgeban's stack declares
   */
  readonly addresses?: readonly string[];
  /** The template's `Description`. @default - unchanged */
  readonly description?: string;
}

/** One API call as the emulator saw it. */
export interface WafCall {
  /** 1-based order of arrival. */
  readonly seq: number;
  /** The emulator's clock when the call arrived, epoch ms. */
  readonly at: number;
  readonly operation: string;
  readonly scope: string | null;
  readonly name: string | null;
  readonly id: string | null;
  readonly ok: boolean;
  /** Error type returned (e.g. `WAFOptimisticLockException`), or null. */
  readonly error: string | null;
  /** True when the error was an injected fault, not the request's doing. */
  readonly injected: boolean;
}

/** A copy of one IP set's state. */
export interface IpSetSnapshot {
  readonly name: string;
  readonly id: string;
  readonly arn: string;
  readonly scope: WafScope;
  readonly region: string;
  readonly ipAddressVersion: IpAddressVersion;
  readonly description: string | null;
  readonly addresses: readonly string[];
  readonly lockToken: string;
  /** Successful UpdateIPSet calls through the API (console edits excluded). */
  readonly updates: number;
}

/**
 * Names an IP set for the admin helpers: by `arn`, by `id`, or by `name`
 * (with `scope` and `region` when the name alone is ambiguous).
 */
export interface IpSetRef {
  readonly arn?: string;
  readonly id?: string;
  readonly name?: string;
  readonly scope?: WafScope;
  readonly region?: string;
}

/** Input of {@link WafEmulator.createIpSet}, the way a deployment creates a set. */
export interface CreateIpSetInput {
  readonly name: string;
  readonly scope: WafScope;
  readonly ipAddressVersion: IpAddressVersion;
  readonly addresses?: readonly string[];
  readonly description?: string;
  /** @default 'us-east-1' */
  readonly region?: string;
}

/** Call counts by operation and injected faults. */
export interface WafCounters {
  readonly calls: number;
  readonly operations: Readonly<Record<string, { readonly ok: number; readonly error: number }>>;
  readonly injected: {
    readonly throttle: number;
    readonly lockConflict: number;
    /** Calls refused by the request quotas. */
    readonly quota: number;
    /** Calls refused as `WAFUnavailableEntityException` on a set just created. */
    readonly unavailable: number;
  };
}

interface Partitioned {
  readonly name: string;
  readonly id: string;
  readonly arn: string;
  readonly scope: WafScope;
  readonly region: string;
  lockToken: string;
}

/** One state of a set, kept while a lagging read may still answer it. */
interface IpSetVersion {
  readonly at: number;
  readonly addresses: readonly string[];
  readonly lockToken: string;
  readonly description: string | undefined;
}

interface StoredIpSet extends Partitioned {
  readonly version: IpAddressVersion;
  description: string | undefined;
  addresses: string[];
  updates: number;
  readonly createdAt: number;
  /** Oldest first; the last entry is the current state. */
  history: IpSetVersion[];
}

interface StoredWebAcl extends Partitioned {
  /** Every mutable member as last written (DefaultAction, Rules, ...). */
  spec: Record<string, unknown>;
}

/** What a handler knows about the request besides its input. */
interface CallContext {
  /** Region from the SigV4 credential scope. */
  readonly region: string;
}

type Handler = (input: Record<string, unknown>, ctx: CallContext) => unknown;

/**
 * The WAFv2 emulator: an HTTP server on 127.0.0.1 plus the in-process
 * handles tests use to steer and observe it.
 *
 * @example
 * const waf = await WafEmulator.start();
 * const client = new WAFV2Client({ endpoint: waf.endpoint, region: 'us-east-1', credentials });
 * waf.setFaults({ lockConflictNext: 1 });
 * // ... exercise the writer, then:
 * expect(waf.allAddressesEverWritten()).not.toContain('10.0.0.1/32');
 * await waf.close();
 */
export class WafEmulator {
  /**
   * Starts an emulator listening on 127.0.0.1.
   * @param options - see {@link WafEmulatorOptions}
   */
  static async start(options: WafEmulatorOptions = {}): Promise<WafEmulator> {
    const emulator = new WafEmulator(options);
    await emulator.listen(options.port ?? 0);
    return emulator;
  }

  private readonly accountId: string;
  private readonly maxAddresses: number;
  private readonly maxSets: number;
  private readonly rejectHostBits: boolean;
  private readonly server: Server;
  private readonly ipSetsById = new Map<string, StoredIpSet>();
  private readonly webAclsById = new Map<string, StoredWebAcl>();
  private readonly written = new Set<string>();
  private readonly submitted = new Set<string>();
  private readonly callLog: WafCall[] = [];
  private readonly operationCounts: Record<string, { ok: number; error: number }> = {};
  private readonly injectedCounts = { throttle: 0, lockConflict: 0, quota: 0, unavailable: 0 };
  private clock: WafClock;
  private quotaBuckets: QuotaBuckets | null = null;
  private readLagMs = 0;
  private unavailableMs = 0;
  private activeFaults: WafFaults = {};
  private lockConflictsLeft = 0;
  private throttlesLeft = 0;
  private random: () => number = seededRandom(1);
  private readonly handlers: Readonly<Record<string, Handler>>;
  private boundPort = 0;

  private constructor(options: WafEmulatorOptions) {
    this.accountId = options.accountId ?? LOCAL_ACCOUNT_ID;
    this.maxAddresses = options.maxAddressesPerSet ?? MAX_ADDRESSES_PER_SET;
    this.maxSets = options.maxIpSetsPerScope ?? 100;
    this.rejectHostBits = options.rejectHostBits ?? true;
    this.clock = options.clock ?? { now: () => Date.now() };
    this.setFaults(options.faults ?? {});
    this.setRealism(options);
    this.handlers = {
      CreateIPSet: (i, c) => this.createIpSetCall(i, c),
      GetIPSet: (i, c) => this.getIpSetCall(i, c),
      UpdateIPSet: (i, c) => this.updateIpSetCall(i, c),
      DeleteIPSet: (i, c) => this.deleteIpSetCall(i, c),
      ListIPSets: (i, c) => this.listCall(i, c, 'IPSets', this.ipSetsById),
      CreateWebACL: (i, c) => this.createWebAclCall(i, c),
      GetWebACL: (i, c) => this.getWebAclCall(i, c),
      UpdateWebACL: (i, c) => this.updateWebAclCall(i, c),
      DeleteWebACL: (i, c) => this.deleteWebAclCall(i, c),
      ListWebACLs: (i, c) => this.listCall(i, c, 'WebACLs', this.webAclsById),
    };
    this.server = createServer((req, res) => {
      this.handle(req, res).catch((err: unknown) => {
        if (!res.headersSent) {
          res.writeHead(500, { 'content-type': 'application/json' });
          res.end(JSON.stringify({ __type: 'WAFInternalErrorException', Message: String(err) }));
        } else {
          res.destroy();
        }
      });
    });
    this.server.keepAliveTimeout = 5_000;
  }

  /** `http://127.0.0.1:<port>`, the endpoint to give the SDK client. */
  get endpoint(): string {
    return `http://127.0.0.1:${this.boundPort}`;
  }

  get port(): number {
    return this.boundPort;
  }

  /** Replaces the fault settings (and re-seeds the generator). */
  setFaults(faults: WafFaults): void {
    for (const [key, rate] of [
      ['lockConflictRate', faults.lockConflictRate],
      ['throttleRate', faults.throttleRate],
    ] as const) {
      if (rate !== undefined && !(rate >= 0 && rate <= 1)) {
        throw new WafEmulatorError(`${key} must be between 0 and 1, got ${rate}`);
      }
    }
    for (const [key, n] of [
      ['lockConflictNext', faults.lockConflictNext],
      ['throttleNext', faults.throttleNext],
    ] as const) {
      if (n !== undefined && !(Number.isInteger(n) && n >= 0)) {
        throw new WafEmulatorError(`${key} must be an integer >= 0, got ${n}`);
      }
    }
    this.activeFaults = { ...faults };
    this.lockConflictsLeft = faults.lockConflictNext ?? 0;
    this.throttlesLeft = faults.throttleNext ?? 0;
    this.random = seededRandom(faults.seed ?? 1);
  }

  /**
   * Replaces what the emulator plays of AWS's own behaviour: quotas, read
   * lag, fresh-set unavailability. Absent fields turn that behaviour off.
   * The buckets start full.
   */
  setRealism(realism: WafRealism): void {
    for (const [key, ms] of [
      ['readLagMs', realism.readLagMs],
      ['unavailableAfterCreateMs', realism.unavailableAfterCreateMs],
    ] as const) {
      if (ms !== undefined && !(Number.isFinite(ms) && ms >= 0)) {
        throw new WafEmulatorError(`${key} must be a number of ms >= 0, got ${ms}`);
      }
    }
    const quotas = realism.quotas === true ? {} : realism.quotas || null;
    try {
      this.quotaBuckets = quotas === null ? null : new QuotaBuckets(quotas);
    } catch (err) {
      throw asEmulatorError(err);
    }
    this.readLagMs = realism.readLagMs ?? 0;
    this.unavailableMs = realism.unavailableAfterCreateMs ?? 0;
  }

  /** What the emulator plays of AWS's own behaviour now. */
  realism(): {
    quotas: WafQuotas | null;
    readLagMs: number;
    unavailableAfterCreateMs: number;
  } {
    return {
      quotas: this.quotaBuckets?.settings() ?? null,
      readLagMs: this.readLagMs,
      unavailableAfterCreateMs: this.unavailableMs,
    };
  }

  /** Moves the emulator onto another clock (a simulated one, in tests). */
  setClock(clock: WafClock): void {
    this.clock = clock;
  }

  /** The emulator's time, epoch ms. */
  now(): number {
    return this.clock.now();
  }

  /**
   * The most calls of `operation` that arrived within any `windowMs`
   * (inclusive of both ends minus one ms), on the emulator's clock.
   * @param outcome `ok` counts accepted calls only; `sent` every call that reached it
   */
  peakRate(operation: string, windowMs = 1000, outcome: 'ok' | 'sent' = 'sent'): number {
    const times = this.callLog
      .filter((c) => c.operation === operation && (outcome === 'sent' || c.ok))
      .map((c) => c.at)
      .sort((a, b) => a - b);
    let best = 0;
    let start = 0;
    for (let end = 0; end < times.length; end++) {
      while ((times[end] ?? 0) - (times[start] ?? 0) >= windowMs) start++;
      best = Math.max(best, end - start + 1);
    }
    return best;
  }

  /** Turns every fault off. */
  clearFaults(): void {
    this.setFaults({});
  }

  /** The fault settings in force, with the deterministic counts still to come. */
  faults(): WafFaults {
    return {
      ...this.activeFaults,
      lockConflictNext: this.lockConflictsLeft,
      throttleNext: this.throttlesLeft,
    };
  }

  /** Every API call so far, oldest first. */
  calls(): readonly WafCall[] {
    return [...this.callLog];
  }

  counters(): WafCounters {
    const operations: Record<string, { ok: number; error: number }> = {};
    for (const [op, c] of Object.entries(this.operationCounts)) operations[op] = { ...c };
    return { calls: this.callLog.length, operations, injected: { ...this.injectedCounts } };
  }

  /** Successful UpdateIPSet calls through the API on one set. */
  updateCount(ref: IpSetRef): number {
    return this.findIpSet(ref).updates;
  }

  /**
   * Every address that an accepted CreateIPSet or UpdateIPSet call put in
   * any set, in first-seen order, even if removed since. Console edits
   * ({@link setAddresses}) are not included: this is what the API callers
   * wrote.
   */
  allAddressesEverWritten(): string[] {
    return [...this.written];
  }

  /** Every address any CreateIPSet or UpdateIPSet call sent, accepted or not. */
  allAddressesEverSubmitted(): string[] {
    return [...this.submitted];
  }

  /** Copies of all IP sets, by scope, region, then name. */
  ipSets(): IpSetSnapshot[] {
    return [...this.ipSetsById.values()]
      .sort((a, b) => partitionOrder(a, b) || compare(a.name, b.name))
      .map((s) => this.snapshot(s));
  }

  /** A copy of one IP set. Throws {@link WafEmulatorError} when it does not exist. */
  ipSet(ref: IpSetRef): IpSetSnapshot {
    return this.snapshot(this.findIpSet(ref));
  }

  /**
   * Creates an IP set outside the API, the way a deployment would before
   * the pipeline runs. No faults, no call log entry, same validation.
   */
  createIpSet(input: CreateIpSetInput): IpSetSnapshot {
    const region = input.scope === 'CLOUDFRONT' ? 'us-east-1' : (input.region ?? 'us-east-1');
    try {
      const set = this.insertIpSet(
        {
          Name: input.name,
          Scope: input.scope,
          IPAddressVersion: input.ipAddressVersion,
          Addresses: [...(input.addresses ?? [])],
          Description: input.description,
        },
        { region },
        false,
      );
      return this.snapshot(set);
    } catch (err) {
      throw asEmulatorError(err);
    }
  }

  /**
   * Replaces a set's addresses as a person in the console would: same
   * validation as the API, the LockToken rotates, no call log entry, not
   * counted as an update nor as written by the API.
   * @returns the new LockToken
   */
  setAddresses(ref: IpSetRef, addresses: readonly string[]): string {
    const set = this.findIpSet(ref);
    try {
      this.checkAddresses(set.version, [...addresses]);
    } catch (err) {
      throw asEmulatorError(err);
    }
    this.commit(set, [...addresses], set.description);
    return set.lockToken;
  }

  /**
   * Updates a set the way CloudFormation does when its `AWS::WAFv2::IPSet`
   * resource changes: the addresses become the template's list (empty for
   * edgeban's stack), the LockToken rotates. Not a call through the API:
   * no quota, no call log entry.
   * @returns the new LockToken
   */
  cloudFormationUpdate(ref: IpSetRef, template: CloudFormationUpdate = {}): string {
    const set = this.findIpSet(ref);
    const addresses = [...(template.addresses ?? [])];
    try {
      this.checkAddresses(set.version, addresses);
      if (template.description !== undefined) {
        const c = new Constraints({ Description: template.description });
        c.string('Description', DESCRIPTION_RULE);
        c.done();
      }
    } catch (err) {
      throw asEmulatorError(err);
    }
    this.commit(set, addresses, template.description ?? set.description);
    return set.lockToken;
  }

  /** Forgets every resource, call, counter and fault. */
  reset(): void {
    this.ipSetsById.clear();
    this.webAclsById.clear();
    this.written.clear();
    this.submitted.clear();
    this.callLog.length = 0;
    for (const key of Object.keys(this.operationCounts)) delete this.operationCounts[key];
    this.injectedCounts.throttle = 0;
    this.injectedCounts.lockConflict = 0;
    this.injectedCounts.quota = 0;
    this.injectedCounts.unavailable = 0;
    this.clearFaults();
    // Full buckets, same settings.
    const realism = this.realism();
    this.setRealism({ ...realism, quotas: realism.quotas ?? false });
  }

  /** Stops the server and drops its connections. */
  async close(): Promise<void> {
    await closeServer(this.server);
  }

  private async listen(port: number): Promise<void> {
    this.boundPort = await listenLoopback(this.server, port);
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const body = await readBody(req);
    const path = (req.url ?? '/').split('?')[0] ?? '/';
    if (path.startsWith('/__admin/')) {
      this.handleAdmin(req.method ?? 'GET', path, body, res);
      return;
    }
    const requestId = randomUUID();
    const target = headerValue(req, 'x-amz-target');
    const operation = target?.startsWith(WAF_TARGET_PREFIX)
      ? target.slice(WAF_TARGET_PREFIX.length)
      : null;
    let input: Record<string, unknown> = {};
    try {
      if (req.method !== 'POST' || path !== '/' || operation === null) {
        throw new WafServiceError('UnknownOperationException', 'Unknown operation');
      }
      const contentType = headerValue(req, 'content-type') ?? '';
      if (!contentType.startsWith('application/x-amz-json-1.1')) {
        throw new WafServiceError('UnknownOperationException', 'Unknown operation');
      }
      const authorization = headerValue(req, 'authorization');
      if (!authorization) {
        throw new WafServiceError(
          'MissingAuthenticationTokenException',
          'Missing Authentication Token',
        );
      }
      input = parseInput(body);
      const handler = this.handlers[operation];
      if (!handler) throw new WafServiceError('UnknownOperationException', 'Unknown operation');
      this.maybeThrottle(operation);
      const region = /Credential=[^/]+\/\d{8}\/([^/]+)\//.exec(authorization)?.[1] ?? 'us-east-1';
      if (this.quotaBuckets && !this.quotaBuckets.take(region, operation, this.now())) {
        this.injectedCounts.quota++;
        // The shape a throttled caller gets (aws-waf-security-automations issue #152).
        throw new InjectedFault('ThrottlingException', 'Rate exceeded');
      }
      const output = handler(input, { region });
      this.record(operation, input, null, false);
      sendJson(res, 200, output, requestId);
    } catch (err) {
      if (!(err instanceof WafServiceError)) throw err;
      const injected = err instanceof InjectedFault;
      this.record(operation ?? target ?? '(none)', input, err.type, injected);
      const payload: Record<string, unknown> = {
        __type: err.type,
        [err.messageKey]: err.message,
        ...err.fields,
      };
      sendJson(res, err.status, payload, requestId, err.type);
    }
  }

  private handleAdmin(method: string, path: string, body: Buffer, res: ServerResponse): void {
    try {
      const input = body.length > 0 ? (JSON.parse(body.toString('utf8')) as unknown) : {};
      const object = (typeof input === 'object' && input !== null ? input : {}) as Record<
        string,
        unknown
      >;
      const [status, payload] = this.adminRoute(`${method} ${path}`, object);
      sendJson(res, status, payload);
    } catch (err) {
      sendJson(res, 400, { error: err instanceof Error ? err.message : String(err) });
    }
  }

  private adminRoute(route: string, input: Record<string, unknown>): [number, unknown] {
    switch (route) {
      case 'GET /__admin/state':
        return [
          200,
          {
            ipSets: this.ipSets(),
            webAcls: [...this.webAclsById.values()].map((w) => ({ name: w.name, arn: w.arn })),
            faults: this.faults(),
            realism: this.realism(),
            counters: this.counters(),
          },
        ];
      case 'GET /__admin/calls':
        return [200, { calls: this.calls() }];
      case 'GET /__admin/addresses':
        return [
          200,
          { written: this.allAddressesEverWritten(), submitted: this.allAddressesEverSubmitted() },
        ];
      case 'POST /__admin/faults':
        this.setFaults(input as WafFaults);
        return [200, { faults: this.faults() }];
      case 'DELETE /__admin/faults':
        this.clearFaults();
        return [200, { faults: this.faults() }];
      case 'POST /__admin/ip-sets':
        return [200, { ipSet: this.createIpSet(input as unknown as CreateIpSetInput) }];
      case 'POST /__admin/ip-sets/addresses': {
        const addresses = input.addresses;
        if (!Array.isArray(addresses) || addresses.some((a) => typeof a !== 'string')) {
          throw new WafEmulatorError('addresses must be a list of strings');
        }
        return [200, { lockToken: this.setAddresses(input as IpSetRef, addresses as string[]) }];
      }
      case 'POST /__admin/realism':
        this.setRealism(input as WafRealism);
        return [200, { realism: this.realism() }];
      case 'GET /__admin/realism':
        return [200, { realism: this.realism() }];
      case 'POST /__admin/ip-sets/cloudformation-update': {
        const addresses = input.addresses;
        if (
          addresses !== undefined &&
          (!Array.isArray(addresses) || addresses.some((a) => typeof a !== 'string'))
        ) {
          throw new WafEmulatorError('addresses must be a list of strings');
        }
        const description = input.description;
        if (description !== undefined && typeof description !== 'string') {
          throw new WafEmulatorError('description must be a string');
        }
        const lockToken = this.cloudFormationUpdate(input as IpSetRef, {
          ...(addresses === undefined ? {} : { addresses: addresses as string[] }),
          ...(description === undefined ? {} : { description }),
        });
        return [200, { lockToken }];
      }
      case 'POST /__admin/reset':
        this.reset();
        return [200, {}];
      default:
        return [404, { error: `no admin route ${route}` }];
    }
  }

  private maybeThrottle(operation: string): void {
    const only = this.activeFaults.throttleOperations;
    if (only && !only.includes(operation)) return;
    let hit = false;
    if (this.throttlesLeft > 0) {
      this.throttlesLeft--;
      hit = true;
    } else if ((this.activeFaults.throttleRate ?? 0) > 0) {
      hit = this.random() < (this.activeFaults.throttleRate ?? 0);
    }
    if (!hit) return;
    this.injectedCounts.throttle++;
    throw new InjectedFault('ThrottlingException', 'Rate exceeded');
  }

  private maybeLockConflict(set: StoredIpSet): void {
    let hit = false;
    if (this.lockConflictsLeft > 0) {
      this.lockConflictsLeft--;
      hit = true;
    } else if ((this.activeFaults.lockConflictRate ?? 0) > 0) {
      hit = this.random() < (this.activeFaults.lockConflictRate ?? 0);
    }
    if (!hit) return;
    // A concurrent writer got there first: its write rotated the token.
    this.commit(set, set.addresses, set.description);
    this.injectedCounts.lockConflict++;
    throw new InjectedFault('WAFOptimisticLockException', MESSAGES.lock);
  }

  private record(
    operation: string,
    input: Record<string, unknown>,
    error: string | null,
    injected: boolean,
  ): void {
    const text = (v: unknown): string | null => (typeof v === 'string' ? v : null);
    this.callLog.push({
      seq: this.callLog.length + 1,
      at: this.now(),
      operation,
      scope: text(input.Scope),
      name: text(input.Name),
      id: text(input.Id),
      ok: error === null,
      error,
      injected,
    });
    const counts = this.operationCounts[operation] ?? { ok: 0, error: 0 };
    if (error === null) counts.ok++;
    else counts.error++;
    this.operationCounts[operation] = counts;
  }

  // --- IP sets -----------------------------------------------------------

  private createIpSetCall(input: Record<string, unknown>, ctx: CallContext): unknown {
    const set = this.insertIpSet(input, ctx, true);
    return { Summary: summary(set, set.description) };
  }

  private insertIpSet(
    input: Record<string, unknown>,
    ctx: CallContext,
    fromApi: boolean,
  ): StoredIpSet {
    const c = new Constraints(input);
    const name = c.string('Name', NAME_RULE);
    const scope = c.string('Scope', SCOPE_RULE) as WafScope | undefined;
    const version = c.string('IPAddressVersion', { required: true, values: VERSIONS }) as
      | IpAddressVersion
      | undefined;
    const addresses = c.strings('Addresses', ADDRESS_RULE, true);
    const description = c.string('Description', DESCRIPTION_RULE);
    c.done();
    if (!name || !scope || !version || !addresses) throw serialization('missing members');
    if (fromApi) for (const a of addresses) this.submitted.add(a);
    const region = this.checkScope(scope, ctx.region);
    const siblings = [...this.ipSetsById.values()].filter(
      (s) => s.scope === scope && s.region === region,
    );
    if (siblings.some((s) => s.name === name)) {
      throw new WafServiceError('WAFDuplicateItemException', MESSAGES.duplicate);
    }
    if (siblings.length >= this.maxSets) {
      throw new WafServiceError('WAFLimitsExceededException', MESSAGES.limits);
    }
    this.checkAddresses(version, addresses);
    const id = randomUUID();
    const lockToken = randomUUID();
    const at = this.now();
    const set: StoredIpSet = {
      name,
      id,
      arn: this.arn(scope, region, 'ipset', name, id),
      scope,
      region,
      version,
      description,
      addresses: [...addresses],
      lockToken,
      updates: 0,
      createdAt: at,
      history: [{ at, addresses: [...addresses], lockToken, description }],
    };
    this.ipSetsById.set(id, set);
    if (fromApi) for (const a of addresses) this.written.add(a);
    return set;
  }

  private getIpSetCall(input: Record<string, unknown>, ctx: CallContext): unknown {
    const c = new Constraints(input);
    const name = c.string('Name', NAME_RULE);
    const scope = c.string('Scope', SCOPE_RULE) as WafScope | undefined;
    const id = c.string('Id', ID_RULE);
    c.done();
    const set = this.usable(this.lookup(this.ipSetsById, scope, name, id, ctx));
    const seen = this.visible(set);
    return {
      IPSet: {
        Name: set.name,
        Id: set.id,
        ARN: set.arn,
        Description: seen.description,
        IPAddressVersion: set.version,
        Addresses: [...seen.addresses],
      },
      LockToken: seen.lockToken,
    };
  }

  private updateIpSetCall(input: Record<string, unknown>, ctx: CallContext): unknown {
    const c = new Constraints(input);
    const name = c.string('Name', NAME_RULE);
    const scope = c.string('Scope', SCOPE_RULE) as WafScope | undefined;
    const id = c.string('Id', ID_RULE);
    const addresses = c.strings('Addresses', ADDRESS_RULE, true);
    const lockToken = c.string('LockToken', LOCK_RULE);
    const description = c.string('Description', DESCRIPTION_RULE);
    c.done();
    if (!addresses) throw serialization('missing members');
    for (const a of addresses) this.submitted.add(a);
    const set = this.usable(this.lookup(this.ipSetsById, scope, name, id, ctx));
    this.checkAddresses(set.version, addresses);
    if (lockToken !== set.lockToken) {
      throw new WafServiceError('WAFOptimisticLockException', MESSAGES.lock);
    }
    this.maybeLockConflict(set);
    // UpdateIPSet replaces every mutable member: an absent Description clears it.
    this.commit(set, [...addresses], description);
    set.updates++;
    for (const a of addresses) this.written.add(a);
    return { NextLockToken: set.lockToken };
  }

  private deleteIpSetCall(input: Record<string, unknown>, ctx: CallContext): unknown {
    const c = new Constraints(input);
    const name = c.string('Name', NAME_RULE);
    const scope = c.string('Scope', SCOPE_RULE) as WafScope | undefined;
    const id = c.string('Id', ID_RULE);
    const lockToken = c.string('LockToken', LOCK_RULE);
    c.done();
    const set = this.usable(this.lookup(this.ipSetsById, scope, name, id, ctx));
    if (lockToken !== set.lockToken) {
      throw new WafServiceError('WAFOptimisticLockException', MESSAGES.lock);
    }
    for (const acl of this.webAclsById.values()) {
      if (referencedArns(acl.spec).includes(set.arn)) {
        throw new WafServiceError('WAFAssociatedItemException', MESSAGES.associated);
      }
    }
    this.ipSetsById.delete(set.id);
    return {};
  }

  private checkAddresses(version: IpAddressVersion, addresses: readonly string[]): void {
    if (addresses.length > this.maxAddresses) {
      throw new WafServiceError('WAFLimitsExceededException', MESSAGES.limits);
    }
    for (const address of addresses) {
      const problem: CidrProblem | null = cidrProblem(address, version);
      if (problem === null || (problem === 'host-bits' && !this.rejectHostBits)) continue;
      throw invalidParameter('IP_ADDRESS', address, MESSAGES.badFormat);
    }
  }

  // --- Web ACLs (enough for a rule that references the IP sets) ----------

  private createWebAclCall(input: Record<string, unknown>, ctx: CallContext): unknown {
    const c = new Constraints(input);
    const name = c.string('Name', NAME_RULE);
    const scope = c.string('Scope', SCOPE_RULE) as WafScope | undefined;
    c.object('DefaultAction', true);
    c.object('VisibilityConfig', true);
    c.string('Description', DESCRIPTION_RULE);
    c.done();
    if (!name || !scope) throw serialization('missing members');
    const region = this.checkScope(scope, ctx.region);
    const siblings = [...this.webAclsById.values()].filter(
      (w) => w.scope === scope && w.region === region,
    );
    if (siblings.some((w) => w.name === name)) {
      throw new WafServiceError('WAFDuplicateItemException', MESSAGES.duplicate);
    }
    const spec = webAclSpec(input);
    this.checkReferences(spec, scope, region);
    const id = randomUUID();
    const acl: StoredWebAcl = {
      name,
      id,
      arn: this.arn(scope, region, 'webacl', name, id),
      scope,
      region,
      lockToken: randomUUID(),
      spec,
    };
    this.webAclsById.set(id, acl);
    return { Summary: summary(acl, spec.Description as string | undefined) };
  }

  private getWebAclCall(input: Record<string, unknown>, ctx: CallContext): unknown {
    const c = new Constraints(input);
    const arn = c.string('ARN', { min: 20, max: 2048 });
    let acl: StoredWebAcl;
    if (arn !== undefined) {
      c.done();
      const found = [...this.webAclsById.values()].find((w) => w.arn === arn);
      if (!found) throw nonexistent();
      acl = found;
    } else {
      const name = c.string('Name', NAME_RULE);
      const scope = c.string('Scope', SCOPE_RULE) as WafScope | undefined;
      const id = c.string('Id', ID_RULE);
      c.done();
      acl = this.lookup(this.webAclsById, scope, name, id, ctx);
    }
    const rules = Array.isArray(acl.spec.Rules) ? acl.spec.Rules : [];
    return {
      WebACL: {
        ...acl.spec,
        Name: acl.name,
        Id: acl.id,
        ARN: acl.arn,
        // Real capacity is in WCUs; an IP-set rule costs 1, which is all this models.
        Capacity: rules.length,
        ManagedByFirewallManager: false,
        RetrofittedByFirewallManager: false,
        LabelNamespace: `awswaf:${this.accountId}:webacl:${acl.name}:`,
      },
      LockToken: acl.lockToken,
    };
  }

  private updateWebAclCall(input: Record<string, unknown>, ctx: CallContext): unknown {
    const c = new Constraints(input);
    const name = c.string('Name', NAME_RULE);
    const scope = c.string('Scope', SCOPE_RULE) as WafScope | undefined;
    const id = c.string('Id', ID_RULE);
    c.object('DefaultAction', true);
    c.object('VisibilityConfig', true);
    const lockToken = c.string('LockToken', LOCK_RULE);
    c.string('Description', DESCRIPTION_RULE);
    c.done();
    const acl = this.lookup(this.webAclsById, scope, name, id, ctx);
    if (lockToken !== acl.lockToken) {
      throw new WafServiceError('WAFOptimisticLockException', MESSAGES.lock);
    }
    const spec = webAclSpec(input);
    this.checkReferences(spec, acl.scope, acl.region);
    acl.spec = spec;
    acl.lockToken = randomUUID();
    return { NextLockToken: acl.lockToken };
  }

  private deleteWebAclCall(input: Record<string, unknown>, ctx: CallContext): unknown {
    const c = new Constraints(input);
    const name = c.string('Name', NAME_RULE);
    const scope = c.string('Scope', SCOPE_RULE) as WafScope | undefined;
    const id = c.string('Id', ID_RULE);
    const lockToken = c.string('LockToken', LOCK_RULE);
    c.done();
    const acl = this.lookup(this.webAclsById, scope, name, id, ctx);
    if (lockToken !== acl.lockToken) {
      throw new WafServiceError('WAFOptimisticLockException', MESSAGES.lock);
    }
    this.webAclsById.delete(acl.id);
    return {};
  }

  private checkReferences(spec: Record<string, unknown>, scope: WafScope, region: string): void {
    for (const arn of referencedArns(spec)) {
      const set = [...this.ipSetsById.values()].find((s) => s.arn === arn);
      if (!set || set.scope !== scope || set.region !== region) throw nonexistent();
    }
  }

  // --- shared ------------------------------------------------------------

  private listCall(
    input: Record<string, unknown>,
    ctx: CallContext,
    member: 'IPSets' | 'WebACLs',
    store: ReadonlyMap<string, StoredIpSet | StoredWebAcl>,
  ): unknown {
    const c = new Constraints(input);
    const scope = c.string('Scope', SCOPE_RULE) as WafScope | undefined;
    const marker = c.string('NextMarker', { min: 1, max: 256, pattern: NEXT_MARKER });
    const limit = c.integer('Limit', 1, 100) ?? 100;
    c.done();
    if (!scope) throw serialization('missing members');
    const region = this.checkScope(scope, ctx.region);
    const all = [...store.values()]
      .filter((r) => r.scope === scope && r.region === region)
      .sort((a, b) => compare(a.name, b.name));
    const start = marker === undefined ? 0 : all.findIndex((r) => r.name >= marker);
    const page = start < 0 ? [] : all.slice(start, start + limit);
    const next = start < 0 ? undefined : all[start + limit];
    return {
      NextMarker: next?.name,
      [member]: page.map((r) => {
        if ('spec' in r) return summary(r, r.spec.Description as string | undefined);
        const seen = this.visible(r);
        return { ...summary(r, seen.description), LockToken: seen.lockToken };
      }),
    };
  }

  /** Makes `addresses` a set's current state under a new LockToken, kept for lagging reads. */
  private commit(set: StoredIpSet, addresses: string[], description: string | undefined): void {
    set.addresses = addresses;
    set.description = description;
    set.lockToken = randomUUID();
    const at = this.now();
    set.history.push({ at, addresses: [...addresses], lockToken: set.lockToken, description });
    // Keep the newest state a lagging read can still see, and everything after it.
    const horizon = at - this.readLagMs;
    let keepFrom = 0;
    for (let i = 0; i < set.history.length; i++) {
      if ((set.history[i]?.at ?? 0) <= horizon) keepFrom = i;
    }
    if (keepFrom > 0) set.history = set.history.slice(keepFrom);
  }

  /** What a read sees: the newest state at least `readLagMs` old (the oldest kept, if none). */
  private visible(set: StoredIpSet): IpSetVersion {
    const current: IpSetVersion = {
      at: this.now(),
      addresses: set.addresses,
      lockToken: set.lockToken,
      description: set.description,
    };
    if (this.readLagMs <= 0) return current;
    const horizon = this.now() - this.readLagMs;
    let seen = set.history[0] ?? current;
    for (const v of set.history) if (v.at <= horizon) seen = v;
    return seen;
  }

  /** A set created moments ago is not usable yet. */
  private usable(set: StoredIpSet): StoredIpSet {
    if (this.unavailableMs > 0 && this.now() - set.createdAt < this.unavailableMs) {
      this.injectedCounts.unavailable++;
      throw new InjectedFault('WAFUnavailableEntityException', MESSAGES.unavailable);
    }
    return set;
  }

  private lookup<T extends Partitioned>(
    store: ReadonlyMap<string, T>,
    scope: WafScope | undefined,
    name: string | undefined,
    id: string | undefined,
    ctx: CallContext,
  ): T {
    if (!scope || !name || !id) throw serialization('missing members');
    const region = this.checkScope(scope, ctx.region);
    const found = store.get(id);
    if (!found || found.scope !== scope || found.region !== region || found.name !== name) {
      throw nonexistent();
    }
    return found;
  }

  /** CLOUDFRONT resources live in us-east-1 only; returns the partition's region. */
  private checkScope(scope: WafScope, region: string): string {
    if (scope === 'CLOUDFRONT' && region !== 'us-east-1') {
      throw invalidParameter('SCOPE_VALUE', scope, MESSAGES.badScope);
    }
    return region;
  }

  private arn(scope: WafScope, region: string, kind: string, name: string, id: string): string {
    const where = scope === 'CLOUDFRONT' ? 'global' : 'regional';
    return `arn:aws:wafv2:${region}:${this.accountId}:${where}/${kind}/${name}/${id}`;
  }

  private findIpSet(ref: IpSetRef): StoredIpSet {
    const matches = [...this.ipSetsById.values()].filter(
      (s) =>
        (ref.arn === undefined || s.arn === ref.arn) &&
        (ref.id === undefined || s.id === ref.id) &&
        (ref.name === undefined || s.name === ref.name) &&
        (ref.scope === undefined || s.scope === ref.scope) &&
        (ref.region === undefined || s.region === ref.region),
    );
    if (ref.arn === undefined && ref.id === undefined && ref.name === undefined) {
      throw new WafEmulatorError('an IP set reference needs an arn, an id or a name');
    }
    const [first, second] = matches;
    if (!first) throw new WafEmulatorError(`no IP set matches ${JSON.stringify(ref)}`);
    if (second) throw new WafEmulatorError(`more than one IP set matches ${JSON.stringify(ref)}`);
    return first;
  }

  private snapshot(set: StoredIpSet): IpSetSnapshot {
    return {
      name: set.name,
      id: set.id,
      arn: set.arn,
      scope: set.scope,
      region: set.region,
      ipAddressVersion: set.version,
      description: set.description ?? null,
      addresses: [...set.addresses],
      lockToken: set.lockToken,
      updates: set.updates,
    };
  }
}

function summary(r: Partitioned, description: string | undefined): Record<string, unknown> {
  return { Name: r.name, Id: r.id, Description: description, LockToken: r.lockToken, ARN: r.arn };
}

/** The mutable members of a web ACL write: everything but identity and tags. */
function webAclSpec(input: Record<string, unknown>): Record<string, unknown> {
  const { Name: _n, Scope: _s, Id: _i, LockToken: _l, Tags: _t, ...spec } = input;
  return structuredClone(spec);
}

/** ARNs of every `IPSetReferenceStatement` nested anywhere in a web ACL. */
function referencedArns(spec: unknown): string[] {
  const out: string[] = [];
  const walk = (node: unknown): void => {
    if (Array.isArray(node)) {
      for (const item of node) walk(item);
    } else if (typeof node === 'object' && node !== null) {
      for (const [key, value] of Object.entries(node)) {
        if (key === 'IPSetReferenceStatement' && typeof value === 'object' && value !== null) {
          const arn = (value as Record<string, unknown>).ARN;
          if (typeof arn === 'string') out.push(arn);
        }
        walk(value);
      }
    }
  };
  walk(spec);
  return out;
}

function partitionOrder(a: Partitioned, b: Partitioned): number {
  return compare(a.scope, b.scope) || compare(a.region, b.region);
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function asEmulatorError(err: unknown): Error {
  if (err instanceof WafServiceError) return new WafEmulatorError(`${err.type}: ${err.message}`);
  return err instanceof Error ? err : new WafEmulatorError(String(err));
}
