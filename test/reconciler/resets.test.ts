/**
 * Resets and stale reads are not unblocks (DESIGN section 1): the
 * reconciler against IP sets that CloudFormation rewrites, that lose many
 * addresses at once, and that a person edits.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readMemberships } from '../../lambda/reconciler/membership';
import { reconcile } from '../../lambda/reconciler/reconcile';
import { DEPLOY_IN_PROGRESS_MS, deployExplainsLoss } from '../../lambda/reconciler/removals';
import { METRICS } from '../../lambda/shared/contract';
import { type HistoryEvent, readActiveBlocks, readHistory } from '../../lambda/state/blocks';
import { recordDeploy } from '../../lambda/state/deploys';
import { setMode } from '../../lambda/state/operator';
import { type LocalCloud, startLocalCloud } from '../../local/cloud';
import {
  addressesOf,
  HOUR,
  manyAddresses,
  newWorld,
  putBlocks,
  ruleBlock,
  type World,
} from './env';

let cloud: LocalCloud;

beforeAll(async () => {
  cloud = await startLocalCloud();
});

afterAll(async () => {
  await cloud?.stop();
});

async function historyOf(w: World, keys: readonly string[]): Promise<HistoryEvent[]> {
  const out: HistoryEvent[] = [];
  for (const k of keys) out.push(...(await readHistory(w.ddb, w.tableName, k)));
  return out;
}

function kinds(events: readonly HistoryEvent[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const e of events) out[e.kind] = (out[e.kind] ?? 0) + 1;
  return out;
}

async function deploy(w: World, requestId: string): Promise<void> {
  await recordDeploy(w.ddb, w.tableName, {
    at: w.clock,
    kind: 'Update',
    hash: 'h',
    stack: 'edgeban',
    requestId,
  });
}

describe('a reset of an IP set', () => {
  it('restores 300 blocks a CloudFormation update emptied, with reset events and no unblock', async () => {
    const w = await newWorld(cloud);
    const keys = manyAddresses(300);
    await putBlocks(
      w,
      keys.map((k) => ruleBlock(w, k)),
    );
    await reconcile(w.reconcileDeps());
    expect(addressesOf(w, 0)).toHaveLength(300);

    w.clock += 60_000;
    cloud.waf.cloudFormationUpdate({ id: w.ipSets[0]!.id }, { addresses: [] });
    w.clock += 60_000;
    const counted: Record<string, number> = {};
    // A breaker well below 300: re-adds are not new blocks.
    const result = await reconcile(
      w.reconcileDeps({
        config: { ...w.config, maxNewBlocksPerRun: 5 },
        metrics: {
          add: (name, value) => {
            counted[name] = value;
          },
        },
      }),
    );
    expect(result).toMatchObject({ tripped: false, consoleUnblocks: [], updates: 1 });
    expect(result.resets).toHaveLength(300);
    expect(addressesOf(w, 0)).toHaveLength(300);
    expect(counted[METRICS.resets]).toBe(300);
    expect(await readActiveBlocks(w.ddb, w.tableName)).toHaveLength(300);
    const events = await historyOf(w, keys);
    expect(kinds(events)).toEqual({ reset: 300 });
    expect(events[0]).toMatchObject({ kind: 'reset', rule: null, by: 'edgeban' });

    // One event per key per incident: the next runs record nothing more.
    w.clock += 60_000;
    const after = await reconcile(w.reconcileDeps());
    expect(after).toMatchObject({ resets: [], consoleUnblocks: [], updates: 0 });
    expect(kinds(await historyOf(w, keys))).toEqual({ reset: 300 });
  });

  it('restores 5 blocks after a deploy that emptied the set', async () => {
    const w = await newWorld(cloud);
    const keys = ['192.0.2.1', '192.0.2.2', '192.0.2.3', '198.51.100.0/24', '2001:db8:1::/64'];
    await putBlocks(
      w,
      keys.map((k) => ruleBlock(w, k)),
    );
    await reconcile(w.reconcileDeps());
    w.clock += 60_000;
    for (const s of w.ipSets) {
      cloud.waf.cloudFormationUpdate({ id: s.id }, { description: 'edgeban blocklist v2' });
    }
    await deploy(w, 'req-1');
    w.clock += 1_000;
    const result = await reconcile(w.reconcileDeps());
    expect(result.consoleUnblocks).toEqual([]);
    expect([...result.resets].sort()).toEqual([...keys].sort());
    expect(addressesOf(w, 0)).toEqual([
      '192.0.2.1/32',
      '192.0.2.2/32',
      '192.0.2.3/32',
      '198.51.100.0/24',
    ]);
    expect(addressesOf(w, 1)).toEqual(['2001:db8:1::/64']);
    expect(kinds(await historyOf(w, keys))).toEqual({ reset: 5 });
  });

  it('takes a loss read between the wipe and the after record for the deploy in progress, and a removal after it for a person', async () => {
    const w = await newWorld(cloud);
    const keys = ['192.0.2.1', '192.0.2.2', '192.0.2.3'];
    await putBlocks(
      w,
      keys.map((k) => ruleBlock(w, k)),
    );
    await reconcile(w.reconcileDeps());
    const mark = (phase: 'before' | 'after', requestId: string) =>
      recordDeploy(w.ddb, w.tableName, {
        at: w.clock,
        kind: 'Update',
        hash: 'h',
        stack: 'edgeban',
        requestId,
        phase,
      });
    w.clock += 1_000;
    await mark('before', 'req-before');
    // A fresh read after the before record: the deploy is older than it.
    w.clock += 1_000;
    await reconcile(w.reconcileDeps());
    w.clock += 1_000;
    cloud.waf.cloudFormationUpdate({ id: w.ipSets[0]!.id }, { addresses: [] });
    w.clock += 1_000;
    // 3 of 3 missing is under max(10, 10%): only the deploy in progress makes it a reset.
    const during = await reconcile(w.reconcileDeps());
    expect(during.consoleUnblocks).toEqual([]);
    expect([...during.resets].sort()).toEqual([...keys].sort());
    expect(addressesOf(w, 0)).toEqual(keys.map((k) => `${k}/32`));
    await mark('after', 'req-after');
    w.clock += 60_000;
    await reconcile(w.reconcileDeps());
    w.clock += 60_000;
    cloud.waf.setAddresses({ id: w.ipSets[0]!.id }, ['192.0.2.1/32', '192.0.2.2/32']);
    const after = await reconcile(w.reconcileDeps());
    expect(after).toMatchObject({ consoleUnblocks: ['192.0.2.3'], resets: [] });
  });

  it('keeps the incident open across a run that could not write: still no unblock, one event', async () => {
    const w = await newWorld(cloud);
    const keys = manyAddresses(3);
    await putBlocks(
      w,
      keys.map((k) => ruleBlock(w, k)),
    );
    await reconcile(w.reconcileDeps());
    w.clock += 60_000;
    cloud.waf.cloudFormationUpdate({ id: w.ipSets[0]!.id });
    await deploy(w, 'req-2');
    w.clock += 1_000;
    cloud.waf.setFaults({ lockConflictNext: 6 });
    const failed = await reconcile(w.reconcileDeps());
    expect(failed.failedSets).toEqual([w.ipSets[0]!.name]);
    cloud.waf.clearFaults();
    w.clock += 60_000;
    const repaired = await reconcile(w.reconcileDeps());
    expect(repaired).toMatchObject({ consoleUnblocks: [], failedSets: [] });
    expect(addressesOf(w, 0)).toHaveLength(3);
    expect(kinds(await historyOf(w, keys))).toEqual({ reset: 3 });
  });
});

describe("a person's removal", () => {
  it('still ends the block of a single address removed in a fresh read with no deploy', async () => {
    const w = await newWorld(cloud);
    const keys = manyAddresses(300);
    await putBlocks(
      w,
      keys.map((k) => ruleBlock(w, k)),
    );
    await reconcile(w.reconcileDeps());
    // A deploy long ago, before the last fresh read: it does not excuse this loss.
    await deploy(w, 'old');
    w.clock += 60_000;
    await reconcile(w.reconcileDeps());
    w.clock += 60_000;
    const kept = cloud.waf
      .ipSet({ id: w.ipSets[0]!.id })
      .addresses.filter((a) => a !== '198.18.0.5/32');
    cloud.waf.setAddresses({ id: w.ipSets[0]!.id }, kept);
    const result = await reconcile(w.reconcileDeps());
    expect(result).toMatchObject({ consoleUnblocks: ['198.18.0.5'], resets: [] });
    expect(addressesOf(w, 0)).toHaveLength(299);
    expect(kinds(await readHistory(w.ddb, w.tableName, '198.18.0.5'))).toEqual({ unblock: 1 });
  });

  it('counts up to max(10, 10%) of the confirmed addresses as removals, one more as a reset', async () => {
    const w = await newWorld(cloud);
    const keys = manyAddresses(50);
    await putBlocks(
      w,
      keys.map((k) => ruleBlock(w, k)),
    );
    await reconcile(w.reconcileDeps());
    const id = w.ipSets[0]!.id;
    // 50 confirmed: the threshold is 10. Ten removed at once are a person's.
    w.clock += 60_000;
    cloud.waf.setAddresses({ id }, cloud.waf.ipSet({ id }).addresses.slice(10));
    const ten = await reconcile(w.reconcileDeps());
    expect(ten.consoleUnblocks).toHaveLength(10);
    expect(ten.resets).toEqual([]);
    // 40 confirmed now: eleven at once are a reset.
    w.clock += 60_000;
    cloud.waf.setAddresses({ id }, cloud.waf.ipSet({ id }).addresses.slice(11));
    const eleven = await reconcile(w.reconcileDeps());
    expect(eleven.consoleUnblocks).toEqual([]);
    expect(eleven.resets).toHaveLength(11);
    expect(addressesOf(w, 0)).toHaveLength(40);
  });
});

describe('where the rule could misfire', () => {
  it('after a pause in which blocks ended and a person emptied the set: the active ones return, the ended stay out', async () => {
    const w = await newWorld(cloud);
    const start = Math.floor(w.clock / 1000);
    const keys = manyAddresses(30);
    await putBlocks(
      w,
      keys.map((k, i) => ruleBlock(w, k, { until: start + (i < 20 ? HOUR : 8 * HOUR) })),
    );
    await reconcile(w.reconcileDeps());
    await setMode(w.operatorDeps(), 'observe', 'alice');
    w.clock += 2 * HOUR * 1000;
    const paused = await reconcile(w.reconcileDeps());
    expect(paused.expired).toHaveLength(20);
    cloud.waf.setAddresses({ id: w.ipSets[0]!.id }, []);
    await setMode(w.operatorDeps(), null, 'alice');
    w.clock += 60_000;
    const resumed = await reconcile(w.reconcileDeps());
    expect(resumed.consoleUnblocks).toEqual([]);
    expect([...resumed.resets].sort()).toEqual(keys.slice(20).sort());
    expect(addressesOf(w, 0)).toEqual(
      keys
        .slice(20)
        .map((k) => `${k}/32`)
        .sort(),
    );
    const events = await historyOf(w, keys);
    expect(kinds(events)).toEqual({ expire: 20, reset: 10 });
  });

  it('after shrinking ipSets: the blocks of a removed set move over, not as new blocks, and its record goes', async () => {
    const w = await newWorld(cloud, {
      config: { ipSets: { ipv4: 2, ipv6: 1 } },
      preset: [
        Array.from({ length: 9_990 }, (_, i) => `11.0.${Math.floor(i / 250)}.${(i % 250) + 1}/32`),
      ],
    });
    const keys = manyAddresses(15);
    await putBlocks(
      w,
      keys.map((k) => ruleBlock(w, k)),
    );
    await reconcile(w.reconcileDeps());
    expect(addressesOf(w, 1)).toHaveLength(5);
    // The stack now has one IPv4 set; its other addresses' owner cleared them.
    const kept = cloud.waf
      .ipSet({ id: w.ipSets[0]!.id })
      .addresses.filter((a) => a.startsWith('198.18.'));
    cloud.waf.setAddresses({ id: w.ipSets[0]!.id }, kept);
    const shrunk = { ...w.config, ipSets: { ipv4: 1, ipv6: 1 }, maxNewBlocksPerRun: 2 };
    w.clock += 60_000;
    const result = await reconcile(
      w.reconcileDeps({ config: shrunk, ipSets: [w.ipSets[0]!, w.ipSets[2]!] }),
    );
    expect(result).toMatchObject({ tripped: false, consoleUnblocks: [], updates: 1 });
    expect(addressesOf(w, 0)).toHaveLength(15);
    expect([...(await readMemberships(w.ddb, w.tableName)).keys()].sort()).toEqual(
      [w.ipSets[0]!.name, w.ipSets[2]!.name].sort(),
    );
  });
});

describe('stale reads', () => {
  it('prove nothing: a read that answers a token its own write replaced ends no block', async () => {
    const w = await newWorld(cloud);
    cloud.waf.setClock({ now: () => w.clock });
    cloud.waf.setRealism({ readLagMs: 30_000 });
    await putBlocks(w, [ruleBlock(w, '192.0.2.7')]);
    w.clock += 60_000;
    expect((await reconcile(w.reconcileDeps())).added).toEqual(['192.0.2.7/32']);
    await putBlocks(w, [ruleBlock(w, '192.0.2.8')]);
    // For 30 s reads answer the set as created: .7 missing, under the token the write replaced.
    for (let i = 0; i < 3; i++) {
      w.clock += 5_000;
      const stale = await reconcile(w.reconcileDeps());
      expect(stale).toMatchObject({ consoleUnblocks: [], resets: [], updates: 0, partial: true });
      expect(stale.staleReads).toBeGreaterThan(0);
    }
    w.clock += 60_000;
    const fresh = await reconcile(w.reconcileDeps());
    expect(fresh).toMatchObject({ consoleUnblocks: [], staleReads: 0, updates: 1, partial: false });
    expect(addressesOf(w, 0)).toEqual(['192.0.2.7/32', '192.0.2.8/32']);
    expect(await readHistory(w.ddb, w.tableName, '192.0.2.7')).toEqual([]);
    cloud.waf.setRealism({});
  });
});

describe('deployExplainsLoss', () => {
  const HOUR_MS = 3_600_000;
  it('returns true for a record newer than the last read, whatever its phase', () => {
    expect(deployExplainsLoss([{ at: 10 }], 5, 20)).toBe(true);
    expect(deployExplainsLoss([{ at: 5 }], 5, 20)).toBe(false);
  });
  it('returns true while a before record has no after record of its stack', () => {
    const before = { at: 1_000, stack: 's', phase: 'before' as const };
    expect(deployExplainsLoss([before], 2_000, 3_000)).toBe(true);
    expect(
      deployExplainsLoss([before, { at: 1_500, stack: 's', phase: 'after' }], 2_000, 3_000),
    ).toBe(false);
    expect(
      deployExplainsLoss([before, { at: 1_500, stack: 'other', phase: 'after' }], 2_000, 3_000),
    ).toBe(true);
  });
  it('returns false once a before record is older than DEPLOY_IN_PROGRESS_MS', () => {
    const before = { at: 0, stack: 's', phase: 'before' as const };
    expect(DEPLOY_IN_PROGRESS_MS).toBe(HOUR_MS);
    expect(deployExplainsLoss([before], 10, HOUR_MS)).toBe(true);
    expect(deployExplainsLoss([before], 10, HOUR_MS + 1)).toBe(false);
  });
});
