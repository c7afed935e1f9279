/**
 * The deploy record (DESIGN section 1): a custom resource in the stack of
 * the IP sets, after every set, whose properties hash theirs, with a
 * handler that may only put items in the state table; in both layouts,
 * including the us-east-1 `EdgebanWaf` stack whose table lives in the
 * pipeline stack of another region, deployed after it.
 */
import { Match, type Template } from 'aws-cdk-lib/assertions';
import { beforeAll, describe, expect, it } from 'vitest';
import { DEPLOY_RECORD_PROPS } from '../../lambda/deploy-record/record';
import { DEPLOY_RECORD_RESOURCE_TYPE, ipSetsHash } from '../../lib/deploy-record';
import { actions, logicalId, resources, type Synthesized, statements, synth } from './app';

interface Resource {
  readonly Properties: Record<string, unknown>;
  readonly DependsOn?: string[];
}

/** The record of a phase: `after` every set is updated, or `before` any is. */
function record(t: Template, phase: 'before' | 'after' = 'after'): Resource {
  const found = Object.values(t.findResources(DEPLOY_RECORD_RESOURCE_TYPE)) as Resource[];
  expect(found).toHaveLength(2);
  const one = found.filter((r) => r.Properties[DEPLOY_RECORD_PROPS.phase] === phase);
  expect(one).toHaveLength(1);
  return one[0]!;
}

/** Logical id of the record of a phase. */
function recordId(t: Template, phase: 'before' | 'after'): string {
  const [id] = Object.entries(t.findResources(DEPLOY_RECORD_RESOURCE_TYPE)).find(
    ([, r]) => r.Properties[DEPLOY_RECORD_PROPS.phase] === phase,
  )!;
  return id;
}

/** Statements of the deploy-record handler's role. */
function handlerStatements(t: Template): Record<string, unknown>[] {
  const role = logicalId(
    t,
    'AWS::IAM::Role',
    Object.keys(t.findResources('AWS::IAM::Role')).find((id) =>
      /DeployRecordHandlerRole/.test(id),
    )!,
  );
  const out: Record<string, unknown>[] = [];
  for (const policy of Object.values(t.findResources('AWS::IAM::Policy'))) {
    const p = policy as {
      Properties: { Roles: unknown[]; PolicyDocument: { Statement: Record<string, unknown>[] } };
    };
    if (JSON.stringify(p.Properties.Roles) === JSON.stringify([{ Ref: role }])) {
      out.push(...p.Properties.PolicyDocument.Statement);
    }
  }
  return out;
}

const sets = (t: Template) => t.findResources('AWS::WAFv2::IPSet');

describe('with the sets and the table in one stack', () => {
  let t: Template;
  let table: string;
  beforeAll(() => {
    t = synth({ ipSets: { ipv4: 2, ipv6: 2 } }).pipeline;
    table = logicalId(t, 'AWS::DynamoDB::Table', 'EdgeBanTable');
  });

  it('runs after every IP set, and its twin before any', () => {
    expect([...(record(t).DependsOn ?? [])].sort()).toEqual(Object.keys(sets(t)).sort());
    const before = recordId(t, 'before');
    for (const set of Object.values(sets(t))) expect(set.DependsOn).toEqual([before]);
    expect(record(t, 'before').DependsOn).toBeUndefined();
    expect(record(t, 'before').Properties[DEPLOY_RECORD_PROPS.hash]).toBe(
      record(t).Properties[DEPLOY_RECORD_PROPS.hash],
    );
  });

  it("hashes the sets' properties as the template holds them", () => {
    const hash = record(t).Properties[DEPLOY_RECORD_PROPS.hash];
    expect(hash).toBe(ipSetsHash(sets(t)));
    expect(hash).toMatch(/^[0-9a-f]{32}$/);
  });

  it('names the table by reference, in this region', () => {
    expect(record(t).Properties).toMatchObject({
      [DEPLOY_RECORD_PROPS.tableName]: { Ref: table },
      [DEPLOY_RECORD_PROPS.tableRegion]: 'us-east-1',
    });
    expect(record(t).Properties[DEPLOY_RECORD_PROPS.pipelineStack]).toBeUndefined();
  });

  it('lets the handler put items in the state table and nothing else', () => {
    const own = handlerStatements(t).filter(
      (s) => !actions(s).some((a) => a.startsWith('logs:') || a.startsWith('xray:')),
    );
    expect(own).toEqual([
      { Effect: 'Allow', Action: 'dynamodb:PutItem', Resource: { 'Fn::GetAtt': [table, 'Arn'] } },
    ]);
  });

  it('runs its handler on Node 22, ARM64, with a bounded timeout', () => {
    t.hasResourceProperties('AWS::Lambda::Function', {
      Description: Match.stringLikeRegexp('records each deploy and rollback'),
      Runtime: 'nodejs22.x',
      Architectures: ['arm64'],
      Timeout: 60,
    });
  });
});

