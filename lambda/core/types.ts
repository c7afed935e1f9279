/**
 * Shared types of the edgeban engine. Pure data: no AWS SDK, no I/O.
 *
 * Times inside the engine are integers: `minute` values are epoch minutes
 * (UTC, floored: `Math.floor(epochMs / 60000)`), other instants are epoch
 * seconds. Durations in the config are whole seconds.
 */

/** The IP-set scope. */
export type Scope = 'CLOUDFRONT' | 'REGIONAL';

/** What the pipeline does with decisions. */
export type Mode = 'block' | 'count' | 'observe';

/** A rule of the `edgeban` config, validated and with defaults resolved. */
export interface Rule {
  readonly name: string;
  readonly threshold: number;
  /** Window length in whole minutes (1 to 1440). */
  readonly windowMinutes: number;
  /** Upper-case HTTP methods, or undefined for any. */
  readonly methods?: readonly string[];
  /** Case-sensitive path prefix. */
  readonly path?: string;
  /** Lower-case host: exact, or `*.suffix` for strict subdomains. */
  readonly host?: string;
  /** Status codes and classes: integers, or `Nxx` strings kept as written. */
  readonly status?: readonly (number | string)[];
  readonly ipv4Prefix: number;
  readonly ipv6Prefix: number;
  /** Block duration in seconds; undefined means `block.duration`. */
  readonly durationSeconds?: number;
}

/** Block escalation settings, durations in seconds. */
export interface BlockConfig {
  readonly durationSeconds: number;
  readonly factor: number;
  readonly maxDurationSeconds: number;
  readonly forgetAfterSeconds: number;
}

/**
 * CloudFront access log delivery: standard logging (legacy), which rewrites
 * the distribution's config, or standard logging v2 (CloudWatch vended
 * logs) in W3C or JSON.
 */
export type CloudFrontDelivery = 'legacy' | 'v2-w3c' | 'v2-json';

/** Distribution features whose permissions a full `UpdateDistribution` rewrite needs. */
export type DistributionFeature = 'lambda-edge' | 'vpc-origins';

/** The whole `edgeban` config, validated, defaults resolved. */
export interface EdgebanConfig {
  readonly scope: Scope;
  readonly logs: {
    readonly bucketName?: string;
    readonly prefix: string;
    readonly enableOn: readonly string[];
    /** How the CloudFront distributions of `enableOn` deliver their logs. */
    readonly cloudfrontDelivery: CloudFrontDelivery;
    /** What the distributions of `enableOn` use that a full config rewrite must be allowed to keep. */
    readonly distributionFeatures: readonly DistributionFeature[];
    /**
     * IAM principal ARNs that may put objects under the log prefix of a
     * log bucket edgeban made, besides the log delivery services.
     */
    readonly extraWriters: readonly string[];
  };
  readonly attach: {
    readonly distributionIds: readonly string[];
    readonly albArns: readonly string[];
    readonly mode: 'new-web-acl' | 'rule-group' | 'none';
    readonly replaceExistingWebAcl: boolean;
  };
  readonly rules: readonly Rule[];
  readonly block: BlockConfig;
  /** Canonical CIDRs (`a.b.c.d/n`, `x::/n`), addresses written as /32 or /128. */
  readonly allowlist: readonly string[];
  readonly mode: Mode;
  readonly response: 403 | 429;
  readonly maxNewBlocksPerRun: number;
  readonly minPrefix: { readonly ipv4: number; readonly ipv6: number };
  readonly ipSets: { readonly ipv4: number; readonly ipv6: number };
  readonly horizonSeconds: number;
  readonly alarms: {
    readonly email?: string;
    readonly topicArn?: string;
    readonly lagSeconds: number;
  };
  /** CloudFront real-time logs (DESIGN section 8). */
  readonly realtime: RealtimeConfig;
  /**
   * Names a deployment: stacks `Edgeban-<stage>`, `EdgebanWaf-<stage>`, ...
   * and every resource in them. Absent, the names are the unstaged ones.
   */
  readonly stage?: string;
}

/**
 * The distributions counted from their real-time logs (a Kinesis data
 * stream) instead of standard logs. Every other distribution is counted
 * from its standard logs: a distribution has exactly one source.
 */
export interface RealtimeConfig {
  /** Distributions whose cache behaviors get edgeban's real-time log config. */
  readonly distributionIds: readonly string[];
  /** Always 100: exact counts need every request. */
  readonly samplingRate: 100;
  /** Provisioned shards of the stream; undefined means on-demand capacity. */
  readonly shards?: number;
  /** Replace a real-time log config that edgeban did not attach. */
  readonly replaceExistingConfig: boolean;
}

