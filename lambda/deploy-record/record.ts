/**
 * The deploy-record custom resource (DESIGN section 1, "Resets and stale
 * reads are not unblocks"): CloudFormation runs it after it has created,
 * updated or rolled back any IP set of the stack, because the resource
 * depends on every set and its properties hash theirs. It writes one
 * deploy record to the state table, so the reconciler can tell that
 * addresses missing from a set right after were wiped by CloudFormation
 * (which rewrites a set's addresses with the template's empty list on each
 * update: aws-waf-security-automations issue #233), not removed by a
 * person.
 *
 * The state table may live in another stack and Region (CLOUDFRONT scope
 * with the log bucket outside us-east-1: the sets are in the `EdgebanWaf`
 * stack, the table in the pipeline stack, which is deployed after it). The
 * resource then names the pipeline stack and Region, and the table is
 * found through that stack's `TableName` output, which exists from the
 * pipeline's first deploy on: so the record is written even when the WAF
 * stack is deployed alone, and on the first update after an upgrade.
 * Before the pipeline stack or its table exists no block can exist yet,
 * and there is nothing to record.
 *
 * A record that cannot be written never fails the deployment: failing it
 * would roll the stack back, which updates (and so empties) the sets once
 * more. The failure is logged, reported in the resource's data, and the
 * reconciler's mass-loss rule (more than max(10, 10%) of a set) still
 * catches a reset without a record.
 */
import { type CloudFormationClient, DescribeStacksCommand } from '@aws-sdk/client-cloudformation';
import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import type { CloudFormationCustomResourceEvent } from 'aws-lambda';
import { OUTPUTS } from '../shared/contract';
import { type DeployKind, type DeployPhase, recordDeploy } from '../state/deploys';

/** The one physical id: an update never replaces the resource, so no Delete follows it. */
export const DEPLOY_RECORD_PHYSICAL_ID = 'edgeban-deploy-record';

/**
 * The resource's properties, as the CDK app writes them (`lib/deploy-record.ts`).
 * Exactly one of `TableName` and `PipelineStack` is set.
 */
export const DEPLOY_RECORD_PROPS = {
  /** Hash of the IP sets' CloudFormation properties. */
  hash: 'IpSetsHash',
  /** The state table, when it is in the same stack. */
  tableName: 'TableName',
  /** The pipeline stack whose `TableName` output names the state table. */
  pipelineStack: 'PipelineStack',
  /** Region of the state table (and of the pipeline stack). */
  tableRegion: 'TableRegion',
  /** `before` or `after` the sets change (see `DeployPhase`). */
  phase: 'Phase',
} as const;

/** A property the template must set is missing or malformed. */
export class DeployRecordPropertyError extends Error {
  constructor(name: string, value: unknown) {
    super(`custom resource property ${name} is missing or invalid, got ${JSON.stringify(value)}`);
    this.name = 'DeployRecordPropertyError';
  }
}

/** Clients and clock of {@link onDeployEvent}. */
export interface DeployRecordDeps {
  /** A document client for the table's Region. */
  readonly ddb: (region: string) => DynamoDBDocumentClient;
  /** A CloudFormation client for the pipeline stack's Region. */
  readonly cloudformation: (region: string) => CloudFormationClient;
  /** Epoch milliseconds. */
  readonly now: () => number;
  /** @default - no logging */
  readonly log?: (
    level: 'info' | 'error',
    message: string,
    extra?: Record<string, unknown>,
  ) => void;
}

/** What the provider framework sends back to CloudFormation. */
export interface DeployRecordResult {
  readonly PhysicalResourceId: string;
  readonly Data: { readonly Recorded: 'true' | 'false'; readonly Why: string };
}

function stringProp(props: Record<string, unknown>, name: string): string | undefined {
  const value = props[name];
  if (value === undefined || value === '') return undefined;
  if (typeof value !== 'string') throw new DeployRecordPropertyError(name, value);
  return value;
}

function requiredProp(props: Record<string, unknown>, name: string): string {
  const value = stringProp(props, name);
  if (value === undefined) throw new DeployRecordPropertyError(name, props[name]);
  return value;
}

function errorName(err: unknown): string {
  return err instanceof Error ? err.name : typeof err;
}

/**
 * The state table named by the pipeline stack's `TableName` output, or
 * null while that stack or the output does not exist (CloudFormation
 * answers DescribeStacks for a missing stack with a `ValidationError`
 * "Stack with id ... does not exist").
 */
