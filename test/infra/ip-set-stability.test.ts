/**
 * CloudFormation rewrites an IP set's addresses with the template's empty
 * list whenever it updates the set (aws-waf-security-automations issue
 * #233), so no config change that keeps a set may change its properties.
 * Each config field is changed on its own, in each app layout, and the
 * kept sets must come out byte for byte the same, under the same logical
 * ids; the deploy record must not fire either. The one change this
 * release makes to the sets (descriptions no longer name the set count)
 * is checked against the sets deployed stacks hold today: exactly one
 * update of each set, followed by a deploy record.
 */
import { readFileSync } from 'node:fs';
import type { Template } from 'aws-cdk-lib/assertions';
import { describe, expect, it } from 'vitest';
import { DEFAULT_CONFIG_RAW } from '../../lambda/core/config';
import { DEPLOY_RECORD_PROPS } from '../../lambda/deploy-record/record';
import { DEPLOY_RECORD_RESOURCE_TYPE, ipSetsHash } from '../../lib/deploy-record';
import { type Synthesized, synth } from './app';

const DIST = 'E2QWRUHEXAMPLE';
const ALB =
  'arn:aws:elasticloadbalancing:eu-west-1:123456789012:loadbalancer/app/web/0123456789abcdef';
/** `@region@` stands for the pipeline's region, where the topic must be. */
const TOPIC = 'arn:aws:sns:@region@:123456789012:ops';

type Fields = Record<string, unknown>;

/** One change of one config field: the config before and after, both over the shipped one. */
interface Change {
  readonly field: string;
  readonly before?: Fields;
  readonly after: Fields;
}

const CHANGES: readonly Change[] = [
  { field: 'logs.prefix', after: { logs: { prefix: 'cf/', enableOn: [] } } },
  { field: 'logs.bucketName', after: { logs: { bucketName: 'my-logs', prefix: '' } } },
  { field: 'logs.enableOn', after: { logs: { prefix: '', enableOn: [DIST] } } },
  {
    field: 'logs.cloudfrontDelivery',
    before: { logs: { prefix: '', enableOn: [DIST] } },
    after: { logs: { prefix: '', enableOn: [DIST], cloudfrontDelivery: 'v2-json' } },
  },
  {
    field: 'logs.distributionFeatures',
    before: { logs: { prefix: '', enableOn: [DIST] } },
    after: { logs: { prefix: '', enableOn: [DIST], distributionFeatures: ['lambda-edge'] } },
  },
  { field: 'attach.mode', after: { attach: { mode: 'rule-group' } } },
  {
    field: 'attach.mode',
    before: { attach: { mode: 'rule-group' } },
    after: { attach: { mode: 'none' } },
  },
  { field: 'attach.distributionIds', after: { attach: { distributionIds: [DIST] } } },
  {
    field: 'attach.replaceExistingWebAcl',
    before: { attach: { distributionIds: [DIST] } },
    after: { attach: { distributionIds: [DIST], replaceExistingWebAcl: true } },
  },
  {
    field: 'attach.albArns',
    before: { scope: 'REGIONAL' },
    after: { scope: 'REGIONAL', attach: { albArns: [ALB] } },
  },
  {
    field: 'rules',
    after: { rules: [{ name: 'other', threshold: 5, window: '1m', path: '/admin' }] },
  },
  { field: 'block.duration', after: { block: { duration: '1h' } } },
  { field: 'block.factor', after: { block: { factor: 3 } } },
  { field: 'block.maxDuration', after: { block: { maxDuration: '2d' } } },
  { field: 'block.forgetAfter', after: { block: { forgetAfter: '7d' } } },
  { field: 'allowlist', after: { allowlist: ['198.51.100.0/24', '2001:db8::1'] } },
  { field: 'mode', after: { mode: 'count' } },
  { field: 'mode', after: { mode: 'observe' } },
  { field: 'response', after: { response: 429 } },
  { field: 'maxNewBlocksPerRun', after: { maxNewBlocksPerRun: 50 } },
  { field: 'minPrefix.ipv4', after: { minPrefix: { ipv4: 24, ipv6: 48 } } },
  { field: 'minPrefix.ipv6', after: { minPrefix: { ipv4: 16, ipv6: 56 } } },
  { field: 'ipSets.ipv4', after: { ipSets: { ipv4: 3, ipv6: 1 } } },
  { field: 'ipSets.ipv6', after: { ipSets: { ipv4: 1, ipv6: 4 } } },
  {
    field: 'ipSets.ipv4',
    before: { ipSets: { ipv4: 4, ipv6: 2 } },
    after: { ipSets: { ipv4: 2, ipv6: 2 } },
  },
  {
    field: 'ipSets.ipv6',
    before: { ipSets: { ipv4: 2, ipv6: 3 } },
    after: { ipSets: { ipv4: 2, ipv6: 1 } },
  },
  { field: 'realtime.distributionIds', after: { realtime: { distributionIds: [DIST] } } },
  {
    field: 'realtime.shards',
    before: { realtime: { distributionIds: [DIST] } },
    after: { realtime: { distributionIds: [DIST], shards: 4 } },
  },
  {
    field: 'realtime.replaceExistingConfig',
    before: { realtime: { distributionIds: [DIST] } },
    after: { realtime: { distributionIds: [DIST], replaceExistingConfig: true } },
  },
  { field: 'horizon', after: { horizon: '6h' } },
  { field: 'alarms.lag', after: { alarms: { lag: '3h' } } },
  { field: 'alarms.email', after: { alarms: { email: 'ops@example.com' } } },
  { field: 'alarms.topicArn', after: { alarms: { topicArn: TOPIC } } },
];

