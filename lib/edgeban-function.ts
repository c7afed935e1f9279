import { fileURLToPath } from 'node:url';
import { type Duration, RemovalPolicy } from 'aws-cdk-lib';
import { type IRole, PolicyStatement, Role, ServicePrincipal } from 'aws-cdk-lib/aws-iam';
import { Architecture, Runtime, Tracing } from 'aws-cdk-lib/aws-lambda';
import { NodejsFunction, OutputFormat } from 'aws-cdk-lib/aws-lambda-nodejs';
import { LogGroup, RetentionDays } from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';

/** Properties of an {@link EdgebanFunction}. */
export interface EdgebanFunctionProps {
  /** Handler entry, relative to the repository's `lambda/` folder (`ingest/handler.ts`). */
  readonly entry: string;
  readonly description: string;
  readonly memorySize: number;
  readonly timeout: Duration;
  /** @default - none */
  readonly environment?: Readonly<Record<string, string>>;
  /** @default RetentionDays.ONE_MONTH */
  readonly logRetention?: RetentionDays;
}

/** The repository's `lambda/` folder, next to `lib/`. */
const LAMBDA_DIR = fileURLToPath(new URL('../lambda/', import.meta.url));
/** Bundling resolves dependencies from edgeban's lock file wherever the app runs from. */
const LOCK_FILE = fileURLToPath(new URL('../package-lock.json', import.meta.url));
const PROJECT_ROOT = fileURLToPath(new URL('..', import.meta.url));

/**
 * A Node.js handler of edgeban, built the same way everywhere: bundled with
 * the local esbuild (no Docker), minified with source maps, ARM64 on Node
 * 22, X-Ray tracing, and an explicit log group with retention. Its role
 * starts empty: no AWS managed policy, only the log group it writes to;
 * callers grant the rest. It never reserves concurrency: Lambda refuses a
 * reservation that leaves the account fewer than 100 unreserved
 * executions, which a new account (a quota of 10 or 50) cannot spare
 * (https://docs.aws.amazon.com/lambda/latest/dg/configuration-concurrency.html).
 */
export class EdgebanFunction extends Construct {
  /** The handler entry, relative to `lambda/` (`ingest/handler.ts`). */
  readonly entry: string;
  readonly function: NodejsFunction;
  readonly role: IRole;
  readonly logGroup: LogGroup;

  constructor(scope: Construct, id: string, props: EdgebanFunctionProps) {
    super(scope, id);
    this.entry = props.entry;
    this.logGroup = new LogGroup(this, 'Logs', {
      retention: props.logRetention ?? RetentionDays.ONE_MONTH,
      removalPolicy: RemovalPolicy.DESTROY,
    });
    const role = new Role(this, 'Role', {
      assumedBy: new ServicePrincipal('lambda.amazonaws.com'),
      description: props.description,
    });
    // The log group is explicit, so Lambda never creates one: streams and
    // events only, on this group only.
    role.addToPrincipalPolicy(
      new PolicyStatement({
        actions: ['logs:CreateLogStream', 'logs:PutLogEvents'],
        resources: [this.logGroup.logGroupArn],
      }),
    );
    this.role = role;
    this.function = new NodejsFunction(this, 'Function', {
      entry: `${LAMBDA_DIR}${props.entry}`,
      depsLockFilePath: LOCK_FILE,
      projectRoot: PROJECT_ROOT,
      handler: 'handler',
      description: props.description,
      runtime: Runtime.NODEJS_22_X,
      architecture: Architecture.ARM_64,
      memorySize: props.memorySize,
      timeout: props.timeout,
      role,
      logGroup: this.logGroup,
      tracing: Tracing.ACTIVE,
      environment: { ...props.environment, NODE_OPTIONS: '--enable-source-maps' },
      bundling: {
        minify: true,
        sourceMap: true,
        sourcesContent: false,
        target: 'node22',
        format: OutputFormat.ESM,
        mainFields: ['module', 'main'],
        // CommonJS dependencies inside an ES module bundle still call require().
        banner:
          "import { createRequire as __edgebanRequire } from 'node:module'; const require = __edgebanRequire(import.meta.url);",
        // The SDK versions the tests ran against, not whatever the runtime carries.
        bundleAwsSDK: true,
        forceDockerBundling: false,
      },
    });
  }
}
