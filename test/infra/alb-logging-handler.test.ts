/**
 * The ALB access logging custom resource handler (`lambda/alb-logging`)
 * against a mocked ELBv2 client: what it reads and writes on create,
 * update and delete, and what it puts back.
 */
import {
  DescribeLoadBalancerAttributesCommand,
  ElasticLoadBalancingV2Client,
  LoadBalancerNotFoundException,
  ModifyLoadBalancerAttributesCommand,
} from '@aws-sdk/client-elastic-load-balancing-v2';
import type { CloudFormationCustomResourceEvent } from 'aws-lambda';
import { mockClient } from 'aws-sdk-client-mock';
import fc from 'fast-check';
import { beforeEach, describe, expect, it } from 'vitest';
import {
  type AccessLogs,
  AlbLoggingError,
  albLoggingPhysicalId,
  onEvent,
  parseAlbLoggingPhysicalId,
} from '../../lambda/alb-logging/resource';
import { customResourceEvent } from '../fixtures/cfn-event';

const ALB =
  'arn:aws:elasticloadbalancing:eu-west-1:123456789012:loadbalancer/app/web/0123456789abcdef';
const ALB2 =
  'arn:aws:elasticloadbalancing:eu-west-1:123456789012:loadbalancer/app/api/fedcba9876543210';
const OURS: AccessLogs = { enabled: true, bucket: 'edgeban-logs', prefix: 'alb' };
const THEIRS: AccessLogs = { enabled: true, bucket: 'their-logs', prefix: 'lb' };
const OFF: AccessLogs = { enabled: false, bucket: '', prefix: '' };

const elbv2 = mockClient(ElasticLoadBalancingV2Client);
const deps = () => ({ elbv2: new ElasticLoadBalancingV2Client({ region: 'eu-west-1' }) });

/** The attributes DescribeLoadBalancerAttributes returns for `logs`, among others. */
function described(logs: AccessLogs) {
  return {
    Attributes: [
      { Key: 'deletion_protection.enabled', Value: 'false' },
      { Key: 'access_logs.s3.enabled', Value: String(logs.enabled) },
      { Key: 'access_logs.s3.bucket', Value: logs.bucket },
      { Key: 'access_logs.s3.prefix', Value: logs.prefix },
      { Key: 'idle_timeout.timeout_seconds', Value: '60' },
    ],
  };
}

function event(
  type: 'Create' | 'Update' | 'Delete',
  fields: { arn?: string; physicalId?: string } = {},
): CloudFormationCustomResourceEvent {
  const props = {
    ServiceToken: 'arn:aws:lambda:eu-west-1:123456789012:function:framework',
    LoadBalancerArn: fields.arn ?? ALB,
    Bucket: OURS.bucket,
    Prefix: OURS.prefix,
  };
  return customResourceEvent(type, props, {
    resourceType: 'Custom::EdgebanAlbLogging',
    logicalId: 'EdgeBanAlbLogging0123456789abcdefE4B91620',
    stackId: 'arn:aws:cloudformation:eu-west-1:123456789012:stack/Edgeban/1',
    requestId: 'r1',
    ...(type === 'Create'
      ? {}
      : { physicalId: fields.physicalId ?? albLoggingPhysicalId(ALB, THEIRS) }),
    old: props,
  });
}

/** The attributes of each ModifyLoadBalancerAttributes call, by load balancer. */
function modifications(): [string | undefined, unknown][] {
  return elbv2
    .commandCalls(ModifyLoadBalancerAttributesCommand)
    .map((c) => [c.args[0].input.LoadBalancerArn, c.args[0].input.Attributes]);
}

const attributes = (logs: AccessLogs) => [
  { Key: 'access_logs.s3.enabled', Value: String(logs.enabled) },
  { Key: 'access_logs.s3.bucket', Value: logs.bucket },
  { Key: 'access_logs.s3.prefix', Value: logs.prefix },
];

beforeEach(() => {
  elbv2.reset();
  elbv2.on(ModifyLoadBalancerAttributesCommand).resolves({});
});

describe('Create', () => {
  it('reads the access logs the ALB had, then points them at the bucket and prefix', async () => {
    elbv2.on(DescribeLoadBalancerAttributesCommand).resolves(described(THEIRS));
    const result = await onEvent(event('Create'), deps());
    expect(modifications()).toEqual([[ALB, attributes(OURS)]]);
    expect(parseAlbLoggingPhysicalId(result.PhysicalResourceId)).toEqual({
      arn: ALB,
      previous: THEIRS,
    });
  });

  it('remembers logging that was off', async () => {
    elbv2.on(DescribeLoadBalancerAttributesCommand).resolves(described(OFF));
    const result = await onEvent(event('Create'), deps());
    expect(parseAlbLoggingPhysicalId(result.PhysicalResourceId)?.previous).toEqual(OFF);
  });

  it('refuses a resource without a load balancer ARN in one line', async () => {
    const e = event('Create');
    (e.ResourceProperties as Record<string, unknown>).LoadBalancerArn = '';
    await expect(onEvent(e, deps())).rejects.toThrow(AlbLoggingError);
    await expect(onEvent(e, deps())).rejects.toThrow(
      /^custom resource property LoadBalancerArn is missing or invalid, got ""$/,
    );
    expect(modifications()).toEqual([]);
  });
});