/**
 * Fields a change of which makes new sets rather than keeping them, with
 * why: WAF cannot move a set between scopes, so CloudFormation replaces it.
 */
const MAKES_NEW_SETS: Readonly<Record<string, string>> = {
  scope: 'a set cannot change scope: CloudFormation replaces it (a new, empty set)',
  stage: 'a stage names the stacks: another stage is another deployment with its own sets',
};

/** Fields that have one valid value, so no change of them exists. */
const ONE_VALUE: Readonly<Record<string, string>> = {
  'realtime.samplingRate': 'must be 100: exact counts need every request',
};

/** Every field path of the config: the defaults' leaves and the optional ones. */
function fieldPaths(value: unknown, prefix = ''): string[] {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return [prefix];
  return Object.entries(value).flatMap(([k, v]) =>
    // A list of rules is one field: any change of it is one change.
    k === 'rules' ? [k] : fieldPaths(v, prefix === '' ? k : `${prefix}.${k}`),
  );
}
const OPTIONAL_FIELDS = ['logs.bucketName', 'alarms.email', 'alarms.topicArn', 'realtime.shards'];

/** The pipeline bucket's region, and whether the sets get their own stack there. */
const LAYOUTS: readonly [string, string][] = [
  ['one stack in us-east-1', 'us-east-1'],
  ['the sets in EdgebanWaf (us-east-1), the pipeline in eu-west-1', 'eu-west-1'],
];

/** The template that holds the IP sets. */
function setsTemplate(s: Synthesized): Template {
  return s.waf ?? s.pipeline;
}

function ipSets(t: Template): Record<string, unknown> {
  return t.findResources('AWS::WAFv2::IPSet');
}

/** The deploy record that runs after the sets. */
function deployRecord(t: Template): { Properties: Record<string, unknown>; DependsOn: string[] } {
  const found = Object.values(t.findResources(DEPLOY_RECORD_RESOURCE_TYPE)).filter(
    (r) => r.Properties[DEPLOY_RECORD_PROPS.phase] === 'after',
  );
  expect(found).toHaveLength(1);
  return found[0] as { Properties: Record<string, unknown>; DependsOn: string[] };
}

const cache = new Map<string, Synthesized>();
function synthCached(fields: Fields, region: string): Synthesized {
  const key = `${region} ${JSON.stringify(fields)}`;
  let s = cache.get(key);
  if (s === undefined) {
    s = synth(fields, region);
    cache.set(key, s);
  }
  return s;
}

describe('the changes tested', () => {
  it('cover every config field but those that make new sets or have one value', () => {
    const all = [...fieldPaths(DEFAULT_CONFIG_RAW), ...OPTIONAL_FIELDS];
    const covered = new Set([
      ...CHANGES.map((c) => c.field),
      ...Object.keys(MAKES_NEW_SETS),
      ...Object.keys(ONE_VALUE),
    ]);
    expect(all.filter((f) => !covered.has(f))).toEqual([]);
  });
});

