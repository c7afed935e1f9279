/**
 * The CDK app: `cdk synth` / `cdk deploy`. Reads the `edgeban` context
 * (cdk.json, or `-c edgeban='{...}'`), builds the stacks, and runs cdk-nag
 * (AwsSolutions and Serverless packs) over them. A bad config is one line
 * on stderr naming the field and the value, and exit status 1.
 */
import { App, Validations } from 'aws-cdk-lib';
import { AwsSolutionsChecks, ServerlessChecks } from 'cdk-nag';
import { ConfigError } from '../lambda/core/config';
import { buildEdgeban, EdgeBanError } from '../lib';

const app = new App();
try {
  buildEdgeban(app, {
    config: app.node.tryGetContext('edgeban'),
    account: process.env.CDK_DEFAULT_ACCOUNT,
    region: process.env.CDK_DEFAULT_REGION,
  });
} catch (err) {
  if (err instanceof ConfigError || err instanceof EdgeBanError) {
    process.stderr.write(`edgeban config: ${err.message}\n`);
    process.exit(1);
  }
  throw err;
}
Validations.of(app).addPlugins(new AwsSolutionsChecks(app), new ServerlessChecks(app));
