/**
 * The web ACL of a CloudFront distribution, set with CloudFront's own
 * AssociateDistributionWebACL / DisassociateDistributionWebACL
 * (https://docs.aws.amazon.com/cloudfront/latest/APIReference/API_AssociateDistributionWebACL.html)
 * rather than a rewrite of the whole DistributionConfig: a rewrite sends
 * back every Lambda@Edge function and VPC origin of the distribution, and
 * CloudFront checks the caller's rights on each of them. The IAM actions
 * are `cloudfront:AssociateDistributionWebACL` (with `cloudfront:GetVpcOrigin`
 * for a distribution with VPC origins) and
 * `cloudfront:DisassociateDistributionWebACL` (Service Authorization
 * Reference, "Actions, resources, and condition keys for Amazon CloudFront").
 * Both take the distribution's ETag as `If-Match`, so a concurrent edit is
 * a `PreconditionFailed` and the decision is made again on a fresh read.
 */
import {
  AssociateDistributionWebACLCommand,
  type CloudFrontClient,
  DisassociateDistributionWebACLCommand,
} from '@aws-sdk/client-cloudfront';
import { GetWebACLCommand, type WAFV2Client } from '@aws-sdk/client-wafv2';
import {
  type ChangeResult,
  errorName,
  isUnreadableWebAcl,
  Retries,
  type RetryOptions,
  readConfig,
  webAclOf,
} from './distribution';

/** Options of {@link setWebAcl}. */
export interface SetWebAclOptions extends RetryOptions {
  /** @default 'throw' */
  readonly ifMissing?: 'ok' | 'throw';
  /**
   * Called when CloudFront answers `InvalidWebACLId` for `webAclArn`; true
   * means the decision changed (the next read decides again at once),
   * false that the answer is retried with backoff.
   * @default - always retried
   */
  readonly onUnreadable?: (webAclArn: string) => Promise<boolean>;
}

/**
 * Puts the web ACL `decide` chooses on a distribution. `decide` sees the
 * web ACL the distribution holds now ('' for none) on every attempt and
 * returns the one it should hold ('' to remove it), or null to leave it as
 * it is; it may throw to refuse.
 * @returns `unchanged` when `decide` returned null or the current one,
 *   `missing` when the distribution does not exist and `ifMissing` is `ok`
 * @throws ConcurrentUpdateError, UnreadableWebAclError (see {@link Retries})
 */
export async function setWebAcl(
  cloudfront: CloudFrontClient,
  distributionId: string,
  decide: (current: string) => string | null,
  options: SetWebAclOptions = {},
): Promise<ChangeResult> {
  const retries = new Retries(distributionId, options);
  for (;;) {
    const read = await readConfig(cloudfront, distributionId, options.ifMissing);
    if (read === null) return 'missing';
    const current = webAclOf(read.config);
    const target = decide(current);
    if (target === null || target === current) return 'unchanged';
    try {
      if (target === '') {
        await cloudfront.send(
          new DisassociateDistributionWebACLCommand({ Id: distributionId, IfMatch: read.etag }),
        );
      } else {
        await cloudfront.send(
          new AssociateDistributionWebACLCommand({
            Id: distributionId,
            WebACLArn: target,
            IfMatch: read.etag,
          }),
        );
      }
      return 'updated';
    } catch (err) {
      if (isUnreadableWebAcl(err) && options.onUnreadable && (await options.onUnreadable(target))) {
        continue;
      }
      await retries.after(err, target);
    }
  }
}

/** The parts of a WAFv2 web ACL ARN that GetWebACL takes. */
interface WebAclName {
  readonly name: string;
  readonly id: string;
  readonly scope: 'CLOUDFRONT' | 'REGIONAL';
}

/**
 * `arn:aws:wafv2:<region>:<account>:global/webacl/<name>/<id>` (CLOUDFRONT
 * scope) or `.../regional/webacl/<name>/<id>`; null for anything else (a
 * WAF Classic web ACL id).
 */
export function parseWebAclArn(arn: string): WebAclName | null {
  const m = /^arn:[\w-]+:wafv2:[\w-]+:\d{12}:(global|regional)\/webacl\/([^/]+)\/([^/]+)$/.exec(
    arn,
  );
  if (m === null) return null;
  return {
    scope: m[1] === 'global' ? 'CLOUDFRONT' : 'REGIONAL',
    name: m[2] as string,
    id: m[3] as string,
  };
}

/** What WAF says of a web ACL. */
export type WebAclState = 'exists' | 'gone' | 'unknown';

/**
 * Asks WAF whether a web ACL exists: `WAFNonexistentItemException` is the
 * only proof that it is gone
 * (https://docs.aws.amazon.com/waf/latest/APIReference/API_GetWebACL.html).
 * Any other failure (no permission, throttling) proves nothing: `unknown`.
 */
export async function webAclState(wafv2: WAFV2Client, arn: string): Promise<WebAclState> {
  const parsed = parseWebAclArn(arn);
  if (parsed === null) return 'unknown';
  try {
    await wafv2.send(
      new GetWebACLCommand({ Name: parsed.name, Id: parsed.id, Scope: parsed.scope }),
    );
    return 'exists';
  } catch (err) {
    return errorName(err) === 'WAFNonexistentItemException' ? 'gone' : 'unknown';
  }
}
