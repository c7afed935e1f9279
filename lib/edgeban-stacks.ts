import { Aspects, CfnOutput, Fn, Stack, type StackProps } from 'aws-cdk-lib';
import type { Construct } from 'constructs';
import { parseConfig } from '../lambda/core/config';
import { configOutput, pipelineStackName, STACK_NAMES } from '../lambda/shared/config-output';
import { OUTPUTS } from '../lambda/shared/contract';
import { BoundedAsyncInvoke } from './async-invoke';
import { configObject, EdgeBan, type EdgebanConfigSource } from './edge-ban';
import { CLOUDFRONT_WAF_REGION, EdgeBanWaf, type IpSetRef } from './edge-ban-waf';

/** Stack ids of the app: `cdk deploy Edgeban EdgebanWaf`. */
export const STACK_IDS = STACK_NAMES;

/**
 * The stack ids (and names) of a deployment: {@link STACK_IDS} with no
 * stage, so an existing deployment keeps every name; `Edgeban-<stage>`
 * and `EdgebanWaf-<stage>` with one. Every resource name derives from its
 * stack's, so another stage is another deployment.
 */
export function stackIds(stage: string | undefined): { pipeline: string; waf: string } {
  return {
    pipeline: pipelineStackName(stage),
    waf: stage === undefined ? STACK_IDS.waf : `${STACK_IDS.waf}-${stage}`,
  };
}

/** Properties of {@link EdgebanStack}. */
export interface EdgebanStackProps extends StackProps {
  readonly config: EdgebanConfigSource;
  /** @default - WAF resources in this stack */
  readonly waf?: EdgeBanWaf;
}

/** The pipeline stack: the {@link EdgeBan} construct and the outputs the CLI reads. */
export class EdgebanStack extends Stack {
  readonly edgeban: EdgeBan;

  constructor(scope: Construct, id: string, props: EdgebanStackProps) {
    super(scope, id, {
      description: 'edgeban: access logs to an expiring AWS WAF blocklist (pipeline)',
      ...props,
    });
    this.edgeban = new EdgeBan(this, 'EdgeBan', {
      config: props.config,
      ...(props.waf === undefined ? {} : { waf: props.waf }),
    });
    Aspects.of(this).add(new BoundedAsyncInvoke());
    const e = this.edgeban;
    new CfnOutput(this, OUTPUTS.tableName, {
      value: e.table.tableName,
      description: 'State table: blocks, offences, history',
    });
    new CfnOutput(this, OUTPUTS.logBucketName, {
      value: e.logBucket.bucketName,
      description: 'Bucket the access logs land in',
    });
    new CfnOutput(this, OUTPUTS.queueUrl, {
      value: e.queue.queueUrl,
      description: 'Queue of new log objects (ingest)',
    });
    new CfnOutput(this, OUTPUTS.reconcilerQueueUrl, {
      value: e.reconcilerQueue.queueUrl,
      description: 'Queue that wakes the reconciler',
    });
    new CfnOutput(this, OUTPUTS.ipSetArns, {
      value: Fn.join(
        ',',
        e.waf.ipSets.map((s) => s.arn),
      ),
      description: 'WAF IP sets edgeban maintains (IPv4 sets first), comma-separated',
    });
    for (const set of e.waf.ipSets) {
      new CfnOutput(this, ipSetOutputId(set, e.waf.ipSets), {
        value: ipSetConsoleUrl(set, e.waf.region),
        description: `${set.name} in the WAF console: review or remove blocked addresses`,
      });
    }
    const fromWaf = (v: string) => (props.waf === undefined ? v : crossStackOutput(v));
    if (e.waf.webAclArn !== undefined) {
      new CfnOutput(this, OUTPUTS.webAclArn, {
        value: fromWaf(e.waf.webAclArn),
        description: 'Web ACL with the edgeban blocklist rule',
      });
    }
    if (e.waf.ruleGroupArn !== undefined) {
      new CfnOutput(this, OUTPUTS.ruleGroupArn, {
        value: fromWaf(e.waf.ruleGroupArn),
        description: 'Rule group to reference from your own web ACL',
      });
    }
    // --- console widget outputs (lib/console-widget.ts): the ARNs its IAM policies name ---
    new CfnOutput(this, OUTPUTS.widgetViewFunctionArn, {
      value: e.consoleWidget.viewer.function.functionArn,
      description:
        'Console widget, read-only: grant lambda:InvokeFunction to who may review blocks',
    });
    new CfnOutput(this, OUTPUTS.widgetActFunctionArn, {
      value: e.consoleWidget.actor.function.functionArn,
      description:
        'Console widget, acting: grant lambda:InvokeFunction to who may unblock and block',
    });
    // --- end console widget outputs ---
    new CfnOutput(this, OUTPUTS.config, {
      value: configOutput(configObject(props.config)),
      description: 'The edgeban config this stack runs with (read by the edgeban CLI with --stack)',
    });
    new CfnOutput(this, OUTPUTS.dashboardUrl, {
      value: e.monitoring.dashboardUrl,
      description: 'CloudWatch dashboard',
    });
  }
}

