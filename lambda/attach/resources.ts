/**
 * The custom resources that hook edgeban into what the user already runs:
 *
 * - `DistributionWebAcl`: puts edgeban's web ACL on a CloudFront
 *   distribution, refusing to replace a web ACL it did not set unless told
 *   to, and puts the previous one back on delete.
 * - `DistributionLogging`: switches a distribution's legacy access logging
 *   to edgeban's bucket and prefix, and restores the previous logging on
 *   delete.
 * - `BucketEventBridge`: turns on S3 → EventBridge notifications for an
 *   existing bucket, keeping its other notification configuration intact
 *   (left on at delete: other rules may rely on it by then).
 *
 * What was there before is kept in the physical resource id, the only
 * state CloudFormation hands back on update and delete. Properties arrive
 * as strings (CloudFormation turns booleans into `"true"`/`"false"`).
 */
import type { CloudFrontClient } from '@aws-sdk/client-cloudfront';
import {
  GetBucketNotificationConfigurationCommand,
  PutBucketNotificationConfigurationCommand,
  type S3Client,
} from '@aws-sdk/client-s3';
import type { WAFV2Client } from '@aws-sdk/client-wafv2';
import type { CloudFormationCustomResourceEvent } from 'aws-lambda';
import {
  AttachError,
  changeDistribution,
  ForeignWebAclError,
  type Logging,
  loggingOf,
  type RetryOptions,
  setLogging,
} from './distribution';
import { realtimeLogs } from './realtime-logs';
import { setWebAcl, webAclState } from './web-acl';

/** The resource kinds, as the CDK app writes them in `Kind`. */
export const KINDS = {
  distributionWebAcl: 'DistributionWebAcl',
  distributionLogging: 'DistributionLogging',
  bucketEventBridge: 'BucketEventBridge',
  distributionRealtimeLogs: 'DistributionRealtimeLogs',
} as const;

/** What the provider framework sends back to CloudFormation. */
export interface ResourceResult {
  readonly PhysicalResourceId: string;
  readonly Data?: Record<string, string>;
}

/** SDK clients and knobs of {@link onEvent}. */
export interface AttachDeps extends RetryOptions {
  readonly cloudfront: CloudFrontClient;
  /** WAF in us-east-1, where CloudFront's web ACLs live. */
  readonly wafv2: WAFV2Client;
  readonly s3: S3Client;
  /** @default - no logging */
  readonly log?: (message: string, extra?: Record<string, unknown>) => void;
}

/** A property the template must set is missing or malformed. */
export class PropertyError extends AttachError {
  constructor(name: string, value: unknown) {
    super(`custom resource property ${name} is missing or invalid, got ${JSON.stringify(value)}`);
    this.name = 'PropertyError';
  }
}

const SEP = '|';

function prop(props: Record<string, unknown>, name: string): string {
  const value = props[name];
  if (typeof value !== 'string' || value === '') throw new PropertyError(name, value);
  return value;
}

function optionalProp(props: Record<string, unknown>, name: string): string {
  const value = props[name] ?? '';
  if (typeof value !== 'string') throw new PropertyError(name, value);
  return value;
}

function flag(props: Record<string, unknown>, name: string): boolean {
  const value = props[name];
  return value === true || value === 'true';
}

/** `<distribution>|webacl|<previous web ACL or ''>` */
export function webAclPhysicalId(distributionId: string, previous: string): string {
  return [distributionId, 'webacl', previous].join(SEP);
}

/** `<distribution>|logging|<previous logging as URI-encoded JSON>` */
export function loggingPhysicalId(distributionId: string, previous: Logging): string {
  return [distributionId, 'logging', encodeURIComponent(JSON.stringify(previous))].join(SEP);
}

interface Parsed<T> {
  readonly distributionId: string;
  readonly previous: T;
}

