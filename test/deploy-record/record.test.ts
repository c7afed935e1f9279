/**
 * The deploy-record handler against dynalite (real SDK v3 clients on
 * 127.0.0.1): the record the reconciler reads, written on create, update
 * (a rollback arrives as one) and delete; the table found through the
 * pipeline stack's output when it lives there (CloudFormation mocked, the
 * only client this needs); and a deploy before the table exists tolerated,
 * never failing the stack.
 */
import { randomUUID } from 'node:crypto';
import { CloudFormationClient, DescribeStacksCommand } from '@aws-sdk/client-cloudformation';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import type { CloudFormationCustomResourceEvent } from 'aws-lambda';
import { mockClient } from 'aws-sdk-client-mock';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  DEPLOY_RECORD_PHYSICAL_ID,
  DEPLOY_RECORD_PROPS,
  type DeployRecordDeps,
  DeployRecordPropertyError,
  deployRecordPhysicalId,
  onDeployEvent,
} from '../../lambda/deploy-record/record';
import { OUTPUTS } from '../../lambda/shared/contract';
import { readDeploysSince } from '../../lambda/state/deploys';
import { ensureTable } from '../../lambda/state/table';
import { type LocalCloud, startLocalCloud } from '../../local/cloud';
import { customResourceEvent } from '../fixtures/cfn-event';

const T0 = Date.UTC(2024, 4, 1, 10, 0, 0);
const STACK_ID = 'arn:aws:cloudformation:us-east-1:123456789012:stack/EdgebanWaf/0f3a';

let cloud: LocalCloud;
let ddb: DynamoDBDocumentClient;
const cfn = mockClient(CloudFormationClient);
const regions: string[] = [];

beforeAll(async () => {
  cloud = await startLocalCloud();
  ddb = DynamoDBDocumentClient.from(cloud.clients({ maxAttempts: 1 }).dynamodb);
});

afterAll(async () => {
  await cloud?.stop();
});

beforeEach(() => {
  cfn.reset();
  regions.length = 0;
});

function deps(clock = T0): DeployRecordDeps {
  return {
    ddb: (region) => {
      regions.push(region);
      return ddb;
    },
    cloudformation: () => new CloudFormationClient({ region: 'eu-west-1' }),
    now: () => clock,
  };
}

async function newTable(): Promise<string> {
  const name = `edgeban-${randomUUID()}`;
  await ensureTable(cloud.clients({ maxAttempts: 1 }).dynamodb, name);
  return name;
}

function event(
  type: 'Create' | 'Update' | 'Delete',
  props: Record<string, string>,
  requestId = randomUUID(),
): CloudFormationCustomResourceEvent {
  return customResourceEvent(type, props, {
    resourceType: 'Custom::EdgebanDeployRecord',
    logicalId: 'WafDeployRecord762157E0',
    stackId: STACK_ID,
    requestId,
    physicalId: DEPLOY_RECORD_PHYSICAL_ID,
  });
}

const sameStack = (table: string, hash = 'a'.repeat(32)) => ({
  [DEPLOY_RECORD_PROPS.hash]: hash,
  [DEPLOY_RECORD_PROPS.tableName]: table,
  [DEPLOY_RECORD_PROPS.tableRegion]: 'us-east-1',
});