/** Properties of {@link EdgebanWafStack}. */
export interface EdgebanWafStackProps extends StackProps {
  readonly config: EdgebanConfigSource;
}

/** The us-east-1 stack of a CLOUDFRONT-scope app whose log bucket is elsewhere. */
export class EdgebanWafStack extends Stack {
  readonly waf: EdgeBanWaf;

  constructor(scope: Construct, id: string, props: EdgebanWafStackProps) {
    super(scope, id, {
      description: 'edgeban: WAF IP sets and web ACL for CloudFront (us-east-1)',
      ...props,
    });
    this.waf = new EdgeBanWaf(this, 'Waf', { config: parseConfig(configObject(props.config)) });
    Aspects.of(this).add(new BoundedAsyncInvoke());
  }
}

/** Where and how to build the app. */
export interface EdgebanAppProps {
  /** The `edgeban` context value. */
  readonly config: EdgebanConfigSource | undefined;
  /** @default - environment-agnostic account */
  readonly account?: string;
  /**
   * The log bucket's region, where the pipeline goes.
   * @default - environment-agnostic (CLOUDFRONT scope then needs us-east-1)
   */
  readonly region?: string;
}

/** The stacks {@link buildEdgeban} made. */
export interface EdgebanApp {
  readonly pipeline: EdgebanStack;
  /** Only for CLOUDFRONT scope with the pipeline outside us-east-1. */
  readonly waf: EdgebanWafStack | undefined;
}

/**
 * Builds the edgeban stacks from the context config: the pipeline in the
 * log bucket's region and, for CLOUDFRONT scope anywhere but us-east-1, a
 * second stack in us-east-1 for the WAF resources.
 * @throws ConfigError or EdgeBanError with one line naming the field and value
 */
export function buildEdgeban(scope: Construct, props: EdgebanAppProps): EdgebanApp {
  const raw = configObject(props.config);
  const config = parseConfig(raw);
  const ids = stackIds(config.stage);
  const env = {
    ...(props.account === undefined ? {} : { account: props.account }),
    ...(props.region === undefined ? {} : { region: props.region }),
  };
  const split =
    config.scope === 'CLOUDFRONT' &&
    props.region !== undefined &&
    props.region !== CLOUDFRONT_WAF_REGION;
  if (!split) {
    return {
      pipeline: new EdgebanStack(scope, ids.pipeline, { env, config: raw }),
      waf: undefined,
    };
  }
  const waf = new EdgebanWafStack(scope, ids.waf, {
    env: { ...env, region: CLOUDFRONT_WAF_REGION },
    // The pipeline reads the IP set ids; CDK carries them across regions.
    crossRegionReferences: true,
    config: raw,
  });
  const pipeline = new EdgebanStack(scope, ids.pipeline, {
    env,
    crossRegionReferences: true,
    config: raw,
    waf: waf.waf,
  });
  return { pipeline, waf };
}

/**
 * An output value read from the us-east-1 stack (`Fn::GetStackOutput`),
 * inside an `Fn::Join`: the position CloudFormation has accepted it in
 * from the start, where cfn-lint 1.x before 1.5x refuses it as an output's
 * direct value (https://github.com/aws-cloudformation/cfn-lint/pull/4495,
 * https://github.com/aws-cloudformation/cfn-lint/pull/4519).
 */
function crossStackOutput(value: string): string {
  // A one-element join is folded away by the CDK: the empty string keeps it.
  return Fn.join('', [value, '']);
}

/** `IpSetConsoleUrlIpv41`: version and position among that version's sets. */
function ipSetOutputId(set: IpSetRef, all: readonly IpSetRef[]): string {
  const n = all.filter((s) => s.version === set.version).indexOf(set) + 1;
  return `${OUTPUTS.ipSetConsoleUrl}${set.version === 'IPV4' ? 'Ipv4' : 'Ipv6'}${n}`;
}

/** The IP set's page in the WAF console (`region=global` for CloudFront). */
export function ipSetConsoleUrl(set: IpSetRef, region: string): string {
  const home = set.scope === 'CLOUDFRONT' ? CLOUDFRONT_WAF_REGION : region;
  const query = set.scope === 'CLOUDFRONT' ? 'global' : region;
  return `https://${home}.console.aws.amazon.com/wafv2/homev2/ip-set/${set.name}/${set.id}?region=${query}`;
}