export async function pipelineTable(
  cloudformation: CloudFormationClient,
  stackName: string,
): Promise<string | null> {
  try {
    const { Stacks: stacks } = await cloudformation.send(
      new DescribeStacksCommand({ StackName: stackName }),
    );
    const output = stacks?.[0]?.Outputs?.find((o) => o.OutputKey === OUTPUTS.tableName);
    return output?.OutputValue === undefined || output.OutputValue === ''
      ? null
      : output.OutputValue;
  } catch (err) {
    if (errorName(err) === 'ValidationError' && /does not exist/.test(String(err))) return null;
    throw err;
  }
}

/** The resource's properties, checked. */
interface Target {
  readonly hash: string;
  readonly region: string;
  readonly phase: DeployPhase | undefined;
  /** The table, or the pipeline stack whose output names it. */
  readonly table: { readonly name: string } | { readonly stack: string };
}

function target(props: Record<string, unknown>): Target {
  const hash = requiredProp(props, DEPLOY_RECORD_PROPS.hash);
  const region = requiredProp(props, DEPLOY_RECORD_PROPS.tableRegion);
  const named = stringProp(props, DEPLOY_RECORD_PROPS.tableName);
  const pipeline = stringProp(props, DEPLOY_RECORD_PROPS.pipelineStack);
  const phase = stringProp(props, DEPLOY_RECORD_PROPS.phase);
  if (phase !== undefined && phase !== 'before' && phase !== 'after') {
    throw new DeployRecordPropertyError(DEPLOY_RECORD_PROPS.phase, phase);
  }
  if ((named === undefined) === (pipeline === undefined)) {
    throw new DeployRecordPropertyError(
      `${DEPLOY_RECORD_PROPS.tableName} or ${DEPLOY_RECORD_PROPS.pipelineStack}`,
      { [DEPLOY_RECORD_PROPS.tableName]: named, [DEPLOY_RECORD_PROPS.pipelineStack]: pipeline },
    );
  }
  return {
    hash,
    region,
    phase,
    table: named === undefined ? { stack: pipeline as string } : { name: named },
  };
}

/** The physical id of a phase's resource: fixed, so an update never replaces it. */
export function deployRecordPhysicalId(phase: DeployPhase | undefined): string {
  return phase === undefined ? DEPLOY_RECORD_PHYSICAL_ID : `${DEPLOY_RECORD_PHYSICAL_ID}-${phase}`;
}

/**
 * Handles one CloudFormation event: writes the deploy record (Create,
 * Update and Delete alike; a rollback arrives as an Update with the old
 * properties) and never fails the deployment for it.
 * @throws DeployRecordPropertyError when the template's properties are malformed
 */
export async function onDeployEvent(
  event: CloudFormationCustomResourceEvent,
  deps: DeployRecordDeps,
): Promise<DeployRecordResult> {
  const t = target(event.ResourceProperties as Record<string, unknown>);
  const kind: DeployKind = event.RequestType;
  const result = (recorded: boolean, why: string, level: 'info' | 'error'): DeployRecordResult => {
    deps.log?.(level, why, { kind, phase: t.phase, hash: t.hash, region: t.region });
    return {
      PhysicalResourceId: deployRecordPhysicalId(t.phase),
      Data: { Recorded: recorded ? 'true' : 'false', Why: why },
    };
  };
  const at = deps.now();
  let table: string | null = null;
  try {
    table =
      'name' in t.table
        ? t.table.name
        : await pipelineTable(deps.cloudformation(t.region), t.table.stack);
    if (table === null && 'stack' in t.table) {
      return result(false, `stack ${t.table.stack} has no state table yet`, 'info');
    }
    await recordDeploy(deps.ddb(t.region), table as string, {
      at,
      kind,
      hash: t.hash,
      stack: event.StackId,
      requestId: event.RequestId,
      ...(t.phase === undefined ? {} : { phase: t.phase }),
    });
    return result(true, `${kind} recorded in ${table}`, 'info');
  } catch (err) {
    // No table yet: no block can exist yet either.
    if (errorName(err) === 'ResourceNotFoundException') {
      return result(false, `state table ${table} does not exist yet`, 'info');
    }
    return result(false, `deploy record not written (${errorName(err)}: ${String(err)})`, 'error');
  }
}