describe('Update', () => {
  it('rewrites the same ALB and keeps what it had before edgeban', async () => {
    const physicalId = albLoggingPhysicalId(ALB, THEIRS);
    const result = await onEvent(event('Update', { physicalId }), deps());
    expect(result.PhysicalResourceId).toBe(physicalId);
    expect(elbv2.commandCalls(DescribeLoadBalancerAttributesCommand)).toHaveLength(0);
    expect(modifications()).toEqual([[ALB, attributes(OURS)]]);
  });

  it('treats another ALB as a new resource, whose delete then restores the old one', async () => {
    elbv2.on(DescribeLoadBalancerAttributesCommand).resolves(described(OFF));
    const physicalId = albLoggingPhysicalId(ALB, THEIRS);
    const result = await onEvent(event('Update', { arn: ALB2, physicalId }), deps());
    expect(parseAlbLoggingPhysicalId(result.PhysicalResourceId)).toEqual({
      arn: ALB2,
      previous: OFF,
    });
    expect(modifications()).toEqual([[ALB2, attributes(OURS)]]);
  });
});

describe('Delete', () => {
  it('puts back the previous bucket and prefix, not just logging off', async () => {
    elbv2.on(DescribeLoadBalancerAttributesCommand).resolves(described(OURS));
    await onEvent(event('Delete', { physicalId: albLoggingPhysicalId(ALB, THEIRS) }), deps());
    expect(modifications()).toEqual([[ALB, attributes(THEIRS)]]);
  });

  it('switches logging off when it was off before, sending no empty bucket', async () => {
    elbv2.on(DescribeLoadBalancerAttributesCommand).resolves(described(OURS));
    await onEvent(event('Delete', { physicalId: albLoggingPhysicalId(ALB, OFF) }), deps());
    expect(modifications()).toEqual([[ALB, [{ Key: 'access_logs.s3.enabled', Value: 'false' }]]]);
  });

  it('keeps a disabled bucket setting as it was', async () => {
    const disabled = { enabled: false, bucket: 'their-logs', prefix: 'lb' };
    elbv2.on(DescribeLoadBalancerAttributesCommand).resolves(described(OURS));
    await onEvent(event('Delete', { physicalId: albLoggingPhysicalId(ALB, disabled) }), deps());
    expect(modifications()).toEqual([[ALB, attributes(disabled)]]);
  });

  it('switches logging off when edgeban was what it had before', async () => {
    elbv2.on(DescribeLoadBalancerAttributesCommand).resolves(described(OURS));
    await onEvent(event('Delete', { physicalId: albLoggingPhysicalId(ALB, OURS) }), deps());
    expect(modifications()).toEqual([[ALB, [{ Key: 'access_logs.s3.enabled', Value: 'false' }]]]);
  });

  it('leaves logging someone pointed elsewhere alone', async () => {
    const moved = { enabled: true, bucket: 'new-home', prefix: 'x' };
    elbv2.on(DescribeLoadBalancerAttributesCommand).resolves(described(moved));
    await onEvent(event('Delete', { physicalId: albLoggingPhysicalId(ALB, THEIRS) }), deps());
    expect(modifications()).toEqual([]);
  });

  it('succeeds when the load balancer is gone', async () => {
    elbv2
      .on(DescribeLoadBalancerAttributesCommand)
      .rejects(new LoadBalancerNotFoundException({ message: 'gone', $metadata: {} }));
    const physicalId = albLoggingPhysicalId(ALB, THEIRS);
    await expect(onEvent(event('Delete', { physicalId }), deps())).resolves.toEqual({
      PhysicalResourceId: physicalId,
    });
    expect(modifications()).toEqual([]);
  });

  it('switches logging off when ELB refuses the previous bucket', async () => {
    elbv2.on(DescribeLoadBalancerAttributesCommand).resolves(described(OURS));
    elbv2
      .on(ModifyLoadBalancerAttributesCommand)
      .rejectsOnce(
        Object.assign(new Error('Access Denied for bucket: their-logs'), {
          name: 'InvalidConfigurationRequestException',
        }),
      )
      .resolves({});
    await onEvent(event('Delete', { physicalId: albLoggingPhysicalId(ALB, THEIRS) }), deps());
    expect(modifications()).toEqual([
      [ALB, attributes(THEIRS)],
      [ALB, [{ Key: 'access_logs.s3.enabled', Value: 'false' }]],
    ]);
  });

  it('does nothing for a create that failed before it had an id of ours', async () => {
    const result = await onEvent(event('Delete', { physicalId: 'framework-failure-id' }), deps());
    expect(result.PhysicalResourceId).toBe('framework-failure-id');
    expect(elbv2.calls()).toHaveLength(0);
  });
});

describe('albLoggingPhysicalId', () => {
  it('keeps any previous setting through the physical id', () => {
    fc.assert(
      fc.property(fc.boolean(), fc.string(), fc.string(), (enabled, bucket, prefix) => {
        const previous = { enabled, bucket, prefix };
        const id = albLoggingPhysicalId(ALB, previous);
        expect(parseAlbLoggingPhysicalId(id)).toEqual({ arn: ALB, previous });
      }),
    );
  });

  it('reads ids of other resources as not ours', () => {
    expect(parseAlbLoggingPhysicalId(`${ALB}|logging`)).toBeNull();
    expect(parseAlbLoggingPhysicalId(`${ALB}|alblogging|%7Bnot json`)).toBeNull();
  });
});
