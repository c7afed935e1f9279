import { createHash } from 'node:crypto';
import {
  ArnFormat,
  type CfnResource,
  CustomResource,
  Duration,
  Lazy,
  Stack,
  Token,
  Validations,
} from 'aws-cdk-lib';
import type { CfnTable, ITable } from 'aws-cdk-lib/aws-dynamodb';
import { PolicyStatement } from 'aws-cdk-lib/aws-iam';
import type { CfnIPSet } from 'aws-cdk-lib/aws-wafv2';
import { Construct } from 'constructs';
import { DEPLOY_RECORD_PROPS } from '../lambda/deploy-record/record';
import type { DeployPhase } from '../lambda/state/deploys';
import { EdgebanFunction } from './edgeban-function';
import { EdgeBanError } from './errors';
import { wildcardResourceFinding } from './nag';
import { providerFramework } from './provider-framework';

/** The custom resource's type, as CloudFormation shows it. */
export const DEPLOY_RECORD_RESOURCE_TYPE = 'Custom::EdgebanDeployRecord';

/** Properties of {@link DeployRecord}. */
export interface DeployRecordProps {
  /** Every IP set of this stack that the reconciler maintains. */
  readonly ipSets: readonly CfnIPSet[];
  /**
   * The state table. In another stack, that stack must have a concrete
   * Region (or share this stack's) and deploy after this one: the record
   * then finds the table through that stack's `TableName` output, since a
   * reference to it would make this stack depend on its own dependant.
   */
  readonly table: ITable;
}

/** Template entries (`{ Type, Properties }`) by logical id. */
export type TemplateResources = Readonly<Record<string, unknown>>;

