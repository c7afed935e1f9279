/**
 * More than one deployment per account and Region: an optional `stage`
 * names the stacks, and through them every resource. With no stage every
 * name is what it was before stages existed, so a redeploy replaces
 * nothing (IP sets above all).
 */
import type { Template } from 'aws-cdk-lib/assertions';
import { describe, expect, it } from 'vitest';
import { ConfigError, parseConfig } from '../../lambda/core/config';
import { CONFIG_OUTPUT_SCHEMA, readConfigOutput } from '../../lambda/shared/config-output';
import { OUTPUTS } from '../../lambda/shared/contract';
import { synth } from './app';

const DIST = 'E2QWRUHEXAMPLE';

/** Every literal physical name in the template (WAF names, secrets...), by logical id. */
function names(t: Template): Record<string, string> {
  const out: Record<string, string> = {};
  const resources = t.toJSON().Resources as Record<
    string,
    { Properties?: Record<string, unknown> }
  >;
  for (const [id, r] of Object.entries(resources)) {
    const p = r.Properties ?? {};
    for (const key of [
      'Name',
      'TableName',
      'QueueName',
      'DashboardName',
      'FunctionName',
      'RoleName',
    ]) {
      const v = JSON.stringify(p[key]);
      // Literal names, and names built from the stack's; not references to other resources.
      if (typeof p[key] === 'string' || v?.includes('AWS::StackName')) out[`${id}.${key}`] = v!;
    }
  }
  return out;
}

describe('no stage', () => {
  const one = synth({}, 'us-east-1');
  const split = synth({ attach: { distributionIds: [DIST] } }, 'eu-west-1');

  it('keeps the stack names and the WAF names of every deployment made before stages', () => {
    expect(one.stacks.pipeline.stackName).toBe('Edgeban');
    expect(split.stacks.pipeline.stackName).toBe('Edgeban');
    expect(split.stacks.waf?.stackName).toBe('EdgebanWaf');
    // As main named them before stages existed.
    expect(names(one.pipeline)).toMatchObject({
      'EdgeBanWafIpv4Set1DFBC093F.Name': '"Edgeban-EdgeBan-Waf-749219A5-ipv4-1"',
      'EdgeBanWafIpv6Set194A5DB4D.Name': '"Edgeban-EdgeBan-Waf-749219A5-ipv6-1"',
      'EdgeBanWafWebAclA965D861.Name': '"Edgeban-EdgeBan-Waf-749219A5"',
    });
    expect(names(split.waf!)).toMatchObject({
      'WafIpv4Set1E983E66F.Name': '"EdgebanWaf-EAF1F22D-ipv4-1"',
      'WafIpv6Set138DB2637.Name': '"EdgebanWaf-EAF1F22D-ipv6-1"',
      'WafWebAclBE24253C.Name': '"EdgebanWaf-EAF1F22D"',
    });
  });

  it('writes the config under a schema version in the Config output', () => {
    const outputs = one.pipeline.toJSON().Outputs as Record<string, { Value: string }>;
    const doc = JSON.parse(outputs[OUTPUTS.config]!.Value);
    expect(doc.schemaVersion).toBe(CONFIG_OUTPUT_SCHEMA);
    expect(parseConfig(readConfigOutput(outputs[OUTPUTS.config]!.Value))).toEqual(
      one.stacks.pipeline.edgeban.config,
    );
  });
});

describe('a stage', () => {
  const prod = synth({ attach: { distributionIds: [DIST] } }, 'eu-west-1');
  const staging = synth({ stage: 'staging', attach: { distributionIds: [DIST] } }, 'eu-west-1');

  it('names the stacks after it', () => {
    expect(staging.stacks.pipeline.stackName).toBe('Edgeban-staging');
    expect(staging.stacks.waf?.stackName).toBe('EdgebanWaf-staging');
  });

  it('gives every named resource a name of its own', () => {
    for (const [a, b] of [
      [prod.pipeline, staging.pipeline],
      [prod.waf!, staging.waf!],
    ] as const) {
      const before = names(a);
      const after = names(b);
      expect(Object.keys(after).sort()).toEqual(Object.keys(before).sort());
      for (const key of Object.keys(before)) {
        // A name built from AWS::StackName differs once the stack is deployed under its name.
        if (before[key]!.includes('AWS::StackName')) continue;
        expect(after[key], key).not.toBe(before[key]);
      }
    }
  });

  it('carries the stage in the Config output, where the CLI reads it', () => {
    const outputs = staging.pipeline.toJSON().Outputs as Record<string, { Value: string }>;
    expect(parseConfig(readConfigOutput(outputs[OUTPUTS.config]!.Value)).stage).toBe('staging');
  });

  it.each(['', 'Prod', '1st', 'prod-', 'a'.repeat(21), 7])(
    'refuses the stage %j in one line',
    (stage) => {
      expect(() => parseConfig({ stage })).toThrow(ConfigError);
      expect(() => parseConfig({ stage })).toThrow(
        /^stage must be 1 to 20 lower-case letters, digits and inner hyphens, starting with a letter, got .+$/,
      );
    },
  );
});
