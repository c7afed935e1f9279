import { Aws, Duration, RemovalPolicy, Stack, Validations } from 'aws-cdk-lib';
import { CustomWidget } from 'aws-cdk-lib/aws-cloudwatch';
import type { ITable } from 'aws-cdk-lib/aws-dynamodb';
import { PolicyStatement } from 'aws-cdk-lib/aws-iam';
import type { RetentionDays } from 'aws-cdk-lib/aws-logs';
import { Secret } from 'aws-cdk-lib/aws-secretsmanager';
import type { IQueue } from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { ENV } from '../lambda/shared/contract';
import { EdgebanFunction } from './edgeban-function';
import { acknowledgeXray } from './nag';

/** Properties of {@link ConsoleWidget}. */
export interface ConsoleWidgetProps {
  /** The state table. */
  readonly table: ITable;
  /** The `edgeban` config as the handlers read it (`EDGEBAN_CONFIG`). */
  readonly config: string;
  /** The queue that wakes the reconciler. */
  readonly reconcilerQueue: IQueue;
  /** @default RetentionDays.ONE_MONTH */
  readonly logRetention?: RetentionDays;
  /**
   * Widget height in dashboard grid units.
   * @default 20
   */
  readonly height?: number;
}

/** State table actions the read-only function needs: `list`, `check`, `status`, the event log. */
const READ_ACTIONS = ['dynamodb:GetItem', 'dynamodb:Query'];

/** What `unblock` and `block` write: active blocks, pair states, history and the event log. */
const WRITE_ACTIONS = [
  'dynamodb:GetItem',
  'dynamodb:Query',
  'dynamodb:PutItem',
  'dynamodb:DeleteItem',
];

/**
 * A CloudWatch custom widget that reviews and lifts edgeban's blocks
 * (DESIGN section 9), backed by two functions so that IAM says who may look
 * and who may act: the console invokes a custom widget's function with the
 * viewer's own credentials.
 * https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/add_custom_widget_dashboard_about.html
 *
 * - the read-only function renders the widget; its role reads the state
 *   table and the token key, nothing else;
 * - the acting function unblocks and blocks through the state table and
 *   wakes the reconciler; it acts only on a short-lived token the
 *   read-only function minted into the page (`lambda/widget/token.ts`).
 *
 * The token key is a generated Secrets Manager secret that both read.
 */
export class ConsoleWidget extends Construct {
  readonly viewer: EdgebanFunction;
  readonly actor: EdgebanFunction;
  readonly tokenKey: Secret;
  /** The dashboard widget. */
  readonly widget: CustomWidget;

  constructor(scope: Construct, id: string, props: ConsoleWidgetProps) {
    super(scope, id);
    const height = props.height ?? 20;
    if (!Number.isInteger(height) || height < 6 || height > 100) {
      throw new Error(`console widget height must be an integer from 6 to 100, got ${height}`);
    }
    const stack = Stack.of(this);
    const secretName = `${Aws.STACK_NAME}-edgeban-widget-key`;
    this.tokenKey = new Secret(this, 'TokenKey', {
      secretName,
      description: 'edgeban: key of the console widget action tokens (HMAC-SHA256)',
      generateSecretString: { passwordLength: 64, excludePunctuation: true },
      removalPolicy: RemovalPolicy.DESTROY,
    });
    const common = {
      [ENV.tableName]: props.table.tableName,
      [ENV.config]: props.config,
      [ENV.widgetKeySecret]: secretName,
    };
    this.actor = new EdgebanFunction(this, 'Act', {
      entry: 'widget/act-handler.ts',
      description: 'edgeban: console widget actions (unblock, block by hand)',
      memorySize: 512,
      timeout: Duration.seconds(15),
      environment: { ...common, [ENV.reconcilerQueueUrl]: props.reconcilerQueue.queueUrl },
      ...(props.logRetention === undefined ? {} : { logRetention: props.logRetention }),
    });
    this.viewer = new EdgebanFunction(this, 'View', {
      entry: 'widget/view-handler.ts',
      description: 'edgeban: console widget (read-only): blocks, events, status',
      memorySize: 1024,
      timeout: Duration.seconds(15),
      environment: { ...common, [ENV.widgetActArn]: this.actor.function.functionArn },
      ...(props.logRetention === undefined ? {} : { logRetention: props.logRetention }),
    });

    // The key through Parameter Store's reference to Secrets Manager:
    // GetParameter on the reference path, GetSecretValue on the secret.
    // https://docs.aws.amazon.com/systems-manager/latest/userguide/integration-ps-secretsmanager.html
    const keyParameter = stack.formatArn({
      service: 'ssm',
      resource: 'parameter',
      resourceName: `aws/reference/secretsmanager/${secretName}`,
    });
    for (const fn of [this.viewer, this.actor]) {
      fn.role.addToPrincipalPolicy(
        new PolicyStatement({ actions: ['ssm:GetParameter'], resources: [keyParameter] }),
      );
      fn.role.addToPrincipalPolicy(
        new PolicyStatement({
          actions: ['secretsmanager:GetSecretValue'],
          resources: [this.tokenKey.secretArn],
        }),
      );
    }
    this.viewer.role.addToPrincipalPolicy(
      new PolicyStatement({ actions: READ_ACTIONS, resources: [props.table.tableArn] }),
    );
    this.actor.role.addToPrincipalPolicy(
      new PolicyStatement({ actions: WRITE_ACTIONS, resources: [props.table.tableArn] }),
    );
    props.reconcilerQueue.grantSendMessages(this.actor.role);

    this.widget = new CustomWidget({
      functionArn: this.viewer.function.functionArn,
      title: 'edgeban: blocks (review, check, unblock)',
      width: 24,
      height,
      // The time range does not change what is blocked now.
      updateOnTimeRangeChange: false,
      updateOnResize: false,
      updateOnRefresh: true,
    });
    this.acknowledge();
  }

  private acknowledge(): void {
    const runtime =
      'edgeban targets Node 22 (nodejs22.x, supported into 2027): the version its engine, bench and tests run on';
    for (const fn of [this.viewer, this.actor]) {
      Validations.of(fn.function).acknowledge(
        { id: 'AwsSolutions-L1', reason: runtime },
        { id: 'Serverless-LambdaLatestVersion', reason: runtime },
        {
          id: 'Serverless-LambdaDLQ',
          reason:
            'the CloudWatch console invokes the widget functions synchronously and shows the answer; a dead-letter queue applies only to asynchronous invocations',
        },
      );
      acknowledgeXray(fn.role);
    }
    Validations.of(this.tokenKey).acknowledge({
      id: 'AwsSolutions-SMG4',
      reason:
        'the widget key only signs action tokens that expire in 15 minutes; to rotate it, put a new value and redeploy the two widget functions, which read it at start',
    });
  }
}
