/**
 * The `Custom::EdgebanAlbLogging` resource: points an ALB's access logs at
 * edgeban's bucket and prefix, and on delete puts back the access-log
 * attributes the ALB had before (read with DescribeLoadBalancerAttributes
 * on create), rather than switching logging off.
 *
 * What was there before is kept in the physical resource id, the only
 * state CloudFormation hands back on update and delete. A load balancer
 * whose logging someone pointed elsewhere since is left alone on delete.
 */
import {
  DescribeLoadBalancerAttributesCommand,
  type ElasticLoadBalancingV2Client,
  ModifyLoadBalancerAttributesCommand,
} from '@aws-sdk/client-elastic-load-balancing-v2';
import type { CloudFormationCustomResourceEvent } from 'aws-lambda';

/** An ALB's `access_logs.s3.*` attributes. */
export interface AccessLogs {
  readonly enabled: boolean;
  readonly bucket: string;
  readonly prefix: string;
}

/** SDK client and logger of {@link onEvent}. */
export interface AlbLoggingDeps {
  readonly elbv2: ElasticLoadBalancingV2Client;
  /** @default - no logging */
  readonly log?: (message: string, extra?: Record<string, unknown>) => void;
}

/** What the provider framework sends back to CloudFormation. */
export interface ResourceResult {
  readonly PhysicalResourceId: string;
}

/** Base error of this module. */
export class AlbLoggingError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'AlbLoggingError';
  }
}

const ENABLED = 'access_logs.s3.enabled';
const BUCKET = 'access_logs.s3.bucket';
const PREFIX = 'access_logs.s3.prefix';
const SEP = '|';
const KIND = 'alblogging';

/** ELB's error when the load balancer is gone. */
const NOT_FOUND = 'LoadBalancerNotFoundException';

/** `<ALB ARN>|alblogging|<previous access logs as URI-encoded JSON>` (ARNs hold no `|`). */
export function albLoggingPhysicalId(arn: string, previous: AccessLogs): string {
  return [arn, KIND, encodeURIComponent(JSON.stringify(previous))].join(SEP);
}

/** The ARN and previous access logs of a physical id this handler wrote, else null. */
export function parseAlbLoggingPhysicalId(
  id: string,
): { arn: string; previous: AccessLogs } | null {
  const parts = id.split(SEP);
  if (parts.length !== 3 || parts[1] !== KIND || parts[0] === '') return null;
  try {
    const p = JSON.parse(decodeURIComponent(parts[2] ?? '')) as Partial<AccessLogs>;
    return {
      arn: parts[0] as string,
      previous: {
        enabled: p.enabled === true,
        bucket: typeof p.bucket === 'string' ? p.bucket : '',
        prefix: typeof p.prefix === 'string' ? p.prefix : '',
      },
    };
  } catch {
    return null;
  }
}

function prop(props: Record<string, unknown>, name: string, allowEmpty = false): string {
  const value = props[name] ?? (allowEmpty ? '' : undefined);
  if (typeof value !== 'string' || (!allowEmpty && value === '')) {
    throw new AlbLoggingError(
      `custom resource property ${name} is missing or invalid, got ${JSON.stringify(value)}`,
    );
  }
  return value;
}

/** The access-log attributes of an attribute list (absent ones read as off and empty). */
export function accessLogsOf(
  attributes: readonly { Key?: string | undefined; Value?: string | undefined }[],
): AccessLogs {
  const get = (key: string) => attributes.find((a) => a.Key === key)?.Value ?? '';
  return { enabled: get(ENABLED) === 'true', bucket: get(BUCKET), prefix: get(PREFIX) };
}

async function read(deps: AlbLoggingDeps, arn: string): Promise<AccessLogs> {
  const out = await deps.elbv2.send(
    new DescribeLoadBalancerAttributesCommand({ LoadBalancerArn: arn }),
  );
  return accessLogsOf(out.Attributes ?? []);
}

/**
 * The attributes that set `logs`. Logging off sends only `enabled`, plus a
 * bucket and prefix only when there were ones to put back: ELB keeps them
 * while logging is off, and an empty bucket is not worth a validation error
 * on delete.
 */
