/**
 * The upgrade from the previous release, played on the local cloud: a
 * stack whose IP set descriptions named the set count is updated to this
 * release's template. CloudFormation runs the deploy record that every set
 * depends on, rewrites each set with the template's properties (empty
 * addresses: the one real reset), then runs the record that depends on
 * every set; the reconciler puts every address back, with no block ended.
 * Each step uses what the templates really hold: the previous sets from
 * `test/infra/fixtures/ip-sets-before.json`, the new ones and the records'
 * properties from a synthesis of this release.
 */
import type { CloudFormationCustomResourceEvent } from 'aws-lambda';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { onDeployEvent } from '../../lambda/deploy-record/record';
import { reconcile } from '../../lambda/reconciler/reconcile';
import { readHistory } from '../../lambda/state/blocks';
import { readDeploysSince } from '../../lambda/state/deploys';
import { DEPLOY_RECORD_RESOURCE_TYPE } from '../../lib/deploy-record';
import { type LocalCloud, startLocalCloud } from '../../local/cloud';
import { synth } from '../infra/app';
import { addressesOf, newWorld, putBlocks, ruleBlock, type World } from '../reconciler/env';

let cloud: LocalCloud;

beforeAll(async () => {
  cloud = await startLocalCloud();
});

afterAll(async () => {
  await cloud?.stop();
});

interface Resource {
  readonly Type: string;
  readonly Properties: Record<string, unknown>;
  readonly DependsOn?: string[];
}

/** This release's template for the shipped config: the sets and the two records. */
function newTemplate(): { sets: [string, Resource][]; records: Record<string, Resource> } {
  const t = synth({}, 'us-east-1').pipeline;
  const sets = Object.entries(t.findResources('AWS::WAFv2::IPSet')) as [string, Resource][];
  const records: Record<string, Resource> = {};
  for (const r of Object.values(t.findResources(DEPLOY_RECORD_RESOURCE_TYPE)) as Resource[]) {
    records[String(r.Properties.Phase)] = r;
  }
  return { sets: sets.sort(([a], [b]) => (a < b ? -1 : 1)), records };
}

let requests = 0;
/** The custom resource event CloudFormation sends for a record of the template. */
function createEvent(record: Resource, table: string): CloudFormationCustomResourceEvent {
  const { ServiceToken: _, TableName: __, ...props } = record.Properties;
  return {
    RequestType: 'Create',
    ServiceToken: 'arn:aws:lambda:us-east-1:123456789012:function:framework',
    ResponseURL: 'https://example.invalid/response',
    StackId: 'arn:aws:cloudformation:us-east-1:123456789012:stack/Edgeban/0f3a',
    RequestId: `upgrade-${++requests}`,
    LogicalResourceId: 'EdgeBanWafDeployRecord',
    ResourceType: DEPLOY_RECORD_RESOURCE_TYPE,
    // The template's TableName is a Ref: CloudFormation sends the table's name.
    ResourceProperties: { ServiceToken: 'x', ...props, TableName: table } as never,
  };
}

/** The sets of the world in the template's order: the IPv4 set, then the IPv6 set. */
function setOf(w: World, logicalId: string) {
  return w.ipSets[logicalId.includes('Ipv6') ? 1 : 0]!;
}

/** Every key's history kinds. */
async function kinds(w: World, keys: readonly string[]): Promise<string[]> {
  const out = new Set<string>();
  for (const k of keys) for (const e of await readHistory(w.ddb, w.tableName, k)) out.add(e.kind);
  return [...out].sort();
}

describe('the upgrade of a deployed stack to this release', () => {
  const keys = [
    ...Array.from({ length: 28 }, (_, i) => `198.51.100.${i + 1}`),
    '2001:db8:1::/64',
    '2001:db8:2::/64',
  ];

  async function deployed(): Promise<World> {
    const w = await newWorld(cloud);
    await putBlocks(
      w,
      keys.map((k) => ruleBlock(w, k)),
    );
    await reconcile(w.reconcileDeps());
    expect(addressesOf(w, 0)).toHaveLength(28);
    expect(addressesOf(w, 1)).toEqual(['2001:db8:1::/64', '2001:db8:2::/64']);
    return w;
  }

  it('comes through its one reset with every block in WAF and none ended', async () => {
    const w = await deployed();
    const before = [addressesOf(w, 0), addressesOf(w, 1)];
    const { sets, records } = newTemplate();
    expect(sets).toHaveLength(2);

    // CloudFormation's order: the record every set depends on, the sets, the record after them.
    w.clock += 10_000;
    expect(
      (await onDeployEvent(createEvent(records.before!, w.tableName), { ...deps(w) })).Data
        .Recorded,
    ).toBe('true');
    for (const [id, set] of sets) {
      expect(set.DependsOn).toEqual([expect.stringMatching(/DeployRecordBefore/)]);
      cloud.waf.cloudFormationUpdate(setOf(w, id), {
        addresses: set.Properties.Addresses as string[],
        description: set.Properties.Description as string,
      });
    }
    expect([addressesOf(w, 0), addressesOf(w, 1)]).toEqual([[], []]);
    w.clock += 5_000;
    await onDeployEvent(createEvent(records.after!, w.tableName), deps(w));
    expect((await readDeploysSince(w.ddb, w.tableName, 0)).map((d) => d.phase)).toEqual([
      'before',
      'after',
    ]);

    w.clock += 45_000;
    await reconcile(w.reconcileDeps());
    expect([addressesOf(w, 0), addressesOf(w, 1)]).toEqual(before);
    expect(await kinds(w, keys)).toEqual(['reset']);
  });

  it('comes through it when a reconcile reads the sets before the record after them is written', async () => {
    const w = await deployed();
    const before = [addressesOf(w, 0), addressesOf(w, 1)];
    const { sets, records } = newTemplate();
    w.clock += 10_000;
    await onDeployEvent(createEvent(records.before!, w.tableName), deps(w));
    for (const [id, set] of sets) {
      cloud.waf.cloudFormationUpdate(setOf(w, id), {
        addresses: set.Properties.Addresses as string[],
        description: set.Properties.Description as string,
      });
    }
    // The scheduled run lands between the wipe and the record after it.
    w.clock += 1_000;
    await reconcile(w.reconcileDeps());
    expect([addressesOf(w, 0), addressesOf(w, 1)]).toEqual(before);
    expect(await kinds(w, keys)).toEqual(['reset']);
  });
});

function deps(w: World) {
  return {
    ddb: () => w.ddb,
    cloudformation: () => {
      throw new Error('the table is in the same stack: no lookup');
    },
    now: () => w.clock,
  };
}