/** JSON with object keys sorted, so equal templates hash equal. */
function canonical(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`;
  if (typeof value === 'object' && value !== null) {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonical(v)}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

/**
 * The hash of the IP sets as a template declares them: their logical ids,
 * types and properties (128 bits of SHA-256, hex). Any change CloudFormation
 * would apply to a set changes it.
 * @param resources the sets' template entries by logical id
 */
export function ipSetsHash(resources: TemplateResources): string {
  const sets = Object.entries(resources).map(([id, r]) => {
    const { Type, Properties } = r as { Type?: unknown; Properties?: unknown };
    return [id, { Type, Properties }];
  });
  sets.sort(([a], [b]) => (String(a) < String(b) ? -1 : 1));
  return createHash('sha256').update(canonical(sets)).digest('hex').slice(0, 32);
}

/** A set's template entry, as CloudFormation will get it (overrides included). */
function templateEntry(set: CfnResource): TemplateResources {
  const stack = Stack.of(set);
  // `_toCloudFormation` renders the resource exactly as the template holds it.
  const rendered = (
    set as unknown as { _toCloudFormation(): { Resources: TemplateResources } }
  )._toCloudFormation();
  return stack.resolve(rendered.Resources) as TemplateResources;
}

/**
 * Deploy records for the state table on every create, update and
 * rollback of the IP sets (DESIGN section 1): a custom resource that
 * depends on every set, and whose properties hash theirs, so CloudFormation
 * runs it after it has updated (and so emptied: it rewrites a set's
 * addresses with the template's list) any of them, and never otherwise;
 * and its twin that every set depends on, which runs just before.
 * The reconciler then re-adds what such a deploy wiped, as a reset, not a
 * person's removal.
 *
 * Its handler may write one item kind only: `dynamodb:PutItem` on the
 * state table. With the table in another stack (CLOUDFRONT scope, the
 * pipeline outside us-east-1) it also reads that stack's outputs, to find
 * the table's generated name.
 */
export class DeployRecord extends Construct {
  /** The record written after every set is updated. */
  readonly resource: CustomResource;
  /** The record written before any set is updated. */
  readonly before: CustomResource;
  readonly handler: EdgebanFunction;

  constructor(scope: Construct, id: string, props: DeployRecordProps) {
    super(scope, id);
    const stack = Stack.of(this);
    if (props.ipSets.length === 0) {
      throw new EdgeBanError('a deploy record needs the IP sets it follows, got none');
    }
    for (const set of props.ipSets) {
      if (Stack.of(set) !== stack) {
        throw new EdgeBanError(
          `a deploy record must be in the stack of the IP sets (${Stack.of(set).stackName}), got ${stack.stackName}`,
        );
      }
    }

    this.handler = new EdgebanFunction(this, 'Handler', {
      entry: 'deploy-record/handler.ts',
      description: 'edgeban: records each deploy and rollback of the IP sets in the state table',
      memorySize: 256,
      // One DescribeStacks and one PutItem, with the SDK's retries.
      timeout: Duration.minutes(1),
    });
    const provider = providerFramework(this, this.handler, 'the deploy-record handler');

    const tableStack = Stack.of(props.table);
    const location =
      tableStack === stack ? this.sameStack(props.table) : this.otherStack(props.table, tableStack);

    const hash = Lazy.string({
      produce: () => ipSetsHash(Object.assign({}, ...props.ipSets.map((s) => templateEntry(s)))),
    });
    const record = (cid: string, phase: DeployPhase) =>
      new CustomResource(this, cid, {
        serviceToken: provider.serviceToken,
        resourceType: DEPLOY_RECORD_RESOURCE_TYPE,
        properties: {
          [DEPLOY_RECORD_PROPS.hash]: hash,
          [DEPLOY_RECORD_PROPS.phase]: phase,
          ...location,
        },
      });
    // One record before CloudFormation touches any set, one after all of
    // them: a reconcile that reads a set in between finds a deploy newer
    // than its previous read, whichever side of the wipe it reads on.
    this.before = record('Before', 'before');
    this.resource = record('Resource', 'after');
    for (const set of props.ipSets) {
      set.node.addDependency(this.before);
      this.resource.node.addDependency(set);
    }
  }

  /** The table in this stack: referenced, and granted by its ARN. */
  private sameStack(table: ITable): Record<string, string> {
    this.handler.role.addToPrincipalPolicy(
      new PolicyStatement({ actions: ['dynamodb:PutItem'], resources: [table.tableArn] }),
    );
    return {
      [DEPLOY_RECORD_PROPS.tableName]: table.tableName,
      [DEPLOY_RECORD_PROPS.tableRegion]: Stack.of(this).region,
    };
  }

  /**
   * The table in a stack deployed after this one: named by that stack's
   * output, granted by the name CloudFormation generates for it
   * (`<stack>-<logical id>-<suffix>`, "CloudFormation resource custom
   * naming" in the CloudFormation template reference), all plain strings.
   */
  private otherStack(table: ITable, tableStack: Stack): Record<string, string> {
    const stack = Stack.of(this);
    const region = Token.isUnresolved(tableStack.region) ? stack.region : tableStack.region;
    if (Token.isUnresolved(tableStack.stackName)) {
      throw new EdgeBanError('the state table must be in a stack with a concrete name');
    }
    const cfnTable = table.node.defaultChild as CfnTable | undefined;
    if (cfnTable === undefined) {
      throw new EdgeBanError(`the state table must be a Table made by the app, got ${table}`);
    }
    const logicalId = tableStack.resolve(cfnTable.logicalId) as string;
    const tableArn = stack.formatArn({
      service: 'dynamodb',
      region,
      resource: 'table',
      resourceName: `${tableStack.stackName}-${logicalId}-*`,
      arnFormat: ArnFormat.SLASH_RESOURCE_NAME,
    });
    const stackArn = stack.formatArn({
      service: 'cloudformation',
      region,
      resource: 'stack',
      resourceName: `${tableStack.stackName}/*`,
      arnFormat: ArnFormat.SLASH_RESOURCE_NAME,
    });
    this.handler.role.addToPrincipalPolicy(
      new PolicyStatement({ actions: ['dynamodb:PutItem'], resources: [tableArn] }),
    );
    this.handler.role.addToPrincipalPolicy(
      new PolicyStatement({ actions: ['cloudformation:DescribeStacks'], resources: [stackArn] }),
    );
    Validations.of(this.handler.role).acknowledge(
      {
        id: wildcardResourceFinding(this, tableArn),
        reason:
          "the state table's name is generated by CloudFormation in the pipeline stack, deployed after this one; the pattern matches that one table's generated names, for PutItem only",
      },
      {
        id: wildcardResourceFinding(this, stackArn),
        reason:
          "a stack ARN ends in an id generated at creation; the pattern matches the pipeline stack's name only, for DescribeStacks only (to read its TableName output)",
      },
    );
    return {
      [DEPLOY_RECORD_PROPS.pipelineStack]: tableStack.stackName,
      [DEPLOY_RECORD_PROPS.tableRegion]: region,
    };
  }
}