describe.each(LAYOUTS)('a config change with %s', (_, region) => {
  // The REGIONAL changes need an ALB in the pipeline's region: eu-west-1 there.
  const regionOf = (c: Change) =>
    (c.before?.scope ?? c.after.scope) === 'REGIONAL' ? 'eu-west-1' : region;

  it.each(CHANGES.map((c) => [c.field, JSON.stringify(c.after), c] as const))(
    'of %s to %s leaves every kept set as it was',
    (_field, _after, change) => {
      const r = regionOf(change);
      const fields = (f: Fields): Fields => JSON.parse(JSON.stringify(f).replaceAll('@region@', r));
      const before = setsTemplate(synthCached(fields(change.before ?? {}), r));
      const after = setsTemplate(
        synthCached(fields({ ...(change.before ?? {}), ...change.after }), r),
      );
      const setsBefore = ipSets(before);
      const setsAfter = ipSets(after);
      const kept = Object.keys(setsBefore).filter((id) => id in setsAfter);
      expect(kept.length).toBeGreaterThanOrEqual(2);
      for (const id of kept) expect(setsAfter[id]).toEqual(setsBefore[id]);
      if (!change.field.startsWith('ipSets.')) {
        // Same sets, same logical ids; so no deploy record either.
        expect(Object.keys(setsAfter).sort()).toEqual(Object.keys(setsBefore).sort());
        expect(deployRecord(after).Properties).toEqual(deployRecord(before).Properties);
      } else {
        // The first sets of each version stay; only those past the smaller count come or go.
        const fewer = Object.keys(setsBefore).length > Object.keys(setsAfter).length;
        const small = fewer ? setsAfter : setsBefore;
        expect(kept.sort()).toEqual(Object.keys(small).sort());
      }
    },
  );
});

/** The IP sets of today's deployed templates (`fixtures/ip-sets-before.json`). */
const BEFORE = JSON.parse(
  readFileSync(new URL('./fixtures/ip-sets-before.json', import.meta.url), 'utf8'),
) as Record<string, Record<string, { Type: string; Properties: Record<string, unknown> }>>;

/** The config and region of each fixture template. */
const UPGRADES: readonly [string, Fields, string][] = [
  ['Edgeban us-east-1, shipped config', {}, 'us-east-1'],
  [
    'EdgebanWaf us-east-1 (pipeline eu-west-1), ipSets 2 + 1',
    { ipSets: { ipv4: 2, ipv6: 1 } },
    'eu-west-1',
  ],
  [
    'Edgeban eu-west-1 REGIONAL, ipSets 1 + 3',
    { scope: 'REGIONAL', ipSets: { ipv4: 1, ipv6: 3 } },
    'eu-west-1',
  ],
];

/**
 * Properties whose change makes CloudFormation replace an
 * `AWS::WAFv2::IPSet` (a new set under the same name, so the update would
 * fail): Name and Scope ("Update requires: Replacement" in the
 * CloudFormation resource reference). Addresses must stay the empty list.
 */
const KEPT_ON_UPGRADE = ['Name', 'Scope', 'IPAddressVersion', 'Addresses'];

describe.each(UPGRADES)('the upgrade of %s', (name, fields, region) => {
  const old = BEFORE[name]!;
  const template = () => setsTemplate(synthCached(fields, region));

  it('keeps every set under its logical id, name, scope and version', () => {
    const now = ipSets(template());
    expect(Object.keys(now).sort()).toEqual(Object.keys(old).sort());
    for (const [id, set] of Object.entries(old)) {
      const props = (now[id] as { Properties: Record<string, unknown> }).Properties;
      for (const p of KEPT_ON_UPGRADE) expect(props[p]).toEqual(set.Properties[p]);
    }
  });

  it('changes only the descriptions: one update, so one reset, of each set', () => {
    const now = ipSets(template());
    for (const [id, set] of Object.entries(old)) {
      const props = (now[id] as { Properties: Record<string, unknown> }).Properties;
      const changed = Object.keys({ ...props, ...set.Properties }).filter(
        (p) => JSON.stringify(props[p]) !== JSON.stringify(set.Properties[p]),
      );
      expect(changed).toEqual(['Description']);
      expect(set.Properties.Description).toMatch(/ of \d+$/);
      expect(props.Description).not.toMatch(/ of /);
    }
  });

  it('is followed by a deploy record: after every set, hashing the new properties', () => {
    const t = template();
    const record = deployRecord(t);
    expect([...record.DependsOn].sort()).toEqual(expect.arrayContaining(Object.keys(old).sort()));
    expect(record.Properties[DEPLOY_RECORD_PROPS.hash]).toBe(ipSetsHash(ipSets(t)));
    expect(record.Properties[DEPLOY_RECORD_PROPS.hash]).not.toBe(ipSetsHash(old));
  });
});