describe('onDeployEvent with the table in the same stack', () => {
  it('records a create, an update and a delete, each with its hash and time', async () => {
    const table = await newTable();
    const results = [];
    results.push(await onDeployEvent(event('Create', sameStack(table, 'h1')), deps(T0)));
    results.push(await onDeployEvent(event('Update', sameStack(table, 'h2')), deps(T0 + 60_000)));
    results.push(await onDeployEvent(event('Delete', sameStack(table, 'h2')), deps(T0 + 120_000)));
    for (const r of results) {
      expect(r).toMatchObject({
        PhysicalResourceId: DEPLOY_RECORD_PHYSICAL_ID,
        Data: { Recorded: 'true' },
      });
    }
    const records = await readDeploysSince(ddb, table, T0);
    expect(records.map(({ at, kind, hash, stack }) => ({ at, kind, hash, stack }))).toEqual([
      { at: T0, kind: 'Create', hash: 'h1', stack: STACK_ID },
      { at: T0 + 60_000, kind: 'Update', hash: 'h2', stack: STACK_ID },
      { at: T0 + 120_000, kind: 'Delete', hash: 'h2', stack: STACK_ID },
    ]);
    expect(regions).toEqual(['us-east-1', 'us-east-1', 'us-east-1']);
  });

  it('records the phase, under a fixed physical id per phase', async () => {
    const table = await newTable();
    const before = await onDeployEvent(
      event('Update', { ...sameStack(table, 'h'), [DEPLOY_RECORD_PROPS.phase]: 'before' }),
      deps(T0),
    );
    const after = await onDeployEvent(
      event('Update', { ...sameStack(table, 'h'), [DEPLOY_RECORD_PROPS.phase]: 'after' }),
      deps(T0 + 5000),
    );
    expect([before.PhysicalResourceId, after.PhysicalResourceId]).toEqual([
      deployRecordPhysicalId('before'),
      deployRecordPhysicalId('after'),
    ]);
    expect(before.PhysicalResourceId).not.toBe(after.PhysicalResourceId);
    const records = await readDeploysSince(ddb, table, 0);
    expect(records.map((r) => [r.at, r.phase])).toEqual([
      [T0, 'before'],
      [T0 + 5000, 'after'],
    ]);
    await expect(
      onDeployEvent(
        event('Update', { ...sameStack(table), [DEPLOY_RECORD_PROPS.phase]: 'during' }),
        deps(),
      ),
    ).rejects.toThrow(/Phase is missing or invalid, got "during"/);
  });

  it('writes one record for a retried event', async () => {
    const table = await newTable();
    const e = event('Update', sameStack(table));
    await onDeployEvent(e, deps(T0));
    await onDeployEvent(e, deps(T0));
    expect(await readDeploysSince(ddb, table, 0)).toHaveLength(1);
  });

  it('succeeds without a record when the table does not exist yet', async () => {
    const r = await onDeployEvent(event('Create', sameStack(`edgeban-${randomUUID()}`)), deps());
    expect(r.Data).toMatchObject({
      Recorded: 'false',
      Why: expect.stringMatching(/does not exist yet/),
    });
  });

  it('never fails the deployment when the write fails: it reports it instead', async () => {
    const failing: DeployRecordDeps = {
      ...deps(),
      ddb: () =>
        ({
          send: async () => {
            throw Object.assign(new Error('User is not authorized to perform: dynamodb:PutItem'), {
              name: 'AccessDeniedException',
            });
          },
        }) as unknown as DynamoDBDocumentClient,
    };
    const r = await onDeployEvent(event('Update', sameStack('t')), failing);
    expect(r).toEqual({
      PhysicalResourceId: DEPLOY_RECORD_PHYSICAL_ID,
      Data: {
        Recorded: 'false',
        Why: expect.stringMatching(/^deploy record not written \(AccessDeniedException/),
      },
    });
  });

  it('refuses a template without the hash or without a table', async () => {
    await expect(
      onDeployEvent(
        event('Create', {
          [DEPLOY_RECORD_PROPS.tableRegion]: 'us-east-1',
          [DEPLOY_RECORD_PROPS.tableName]: 't',
        }),
        deps(),
      ),
    ).rejects.toThrow(DeployRecordPropertyError);
    await expect(
      onDeployEvent(
        event('Create', {
          [DEPLOY_RECORD_PROPS.hash]: 'h',
          [DEPLOY_RECORD_PROPS.tableRegion]: 'us-east-1',
        }),
        deps(),
      ),
    ).rejects.toThrow(/TableName or PipelineStack/);
  });
});

describe('onDeployEvent with the table in the pipeline stack of another region', () => {
  const viaPipeline = {
    [DEPLOY_RECORD_PROPS.hash]: 'b'.repeat(32),
    [DEPLOY_RECORD_PROPS.pipelineStack]: 'Edgeban',
    [DEPLOY_RECORD_PROPS.tableRegion]: 'eu-west-1',
  };

  it("writes to the table the stack's TableName output names, in that region", async () => {
    const table = await newTable();
    cfn.on(DescribeStacksCommand, { StackName: 'Edgeban' }).resolves({
      Stacks: [
        {
          StackName: 'Edgeban',
          StackStatus: 'UPDATE_COMPLETE',
          CreationTime: new Date(T0),
          Outputs: [
            { OutputKey: OUTPUTS.queueUrl, OutputValue: 'https://sqs' },
            { OutputKey: OUTPUTS.tableName, OutputValue: table },
          ],
        },
      ],
    });
    const r = await onDeployEvent(event('Update', viaPipeline), deps());
    expect(r.Data.Recorded).toBe('true');
    expect(regions).toEqual(['eu-west-1']);
    const [only] = await readDeploysSince(ddb, table, 0);
    expect(only).toMatchObject({ kind: 'Update', hash: 'b'.repeat(32), stack: STACK_ID });
  });

  it('succeeds without a record when the pipeline stack does not exist yet (WAF stack first)', async () => {
    cfn.on(DescribeStacksCommand).rejects(
      Object.assign(new Error('Stack with id Edgeban does not exist'), {
        name: 'ValidationError',
      }),
    );
    const r = await onDeployEvent(event('Create', viaPipeline), deps());
    expect(r.Data).toEqual({ Recorded: 'false', Why: 'stack Edgeban has no state table yet' });
    expect(regions).toEqual([]);
  });

  it('succeeds without a record while the pipeline stack has no outputs yet', async () => {
    cfn.on(DescribeStacksCommand).resolves({
      Stacks: [
        { StackName: 'Edgeban', StackStatus: 'CREATE_IN_PROGRESS', CreationTime: new Date(T0) },
      ],
    });
    const r = await onDeployEvent(event('Create', viaPipeline), deps());
    expect(r.Data.Recorded).toBe('false');
  });

  it('reports, without failing, a lookup that is refused', async () => {
    cfn.on(DescribeStacksCommand).rejects(
      Object.assign(new Error('not authorized to perform: cloudformation:DescribeStacks'), {
        name: 'AccessDenied',
      }),
    );
    const r = await onDeployEvent(event('Update', viaPipeline), deps());
    expect(r.Data).toMatchObject({ Recorded: 'false', Why: expect.stringMatching(/AccessDenied/) });
  });
});
