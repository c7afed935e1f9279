/**
 * Read-modify-write of a CloudFront distribution's config (the legacy
 * access logging that feeds edgeban; the web ACL has calls of its own, see
 * `web-acl.ts`), and the retries both share. CloudFront
 * has no partial update: GetDistributionConfig returns the whole config and
 * its ETag, UpdateDistribution takes the whole config back with `IfMatch`.
 * When someone else updates the distribution in between, CloudFront answers
 * `PreconditionFailed` and the change is re-applied to a fresh read.
 */
import {
  type CloudFrontClient,
  type DistributionConfig,
  GetDistributionConfigCommand,
  type LoggingConfig,
  UpdateDistributionCommand,
} from '@aws-sdk/client-cloudfront';

/** Base error of the attachment handler: one line, shown in the CloudFormation event. */
export class AttachError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'AttachError';
  }
}

/** A distribution holds a web ACL that edgeban did not set and may not replace. */
export class ForeignWebAclError extends AttachError {
  constructor(distributionId: string, webAclId: string) {
    super(
      `distribution ${distributionId} has web ACL ${webAclId} that edgeban did not set; ` +
        'set attach.replaceExistingWebAcl to true to replace it',
    );
    this.name = 'ForeignWebAclError';
  }
}

/** Every attempt of a read-modify-write lost the race to another update. */
export class ConcurrentUpdateError extends AttachError {
  constructor(distributionId: string, attempts: number) {
    super(
      `distribution ${distributionId} changed under every one of ${attempts} updates (ETag mismatch); deploy again`,
    );
    this.name = 'ConcurrentUpdateError';
  }
}

/**
 * CloudFront kept answering `InvalidWebACLId` for a web ACL. Just after the
 * web ACL is created that is WAF's propagation delay, which ends; when it
 * does not end, the web ACL does not exist or the caller may not read it.
 */
export class UnreadableWebAclError extends AttachError {
  constructor(distributionId: string, webAclArn: string, tries: number, waitedMs: number) {
    super(
      `CloudFront could not read web ACL ${webAclArn} for distribution ${distributionId} ` +
        `in ${tries} tries over ${Math.round(waitedMs / 1000)}s (InvalidWebACLId): the web ACL ` +
        'does not exist, or the attachment role lacks wafv2:GetWebACL on it',
    );
    this.name = 'UnreadableWebAclError';
  }
}

/** How a read-modify-write retries. */
export interface RetryOptions {
  /**
   * Updates tried before giving up on ETag mismatches.
   * @default 5
   */
  readonly attempts?: number;
  /**
   * Tries before giving up on a web ACL CloudFront cannot read yet
   * (`InvalidWebACLId`); waits double from 1 s up to 20 s between them.
   * @default 10 (about 55 to 110 s of waiting in all)
   */
  readonly webAclAttempts?: number;
  /**
   * Waits between attempts (tests pass a no-op).
   * @default - a timer
   */
  readonly sleep?: (ms: number) => Promise<void>;
  /** @default Math.random */
  readonly random?: () => number;
}

/** What a change did to the distribution. */
export type ChangeResult = 'updated' | 'unchanged' | 'missing';

const DEFAULT_ATTEMPTS = 5;
const BASE_DELAY_MS = 250;
const DEFAULT_WEB_ACL_ATTEMPTS = 10;
const WEB_ACL_BASE_DELAY_MS = 1000;
const WEB_ACL_MAX_DELAY_MS = 20_000;

function defaultSleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

export function errorName(err: unknown): string {
  return typeof err === 'object' && err !== null && 'name' in err ? String(err.name) : '';
}

/** True for CloudFront's "no such distribution" answer. */
export function isMissingDistribution(err: unknown): boolean {
  return errorName(err) === 'NoSuchDistribution';
}

/**
 * True for CloudFront's `InvalidWebACLId` ("Unable to verify read
 * permissions on Web ACL. Please retry the request."): a web ACL created
 * moments ago is not visible to CloudFront yet. WAF documents the delay:
 * "After you create a web ACL, if you try to associate it with a resource,
 * you might get an exception indicating that the web ACL is unavailable"
 * (https://docs.aws.amazon.com/waf/latest/APIReference/API_AssociateWebACL.html,
 * "Temporary inconsistencies during updates"); the CloudFront message is
 * https://github.com/aws/aws-sdk-java/issues/2901. CloudFront gives the same
 * answer when the caller lacks wafv2:GetWebACL or the web ACL does not
 * exist, so retries of it must end.
 */
export function isUnreadableWebAcl(err: unknown): boolean {
  return errorName(err) === 'InvalidWebACLId';
}

/**
 * The retry budget of one change to one distribution: ETag mismatches
 * (full jitter, a few short waits) and a web ACL CloudFront cannot read
 * yet (doubling waits with jitter, bounded), counted apart.
 */
export class Retries {
  private conflicts = 0;
  private unreadable = 0;
  private waitedMs = 0;
  private readonly attempts: number;
  private readonly webAclAttempts: number;
  private readonly sleep: (ms: number) => Promise<void>;
  private readonly random: () => number;

  constructor(
    private readonly distributionId: string,
    options: RetryOptions,
  ) {
    this.attempts = options.attempts ?? DEFAULT_ATTEMPTS;
    this.webAclAttempts = options.webAclAttempts ?? DEFAULT_WEB_ACL_ATTEMPTS;
    this.sleep = options.sleep ?? defaultSleep;
    this.random = options.random ?? Math.random;
  }