describe('with the sets in EdgebanWaf (us-east-1) and the table in the eu-west-1 pipeline', () => {
  let s: Synthesized;
  let waf: Template;
  beforeAll(() => {
    s = synth({ logs: { prefix: 'cf/' } }, 'eu-west-1');
    waf = s.waf!;
  });

  it('is in the WAF stack, around every IP set, and the pipeline deploys after it', () => {
    expect([...(record(waf).DependsOn ?? [])].sort()).toEqual(Object.keys(sets(waf)).sort());
    const before = recordId(waf, 'before');
    for (const set of Object.values(sets(waf))) expect(set.DependsOn).toEqual([before]);
    expect(Object.keys(s.pipeline.findResources(DEPLOY_RECORD_RESOURCE_TYPE))).toEqual([]);
    expect(s.stacks.pipeline.dependencies).toContain(s.stacks.waf);
    expect(s.stacks.waf!.dependencies).toEqual([]);
  });

  it('finds the table through the pipeline stack, named as plain strings', () => {
    expect(record(waf).Properties).toMatchObject({
      [DEPLOY_RECORD_PROPS.hash]: ipSetsHash(sets(waf)),
      [DEPLOY_RECORD_PROPS.pipelineStack]: 'Edgeban',
      [DEPLOY_RECORD_PROPS.tableRegion]: 'eu-west-1',
    });
    expect(record(waf).Properties[DEPLOY_RECORD_PROPS.tableName]).toBeUndefined();
    // Nothing of the pipeline stack is referenced: it deploys after this one.
    expect(JSON.stringify(waf.toJSON())).not.toMatch(/Fn::ImportValue|EdgeBanTable[0-9A-F]{8}"/);
  });

  it("may only put items in the pipeline's table and read the pipeline stack", () => {
    const own = handlerStatements(waf).filter(
      (st) => !actions(st).some((a) => a.startsWith('logs:') || a.startsWith('xray:')),
    );
    const table = logicalId(s.pipeline, 'AWS::DynamoDB::Table', 'EdgeBanTable');
    const arn = (service: string, name: string) =>
      `arn:aws:${service}:eu-west-1:123456789012:${name}`;
    expect(own).toEqual([
      {
        Effect: 'Allow',
        Action: 'dynamodb:PutItem',
        Resource: arn('dynamodb', `table/Edgeban-${table}-*`),
      },
      {
        Effect: 'Allow',
        Action: 'cloudformation:DescribeStacks',
        Resource: arn('cloudformation', 'stack/Edgeban/*'),
      },
    ]);
    expect(
      statements(waf)
        .flatMap(actions)
        .filter((a) => a.startsWith('dynamodb:')),
    ).toEqual(['dynamodb:PutItem']);
    expect(resources(own[0]!)).toHaveLength(1);
  });
});

describe('with a stage', () => {
  it("finds the staged pipeline stack's table, and may write only to it", () => {
    const s = synth({ stage: 'prod' }, 'eu-west-1');
    const waf = s.waf!;
    expect(record(waf).Properties[DEPLOY_RECORD_PROPS.pipelineStack]).toBe('Edgeban-prod');
    const table = logicalId(s.pipeline, 'AWS::DynamoDB::Table', 'EdgeBanTable');
    const put = handlerStatements(waf).find((st) => actions(st).includes('dynamodb:PutItem'));
    expect(put?.Resource).toBe(
      `arn:aws:dynamodb:eu-west-1:123456789012:table/Edgeban-prod-${table}-*`,
    );
  });
});