/** Log formats the engine reads. */
export type LogFormat = 'cloudfront' | 'cloudfront-json' | 'alb' | 'elb';

/**
 * One parsed request, as the engine sees it. Parsers fill a reused
 * instance; fields a rule does not need may be left undefined when the
 * caller asks only for some (see {@link FieldNeeds}).
 */
export interface ParsedRequest {
  /**
   * Canonical client address (IPv4 dotted quad, or RFC 5952 IPv6). Empty
   * for an IPv4 client when the caller asked for {@link FieldNeeds.addressValue}.
   */
  ip: string;
  /**
   * An IPv4 client's address as an unsigned 32-bit value (its canonical
   * text is `formatIpv4(ipv4)`), else -1. Every parser sets it; a request
   * built by hand may leave it out, and is then read by `ip` alone.
   */
  ipv4?: number;
  /** Epoch minute (UTC, floored). */
  minute: number;
  /** HTTP method as logged, or null when the log has none (`- - -`, TCP). */
  method: string | null;
  /** URI path without query, or null. */
  path: string | null;
  /**
   * The path's raw bytes (`pathBuf` from `pathStart` to `pathEnd`) when the
   * parser left `path` undecoded for a byte test ({@link FieldNeeds.pathBytes});
   * null or absent otherwise. Valid only during the callback.
   */
  pathBuf?: Buffer | null;
  pathStart?: number;
  pathEnd?: number;
  /** Lower-case host without port, or null. */
  host: string | null;
  /** Status the client got, or null for `-`. */
  status: number | null;
}

/**
 * A blank request for a parser to fill and reuse. Every field, the path's
 * byte range included, is present from the start, so the object keeps one
 * shape on the hot path.
 */
export function blankRequest(): ParsedRequest {
  return {
    ip: '',
    ipv4: -1,
    minute: 0,
    method: null,
    path: null,
    pathBuf: undefined,
    pathStart: undefined,
    pathEnd: undefined,
    host: null,
    status: null,
  };
}

/** Which optional request fields the active rules need decoded. */
export interface FieldNeeds {
  readonly method: boolean;
  readonly path: boolean;
  /**
   * The path is only prefix-tested with byte-exact prefixes, so a parser
   * may hand out its bytes (`pathBuf`) instead of decoding `path`. Parsers
   * that ignore it decode `path` as usual.
   */
  readonly pathBytes?: boolean;
  /**
   * The caller reads `ipv4` for IPv4 clients (the engine does), so a parser
   * that sets it may leave `ip` empty for them: no address string per line.
   */
  readonly addressValue?: boolean;
  readonly host: boolean;
  readonly status: boolean;
}

/** What scanning one file produced, besides the requests it emitted. */
export interface FileScan {
  /** The detected format, or null when the file was skipped. */
  format: LogFormat | null;
  /** Requests plus rejected lines. */
  lines: number;
  requests: number;
  rejected: number;
  /** 1-based line number and reason of the first rejected line. */
  firstRejected: { line: number; reason: string } | null;
  /** Set when the file is not an access log we read. */
  skipped: string | null;
  /** Set when the byte stream broke; lines before the break still count. */
  damaged: string | null;
  /** Earliest and latest request minute seen, or null. */
  minMinute: number | null;
  maxMinute: number | null;
}

/** One block of a (key, rule) pair, as the simulation or the store holds it. */
export interface BlockRecord {
  /** Offence number n (1-based). */
  offence: number;
  /** Epoch seconds. */
  start: number;
  /** Epoch seconds; may be cut short by an unblock. */
  until: number;
}

/** A decision for one (key, rule) pair that fired. */
export interface Decision {
  key: string;
  rule: string;
  /** Index of the rule in config order. */
  ruleIndex: number;
  peak: number;
  /** Epoch seconds: start of the first minute it fired. */
  firstExceeded: number;
  /** Epoch seconds: end of its latest block. */
  blockedUntil: number;
  /** The latest block's offence number. */
  offences: number;
  /** Every block, oldest first. */
  blocks: BlockRecord[];
}

/**
 * Parses one line of a detected format. Implementations are built once per
 * file (after detection) and called on the hot path: they scan the bytes of
 * `buf` between `start` and `end` (no line terminator, no CR) and decode
 * only the fields the rules need.
 */
export interface LineParser {
  /**
   * Fills `out` and returns null, or returns a one-line rejection reason
   * (`invalid client address`, `truncated row`, ...). Never throws.
   * `out.ip` must be the canonical address (see `lambda/core/ip.ts`).
   */
  parse(buf: Buffer, start: number, end: number, out: ParsedRequest): string | null;
}
