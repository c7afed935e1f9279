/**
 * Read-modify-write of a CloudFront distribution's config: the web ACL that
 * protects it and the legacy access logging that feeds edgeban. CloudFront
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

/** How a read-modify-write retries. */
export interface RetryOptions {
  /**
   * Updates tried before giving up.
   * @default 5
   */
  readonly attempts?: number;
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

function defaultSleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function errorName(err: unknown): string {
  return typeof err === 'object' && err !== null && 'name' in err ? String(err.name) : '';
}

/** True for CloudFront's "no such distribution" answer. */
export function isMissingDistribution(err: unknown): boolean {
  return errorName(err) === 'NoSuchDistribution';
}

/**
 * Applies `change` to the current config of a distribution and writes it
 * back with the ETag it was read with. `change` edits the config in place
 * and returns whether it changed anything; it sees a fresh config on every
 * attempt, and may throw to refuse.
 * @returns `unchanged` when `change` had nothing to do, `missing` when the
 *   distribution does not exist and `ifMissing` is `ok`
 * @throws ConcurrentUpdateError after `attempts` ETag mismatches in a row
 */
export async function changeDistribution(
  cloudfront: CloudFrontClient,
  distributionId: string,
  change: (config: DistributionConfig) => boolean,
  options: RetryOptions & { readonly ifMissing?: 'ok' | 'throw' } = {},
): Promise<ChangeResult> {
  const attempts = options.attempts ?? DEFAULT_ATTEMPTS;
  const sleep = options.sleep ?? defaultSleep;
  const random = options.random ?? Math.random;
  for (let attempt = 0; attempt < attempts; attempt++) {
    let read: { DistributionConfig?: DistributionConfig; ETag?: string };
    try {
      read = await cloudfront.send(new GetDistributionConfigCommand({ Id: distributionId }));
    } catch (err) {
      if (isMissingDistribution(err) && options.ifMissing === 'ok') return 'missing';
      throw err;
    }
    if (read.DistributionConfig === undefined || read.ETag === undefined) {
      throw new AttachError(
        `distribution ${distributionId}: GetDistributionConfig returned no config`,
      );
    }
    // `change` edits a copy: the read stays as CloudFront sent it.
    const config = structuredClone(read.DistributionConfig);
    if (!change(config)) return 'unchanged';
    try {
      await cloudfront.send(
        new UpdateDistributionCommand({
          Id: distributionId,
          IfMatch: read.ETag,
          DistributionConfig: config,
        }),
      );
      return 'updated';
    } catch (err) {
      if (errorName(err) !== 'PreconditionFailed') throw err;
      // Full jitter: two resources updating one distribution in the same
      // deployment must not retry in lockstep.
      await sleep(Math.floor(random() * BASE_DELAY_MS * 2 ** attempt));
    }
  }
  throw new ConcurrentUpdateError(distributionId, attempts);
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