/** The parts of a physical id this handler wrote, or null for any other id. */
export function parsePhysicalId(id: string, kind: 'webacl'): Parsed<string> | null;
export function parsePhysicalId(id: string, kind: 'logging'): Parsed<Logging> | null;
export function parsePhysicalId(
  id: string,
  kind: 'webacl' | 'logging',
): Parsed<string> | Parsed<Logging> | null {
  const first = id.indexOf(SEP);
  const second = first < 0 ? -1 : id.indexOf(SEP, first + 1);
  if (second < 0 || id.slice(first + 1, second) !== kind) return null;
  const distributionId = id.slice(0, first);
  const rest = id.slice(second + 1);
  if (kind === 'webacl') return { distributionId, previous: rest };
  try {
    const p = JSON.parse(decodeURIComponent(rest)) as Partial<Logging>;
    return {
      distributionId,
      previous: {
        enabled: p.enabled === true,
        bucket: typeof p.bucket === 'string' ? p.bucket : '',
        prefix: typeof p.prefix === 'string' ? p.prefix : '',
        includeCookies: p.includeCookies === true,
      },
    };
  } catch {
    return null;
  }
}

async function webAcl(
  event: CloudFormationCustomResourceEvent,
  deps: AttachDeps,
): Promise<ResourceResult> {
  const props = event.ResourceProperties as Record<string, unknown>;
  const distributionId = prop(props, 'DistributionId');
  const webAclArn = prop(props, 'WebAclArn');
  const replace = flag(props, 'ReplaceExisting');

  if (event.RequestType === 'Delete') {
    const parsed = parsePhysicalId(event.PhysicalResourceId, 'webacl');
    // A create that failed before any change has no id of ours: nothing to undo.
    if (parsed === null) return { PhysicalResourceId: event.PhysicalResourceId };
    const result = await restoreWebAcl(deps, parsed.distributionId, webAclArn, parsed.previous);
    deps.log?.('web ACL restore', { distributionId, result, previous: parsed.previous });
    return { PhysicalResourceId: event.PhysicalResourceId };
  }

  // An update of the same distribution keeps what was there before edgeban.
  const kept =
    event.RequestType === 'Update' ? parsePhysicalId(event.PhysicalResourceId, 'webacl') : null;
  const sameDistribution = kept !== null && kept.distributionId === distributionId;
  const oldArn =
    event.RequestType === 'Update' && sameDistribution
      ? String((event.OldResourceProperties as Record<string, unknown>).WebAclArn ?? '')
      : '';
  let previous = sameDistribution ? kept.previous : '';
  const result = await setWebAcl(
    deps.cloudfront,
    distributionId,
    (current) => {
      if (current === webAclArn) return null;
      const ours = current === '' || (oldArn !== '' && current === oldArn);
      if (!ours && !replace) throw new ForeignWebAclError(distributionId, current);
      if (!sameDistribution) previous = current;
      return webAclArn;
    },
    deps,
  );
  deps.log?.('web ACL attach', { distributionId, result, previous });
  return {
    PhysicalResourceId: webAclPhysicalId(distributionId, previous),
    Data: { PreviousWebAclId: previous },
  };
}

/**
 * Puts `previous` back when the distribution still holds edgeban's web ACL;
 * leaves it alone when someone has changed it since. CloudFront's
 * `InvalidWebACLId` for `previous` is no proof that it is gone (it is also
 * WAF's propagation delay and a missing permission): only WAF's own
 * `WAFNonexistentItemException` lets the distribution go without a web ACL.
 */
async function restoreWebAcl(
  deps: AttachDeps,
  distributionId: string,
  ours: string,
  previous: string,
): Promise<string> {
  let target = previous;
  return setWebAcl(
    deps.cloudfront,
    distributionId,
    (current) => (current === ours ? target : null),
    {
      ...deps,
      ifMissing: 'ok',
      onUnreadable: async (arn) => {
        if (arn === '' || arn !== target) return false;
        const state = await webAclState(deps.wafv2, arn);
        deps.log?.('CloudFront cannot read the previous web ACL', { distributionId, arn, state });
        if (state !== 'gone') return false;
        deps.log?.('previous web ACL is gone; leaving the distribution without one', {
          distributionId,
          previous,
        });
        target = '';
        return true;
      },
    },
  );
}

