/**
 * Synthesizes the edgeban app for template tests the way `cdk synth` does:
 * the same `buildEdgeban`, the context of the shipped cdk.json (feature
 * flags included), an account and a region. Two things differ, both for
 * speed: functions are not bundled (bundling changes asset hashes only;
 * `shipped.test.ts` bundles for real), and CloudFormation schema
 * validation is left to `shipped.test.ts` too.
 */
import { readFileSync } from 'node:fs';
import { App } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { buildEdgeban, type EdgebanApp } from '../../lib';

/** The shipped cdk.json. */
export const CDK_JSON = JSON.parse(
  readFileSync(new URL('../../cdk.json', import.meta.url), 'utf8'),
) as { app: string; context: Record<string, unknown> };

/** The shipped `edgeban` config. */
export const SHIPPED = CDK_JSON.context.edgeban as Record<string, unknown>;

export const ACCOUNT = '123456789012';

process.env.CDK_VALIDATION = 'false';

/** The app's context: the shipped one, with `edgeban` replaced and no bundling. */
export function context(edgeban: unknown): Record<string, unknown> {
  return { ...CDK_JSON.context, edgeban, 'aws:cdk:bundling-stacks': [] };
}

/** A synthesized app and its templates. */
export interface Synthesized {
  readonly app: App;
  readonly stacks: EdgebanApp;
  readonly pipeline: Template;
  /** The us-east-1 WAF stack's template, when there is one. */
  readonly waf: Template | undefined;
}

/**
 * Builds and synthesizes the app for `edgeban` (the shipped config with
 * these top-level fields replaced) in `region`.
 * @param region null for an environment-agnostic app
 */
export function synth(
  fields: Record<string, unknown> = {},
  region: string | null = 'us-east-1',
): Synthesized {
  const app = new App({ context: context({ ...SHIPPED, ...fields }) });
  const stacks = buildEdgeban(app, {
    config: app.node.tryGetContext('edgeban'),
    account: ACCOUNT,
    ...(region === null ? {} : { region }),
  });
  return {
    app,
    stacks,
    pipeline: Template.fromStack(stacks.pipeline),
    waf: stacks.waf === undefined ? undefined : Template.fromStack(stacks.waf),
  };
}

/**
 * The template with every asset hash replaced, for the one snapshot per
 * stack: a review aid that shows any template change in a diff.
 */
export function masked(t: Template): unknown {
  return JSON.parse(JSON.stringify(t.toJSON()).replace(/[0-9a-f]{64}/g, '<asset hash>'));
}

/** Builds (without synthesizing) the app for a raw `edgeban` context value. */
export function build(edgeban: unknown, region = 'us-east-1'): EdgebanApp {
  const app = new App({ context: context(edgeban) });
  return buildEdgeban(app, {
    config: app.node.tryGetContext('edgeban'),
    account: ACCOUNT,
    region,
  });
}

/** Every statement of every IAM policy in the template. */
export function statements(template: Template): Record<string, unknown>[] {
  const out: Record<string, unknown>[] = [];
  for (const policy of Object.values(template.findResources('AWS::IAM::Policy'))) {
    const doc = (policy as { Properties: { PolicyDocument: { Statement: unknown[] } } }).Properties
      .PolicyDocument;
    out.push(...(doc.Statement as Record<string, unknown>[]));
  }
  return out;
}

/** The statement's actions as a list. */
export function actions(statement: Record<string, unknown>): string[] {
  const a = statement.Action;
  return Array.isArray(a) ? (a as string[]) : [a as string];
}

/** The statement's resources as a list. */
export function resources(statement: Record<string, unknown>): unknown[] {
  const r = statement.Resource;
  return Array.isArray(r) ? r : [r];
}

/** The logical id of the only resource of `type` whose id starts with `prefix`. */
export function logicalId(template: Template, type: string, prefix: string): string {
  const ids = Object.keys(template.findResources(type)).filter((id) => id.startsWith(prefix));
  if (ids.length !== 1) throw new Error(`expected one ${type} ${prefix}*, found ${ids.join(', ')}`);
  return ids[0]!;
}