  /**
   * Waits before the next try after `err`, or throws: `err` itself when it
   * is not retryable, a one-line error when the tries are spent.
   * @param webAclArn the web ACL the failed call gave CloudFront
   */
  async after(err: unknown, webAclArn: string): Promise<void> {
    if (errorName(err) === 'PreconditionFailed') {
      this.conflicts++;
      if (this.conflicts >= this.attempts) {
        throw new ConcurrentUpdateError(this.distributionId, this.attempts);
      }
      // Full jitter: two resources updating one distribution in the same
      // deployment must not retry in lockstep.
      await this.wait(Math.floor(this.random() * BASE_DELAY_MS * 2 ** (this.conflicts - 1)));
      return;
    }
    if (isUnreadableWebAcl(err)) {
      this.unreadable++;
      if (this.unreadable >= this.webAclAttempts) {
        throw new UnreadableWebAclError(
          this.distributionId,
          webAclArn,
          this.unreadable,
          this.waitedMs,
        );
      }
      const cap = Math.min(
        WEB_ACL_MAX_DELAY_MS,
        WEB_ACL_BASE_DELAY_MS * 2 ** (this.unreadable - 1),
      );
      await this.wait(Math.floor(cap / 2 + (this.random() * cap) / 2));
      return;
    }
    throw err;
  }

  private async wait(ms: number): Promise<void> {
    this.waitedMs += ms;
    await this.sleep(ms);
  }
}

/** A distribution's config as read, with the ETag to write it back. */
export interface ReadConfig {
  readonly config: DistributionConfig;
  readonly etag: string;
}

/**
 * GetDistributionConfig, or null when the distribution does not exist and
 * `ifMissing` is `ok`.
 */
export async function readConfig(
  cloudfront: CloudFrontClient,
  distributionId: string,
  ifMissing: 'ok' | 'throw' = 'throw',
): Promise<ReadConfig | null> {
  let read: { DistributionConfig?: DistributionConfig; ETag?: string };
  try {
    read = await cloudfront.send(new GetDistributionConfigCommand({ Id: distributionId }));
  } catch (err) {
    if (isMissingDistribution(err) && ifMissing === 'ok') return null;
    throw err;
  }
  if (read.DistributionConfig === undefined || read.ETag === undefined) {
    throw new AttachError(
      `distribution ${distributionId}: GetDistributionConfig returned no config`,
    );
  }
  return { config: read.DistributionConfig, etag: read.ETag };
}

/**
 * Applies `change` to the current config of a distribution and writes it
 * back with the ETag it was read with. `change` edits the config in place
 * and returns whether it changed anything; it sees a fresh config on every
 * attempt, and may throw to refuse. UpdateDistribution re-checks the web
 * ACL the config names, so `InvalidWebACLId` is retried here too.
 * @returns `unchanged` when `change` had nothing to do, `missing` when the
 *   distribution does not exist and `ifMissing` is `ok`
 * @throws ConcurrentUpdateError after `attempts` ETag mismatches
 * @throws UnreadableWebAclError after `webAclAttempts` InvalidWebACLId answers
 */
export async function changeDistribution(
  cloudfront: CloudFrontClient,
  distributionId: string,
  change: (config: DistributionConfig) => boolean,
  options: RetryOptions & { readonly ifMissing?: 'ok' | 'throw' } = {},
): Promise<ChangeResult> {
  const retries = new Retries(distributionId, options);
  for (;;) {
    const read = await readConfig(cloudfront, distributionId, options.ifMissing);
    if (read === null) return 'missing';
    // `change` edits a copy: the read stays as CloudFront sent it.
    const config = structuredClone(read.config);
    if (!change(config)) return 'unchanged';
    try {
      await cloudfront.send(
        new UpdateDistributionCommand({
          Id: distributionId,
          IfMatch: read.etag,
          DistributionConfig: config,
        }),
      );
      return 'updated';
    } catch (err) {
      await retries.after(err, webAclOf(config));
    }
  }
}

/** The web ACL a distribution holds, as CloudFront stores it (a WAFv2 ARN), or ''. */
export function webAclOf(config: DistributionConfig): string {
  return config.WebACLId ?? '';
}

/** The logging fields edgeban sets and restores. */
export interface Logging {
  readonly enabled: boolean;
  readonly bucket: string;
  readonly prefix: string;
  readonly includeCookies: boolean;
}

/** The distribution's legacy logging, with CloudFront's absent fields as off / empty. */
export function loggingOf(config: DistributionConfig): Logging {
  const l: LoggingConfig = config.Logging ?? {};
  return {
    enabled: l.Enabled === true,
    bucket: l.Bucket ?? '',
    prefix: l.Prefix ?? '',
    includeCookies: l.IncludeCookies === true,
  };
}

/** Writes `logging` into `config`; returns whether anything changed. */
export function setLogging(config: DistributionConfig, logging: Logging): boolean {
  const now = loggingOf(config);
  if (
    now.enabled === logging.enabled &&
    now.bucket === logging.bucket &&
    now.prefix === logging.prefix &&
    now.includeCookies === logging.includeCookies
  ) {
    return false;
  }
  config.Logging = {
    Enabled: logging.enabled,
    IncludeCookies: logging.includeCookies,
    Bucket: logging.bucket,
    Prefix: logging.prefix,
  };
  return true;
}
