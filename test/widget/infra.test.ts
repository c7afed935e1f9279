import { Match, type Template } from 'aws-cdk-lib/assertions';
import { describe, expect, it } from 'vitest';
import { OUTPUTS } from '../../lambda/shared/contract';
import { actions, logicalId, resources, synth } from '../infra/app';

/** The statements of the one IAM policy attached to the role whose id starts with `rolePrefix`. */
function roleStatements(t: Template, rolePrefix: string): Record<string, unknown>[] {
  const role = logicalId(t, 'AWS::IAM::Role', rolePrefix);
  const out: Record<string, unknown>[] = [];
  for (const p of Object.values(t.findResources('AWS::IAM::Policy'))) {
    const props = (
      p as {
        Properties: { Roles: unknown[]; PolicyDocument: { Statement: Record<string, unknown>[] } };
      }
    ).Properties;
    if (JSON.stringify(props.Roles).includes(`"${role}"`))
      out.push(...props.PolicyDocument.Statement);
  }
  return out;
}

const allActions = (s: Record<string, unknown>[]) => s.flatMap(actions).sort();

describe('the console widget in the pipeline stack', () => {
  const { pipeline: t } = synth();

  it('puts a full-width custom widget backed by the read-only function on the dashboard', () => {
    const view = logicalId(t, 'AWS::Lambda::Function', 'EdgeBanConsoleWidgetViewFunction');
    const dashboards = Object.values(t.findResources('AWS::CloudWatch::Dashboard'));
    expect(dashboards).toHaveLength(1);
    const body = JSON.stringify(dashboards[0]);
    expect(body).toContain('\\"type\\":\\"custom\\"');
    expect(body).toContain('\\"width\\":24,\\"height\\":20');
    expect(body).toContain(`{"Fn::GetAtt":["${view}","Arn"]}`);
    expect(body).toContain(
      '\\"updateOn\\":{\\"refresh\\":true,\\"resize\\":false,\\"timeRange\\":false}',
    );
  });

  it('lets the read-only function read the table and the key, and nothing else', () => {
    const s = roleStatements(t, 'EdgeBanConsoleWidgetViewRole');
    expect(allActions(s)).toEqual([
      'dynamodb:GetItem',
      'dynamodb:Query',
      'logs:CreateLogStream',
      'logs:PutLogEvents',
      'secretsmanager:GetSecretValue',
      'ssm:GetParameter',
      'xray:PutTelemetryRecords',
      'xray:PutTraceSegments',
    ]);
    const table = logicalId(t, 'AWS::DynamoDB::Table', 'EdgeBanTable');
    const dynamo = s.find((x) => actions(x).includes('dynamodb:Query'));
    expect(resources(dynamo!)).toEqual([{ 'Fn::GetAtt': [table, 'Arn'] }]);
  });

  it('lets the acting function write the table and wake the reconciler, and not touch WAF', () => {
    const s = roleStatements(t, 'EdgeBanConsoleWidgetActRole');
    const all = allActions(s);
    expect(all).toEqual(
      expect.arrayContaining(['dynamodb:PutItem', 'dynamodb:DeleteItem', 'sqs:SendMessage']),
    );
    expect(all.filter((a) => a.startsWith('wafv2:'))).toEqual([]);
    expect(all).not.toContain('dynamodb:Scan');
    const queue = logicalId(t, 'AWS::SQS::Queue', 'EdgeBanReconcilerQueue');
    const sqs = s.find((x) => actions(x).includes('sqs:SendMessage'));
    expect(resources(sqs!)).toEqual([{ 'Fn::GetAtt': [queue, 'Arn'] }]);
  });

  it('scopes the key to its secret and its Parameter Store reference', () => {
    const secret = logicalId(t, 'AWS::SecretsManager::Secret', 'EdgeBanConsoleWidgetTokenKey');
    t.hasResourceProperties('AWS::SecretsManager::Secret', {
      GenerateSecretString: { PasswordLength: 64, ExcludePunctuation: true },
    });
    for (const role of ['EdgeBanConsoleWidgetViewRole', 'EdgeBanConsoleWidgetActRole']) {
      const s = roleStatements(t, role);
      const get = s.find((x) => actions(x).includes('secretsmanager:GetSecretValue'));
      expect(resources(get!)).toEqual([{ Ref: secret }]);
      const param = s.find((x) => actions(x).includes('ssm:GetParameter'));
      expect(JSON.stringify(resources(param!))).toContain(
        ':parameter/aws/reference/secretsmanager/',
      );
    }
  });

  it('names both functions in the stack outputs, for the IAM policies of the README', () => {
    const view = logicalId(t, 'AWS::Lambda::Function', 'EdgeBanConsoleWidgetViewFunction');
    const act = logicalId(t, 'AWS::Lambda::Function', 'EdgeBanConsoleWidgetActFunction');
    t.hasOutput(OUTPUTS.widgetViewFunctionArn, { Value: { 'Fn::GetAtt': [view, 'Arn'] } });
    t.hasOutput(OUTPUTS.widgetActFunctionArn, { Value: { 'Fn::GetAtt': [act, 'Arn'] } });
  });

  it('tells the read-only function where the acting one is, and the acting one where the reconciler queue is', () => {
    const act = logicalId(t, 'AWS::Lambda::Function', 'EdgeBanConsoleWidgetActFunction');
    t.hasResourceProperties('AWS::Lambda::Function', {
      Description: Match.stringLikeRegexp('console widget \\(read-only\\)'),
      Environment: {
        Variables: Match.objectLike({
          EDGEBAN_WIDGET_ACT_ARN: { 'Fn::GetAtt': [act, 'Arn'] },
          EDGEBAN_WIDGET_KEY_SECRET: Match.anyValue(),
        }),
      },
    });
    t.hasResourceProperties('AWS::Lambda::Function', {
      Description: Match.stringLikeRegexp('console widget actions'),
      Environment: {
        Variables: Match.objectLike({
          EDGEBAN_RECONCILER_QUEUE_URL: Match.anyValue(),
          EDGEBAN_WIDGET_KEY_SECRET: Match.anyValue(),
        }),
      },
    });
  });
});