async function logging(
  event: CloudFormationCustomResourceEvent,
  deps: AttachDeps,
): Promise<ResourceResult> {
  const props = event.ResourceProperties as Record<string, unknown>;
  const distributionId = prop(props, 'DistributionId');
  const bucket = prop(props, 'Bucket');
  const prefix = optionalProp(props, 'Prefix');

  if (event.RequestType === 'Delete') {
    const parsed = parsePhysicalId(event.PhysicalResourceId, 'logging');
    if (parsed === null) return { PhysicalResourceId: event.PhysicalResourceId };
    const result = await changeDistribution(
      deps.cloudfront,
      parsed.distributionId,
      (config) => {
        const now = loggingOf(config);
        // Someone pointed the logs elsewhere since: theirs now.
        if (!now.enabled || now.bucket !== bucket || now.prefix !== prefix) return false;
        return setLogging(config, parsed.previous);
      },
      { ...deps, ifMissing: 'ok' },
    );
    deps.log?.('logging restore', { distributionId, result });
    return { PhysicalResourceId: event.PhysicalResourceId };
  }

  const kept =
    event.RequestType === 'Update' ? parsePhysicalId(event.PhysicalResourceId, 'logging') : null;
  const sameDistribution = kept !== null && kept.distributionId === distributionId;
  let previous: Logging = sameDistribution
    ? kept.previous
    : { enabled: false, bucket: '', prefix: '', includeCookies: false };
  const result = await changeDistribution(
    deps.cloudfront,
    distributionId,
    (config) => {
      const now = loggingOf(config);
      if (!sameDistribution) previous = now;
      return setLogging(config, {
        enabled: true,
        bucket,
        prefix,
        includeCookies: now.includeCookies,
      });
    },
    deps,
  );
  deps.log?.('logging enable', { distributionId, result });
  return { PhysicalResourceId: loggingPhysicalId(distributionId, previous) };
}

async function bucketEventBridge(
  event: CloudFormationCustomResourceEvent,
  deps: AttachDeps,
): Promise<ResourceResult> {
  const props = event.ResourceProperties as Record<string, unknown>;
  const bucket = prop(props, 'BucketName');
  const owner = optionalProp(props, 'ExpectedBucketOwner');
  const physicalId = `${bucket}${SEP}eventbridge`;
  if (event.RequestType === 'Delete') return { PhysicalResourceId: event.PhysicalResourceId };

  const expected = owner === '' ? {} : { ExpectedBucketOwner: owner };
  const current = await deps.s3.send(
    new GetBucketNotificationConfigurationCommand({ Bucket: bucket, ...expected }),
  );
  if (current.EventBridgeConfiguration !== undefined) {
    deps.log?.('EventBridge notifications already on', { bucket });
    return { PhysicalResourceId: physicalId };
  }
  // S3 replaces the whole notification configuration on put: write back
  // every existing destination unchanged, plus EventBridge. Skipping
  // validation keeps a stale destination of someone else's from failing us.
  await deps.s3.send(
    new PutBucketNotificationConfigurationCommand({
      Bucket: bucket,
      ...expected,
      SkipDestinationValidation: true,
      NotificationConfiguration: {
        ...(current.TopicConfigurations === undefined
          ? {}
          : { TopicConfigurations: current.TopicConfigurations }),
        ...(current.QueueConfigurations === undefined
          ? {}
          : { QueueConfigurations: current.QueueConfigurations }),
        ...(current.LambdaFunctionConfigurations === undefined
          ? {}
          : { LambdaFunctionConfigurations: current.LambdaFunctionConfigurations }),
        EventBridgeConfiguration: {},
      },
    }),
  );
  deps.log?.('EventBridge notifications turned on', { bucket });
  return { PhysicalResourceId: physicalId };
}

/**
 * Handles one CloudFormation custom resource event for any of the kinds.
 * @throws AttachError with a one-line reason, which CloudFormation shows
 */
export async function onEvent(
  event: CloudFormationCustomResourceEvent,
  deps: AttachDeps,
): Promise<ResourceResult> {
  const kind = (event.ResourceProperties as Record<string, unknown>).Kind;
  switch (kind) {
    case KINDS.distributionWebAcl:
      return webAcl(event, deps);
    case KINDS.distributionLogging:
      return logging(event, deps);
    case KINDS.bucketEventBridge:
      return bucketEventBridge(event, deps);
    case KINDS.distributionRealtimeLogs: {
      const props = event.ResourceProperties as Record<string, unknown>;
      return realtimeLogs(event, deps, {
        distributionId: prop(props, 'DistributionId'),
        arn: prop(props, 'RealtimeLogConfigArn'),
        replace: flag(props, 'ReplaceExisting'),
      });
    }
    default:
      throw new PropertyError('Kind', kind);
  }
}