export function attributesOf(logs: AccessLogs): { Key: string; Value: string }[] {
  const out = [{ Key: ENABLED, Value: String(logs.enabled) }];
  if (logs.enabled || logs.bucket !== '') {
    out.push({ Key: BUCKET, Value: logs.bucket }, { Key: PREFIX, Value: logs.prefix });
  }
  return out;
}

async function write(deps: AlbLoggingDeps, arn: string, logs: AccessLogs): Promise<void> {
  await deps.elbv2.send(
    new ModifyLoadBalancerAttributesCommand({
      LoadBalancerArn: arn,
      Attributes: attributesOf(logs),
    }),
  );
}

function same(a: AccessLogs, b: AccessLogs): boolean {
  return a.enabled === b.enabled && a.bucket === b.bucket && a.prefix === b.prefix;
}

function isNotFound(e: unknown): boolean {
  return (e as { name?: string }).name === NOT_FOUND;
}

/**
 * Handles one CloudFormation event.
 * @throws AlbLoggingError for bad properties; SDK errors as ELB gave them
 */
export async function onEvent(
  event: CloudFormationCustomResourceEvent,
  deps: AlbLoggingDeps,
): Promise<ResourceResult> {
  const props = event.ResourceProperties as Record<string, unknown>;
  const arn = prop(props, 'LoadBalancerArn');
  const target: AccessLogs = {
    enabled: true,
    bucket: prop(props, 'Bucket'),
    prefix: prop(props, 'Prefix', true),
  };
  const log = deps.log ?? (() => {});

  if (event.RequestType === 'Delete') {
    const parsed = parseAlbLoggingPhysicalId(event.PhysicalResourceId);
    // A create that failed before any change has no id of ours: nothing to undo.
    if (parsed === null) return { PhysicalResourceId: event.PhysicalResourceId };
    await restore(deps, parsed.arn, target, parsed.previous, log);
    return { PhysicalResourceId: event.PhysicalResourceId };
  }

  if (event.RequestType === 'Update') {
    const parsed = parseAlbLoggingPhysicalId(event.PhysicalResourceId);
    if (parsed !== null && parsed.arn === arn) {
      // Same load balancer: what it had before edgeban is still in the id.
      await write(deps, arn, target);
      log('access logs updated', { arn, bucket: target.bucket, prefix: target.prefix });
      return { PhysicalResourceId: event.PhysicalResourceId };
    }
    // Another load balancer: a new id, and CloudFormation deletes the old
    // one afterwards, which restores that load balancer.
  }

  const previous = await read(deps, arn);
  await write(deps, arn, target);
  log('access logs on', { arn, previous, bucket: target.bucket, prefix: target.prefix });
  return { PhysicalResourceId: albLoggingPhysicalId(arn, previous) };
}

/**
 * Puts back `previous` while the access logs still go to edgeban. Logging
 * that pointed at edgeban's own target before is switched off instead (the
 * bucket outlives the stack, but nothing reads it any more). When ELB
 * refuses the old setting (its bucket gone or no longer open to ELB), the
 * logs are switched off rather than left pointing at edgeban.
 */
async function restore(
  deps: AlbLoggingDeps,
  arn: string,
  target: AccessLogs,
  previous: AccessLogs,
  log: NonNullable<AlbLoggingDeps['log']>,
): Promise<void> {
  let current: AccessLogs;
  try {
    current = await read(deps, arn);
  } catch (e) {
    if (isNotFound(e)) {
      log('load balancer gone: nothing to restore', { arn });
      return;
    }
    throw e;
  }
  if (!same(current, target)) {
    log('access logs point elsewhere now: left alone', { arn, current });
    return;
  }
  const off: AccessLogs = { enabled: false, bucket: '', prefix: '' };
  const back = same(previous, target) ? off : previous;
  try {
    await write(deps, arn, back);
    log('access logs restored', { arn, restored: back });
  } catch (e) {
    if (isNotFound(e)) return;
    if (!back.enabled) throw e;
    log('previous access logs refused: switching them off', {
      arn,
      previous: back,
      error: (e as Error).message,
    });
    await write(deps, arn, off);
  }
}
