import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readMemberships, writeMembership } from '../../lambda/reconciler/membership';
import {
  CONSOLE_ACTOR,
  IP_SET_CAPACITY,
  type ReconcileMetrics,
  reconcile,
} from '../../lambda/reconciler/reconcile';
import { PENDING_GRACE_MS } from '../../lambda/reconciler/set-run';
import { METRIC_DIMENSIONS, METRICS } from '../../lambda/shared/contract';
import { readActiveBlocks, readHistory, readReconcileStatus } from '../../lambda/state/blocks';
import { setMode } from '../../lambda/state/operator';
import { readPairState } from '../../lambda/state/pairs';
import { type LocalCloud, startLocalCloud } from '../../local/cloud';
import type { WafCall } from '../../local/waf-emulator';
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

/** Successful UpdateIPSet calls per set id among `calls`. */
function successfulUpdates(calls: readonly WafCall[]): Map<string, number> {
  const out = new Map<string, number>();
  for (const c of calls) {
    if (c.operation === 'UpdateIPSet' && c.ok && c.id !== null)
      out.set(c.id, (out.get(c.id) ?? 0) + 1);
  }
  return out;
}

/** Runs one reconcile and returns it with the WAF calls it made. */
async function run(world: World, extra: Parameters<World['reconcileDeps']>[0] = {}) {
  const before = cloud.waf.calls().length;
  const result = await reconcile(world.reconcileDeps(extra));
  return { result, calls: cloud.waf.calls().slice(before) };
}

describe('reconcile', () => {
  it('puts the active blocks in the sets of their address version, one update per set', async () => {
    const w = await newWorld(cloud);
    await putBlocks(w, [
      ruleBlock(w, '192.0.2.7'),
      ruleBlock(w, '192.0.2.7', { rule: 'login', window: 1 }),
      ruleBlock(w, '198.51.100.0/24'),
      ruleBlock(w, '2001:db8:1:2::/64'),
    ]);
    const { result, calls } = await run(w);
    expect(addressesOf(w, 0)).toEqual(['192.0.2.7/32', '198.51.100.0/24']);
    expect(addressesOf(w, 1)).toEqual(['2001:db8:1:2::/64']);
    expect(result).toMatchObject({ mode: 'block', desired: 3, updates: 2, tripped: false });
    expect([...result.added].sort()).toEqual([
      '192.0.2.7/32',
      '198.51.100.0/24',
      '2001:db8:1:2::/64',
    ]);
    expect([...successfulUpdates(calls).values()]).toEqual([1, 1]);
    const status = await readReconcileStatus(w.ddb, w.tableName);
    expect(status?.ipSets).toEqual([
      { name: w.ipSets[0]!.name, version: 'IPV4', size: 2, capacity: IP_SET_CAPACITY },
      { name: w.ipSets[1]!.name, version: 'IPV6', size: 1, capacity: IP_SET_CAPACITY },
    ]);
  });

  it('makes no update when nothing changed', async () => {
    const w = await newWorld(cloud);
    await putBlocks(w, [ruleBlock(w, '192.0.2.7')]);
    await run(w);
    w.clock += 60_000;
    const { result, calls } = await run(w);
    expect(result.updates).toBe(0);
    expect(calls.filter((c) => c.operation === 'UpdateIPSet')).toEqual([]);
    expect(cloud.waf.updateCount({ id: w.ipSets[0]!.id })).toBe(1);
  });

  it('takes expired blocks out on the timer, with expire events, and keeps the others', async () => {
    const w = await newWorld(cloud);
    const short = ruleBlock(w, '192.0.2.7', { until: Math.floor(w.clock / 1000) + HOUR });
    await putBlocks(w, [short, ruleBlock(w, '192.0.2.8')]);
    await run(w);
    expect(addressesOf(w, 0)).toEqual(['192.0.2.7/32', '192.0.2.8/32']);

    w.clock += HOUR * 1000 - 1;
    expect((await run(w)).result.expired).toEqual([]);
    w.clock += 1;
    const { result } = await run(w);
    expect(result.expired).toEqual(['192.0.2.7']);
    expect(result.removed).toEqual(['192.0.2.7/32']);
    expect(addressesOf(w, 0)).toEqual(['192.0.2.8/32']);
    expect((await readActiveBlocks(w.ddb, w.tableName)).map((b) => b.key)).toEqual(['192.0.2.8']);
    const events = await readHistory(w.ddb, w.tableName, '192.0.2.7');
    expect(events).toEqual([
      {
        at: short.until * 1000,
        kind: 'expire',
        key: '192.0.2.7',
        rule: 'flood',
        by: null,
        reason: null,
      },
    ]);
  });

  it('never removes an address it did not add', async () => {
    const w = await newWorld(cloud, {
      preset: [['203.0.113.9/32', '198.51.100.0/25'], ['2001:DB8:0:0:0:0:0:1/128']],
    });
    const start = Math.floor(w.clock / 1000);
    await putBlocks(w, [
      ruleBlock(w, '192.0.2.7', { until: start + 60 }),
      // Already in the set, put there by someone else: satisfied, never ours.
      ruleBlock(w, '203.0.113.9', { until: start + 60 }),
      ruleBlock(w, '2001:db8::1', { until: start + 60 }),
    ]);
    const first = await run(w);
    expect(first.result.added).toEqual(['192.0.2.7/32']);
    expect(addressesOf(w, 0)).toEqual(['192.0.2.7/32', '198.51.100.0/25', '203.0.113.9/32']);
    w.clock += 60_000;
    const second = await run(w);
    expect(second.result.removed).toEqual(['192.0.2.7/32']);
    expect(addressesOf(w, 0)).toEqual(['198.51.100.0/25', '203.0.113.9/32']);
    // Others' spelling is kept as they wrote it.
    expect(addressesOf(w, 1)).toEqual(['2001:DB8:0:0:0:0:0:1/128']);
    expect(second.result.consoleUnblocks).toEqual([]);
  });

  it('records a console removal as an unblock by the console and never re-adds it', async () => {
    const w = await newWorld(cloud);
    await putBlocks(w, [
      ruleBlock(w, '192.0.2.7'),
      ruleBlock(w, '192.0.2.7', { rule: 'login', window: 1 }),
      ruleBlock(w, '192.0.2.8'),
    ]);
    await run(w);
    cloud.waf.setAddresses({ id: w.ipSets[0]!.id }, ['192.0.2.8/32']);
    w.clock += 120_000;
    const { result } = await run(w);
    expect(result.consoleUnblocks).toEqual(['192.0.2.7']);
    expect(result.added).toEqual([]);
    expect(addressesOf(w, 0)).toEqual(['192.0.2.8/32']);
    expect((await readActiveBlocks(w.ddb, w.tableName)).map((b) => b.key)).toEqual(['192.0.2.8']);
    const events = await readHistory(w.ddb, w.tableName, '192.0.2.7');
    expect(events.map((e) => [e.kind, e.rule, e.by, e.at])).toEqual([
      ['unblock', 'flood', CONSOLE_ACTOR, w.clock],
      ['unblock', 'login', CONSOLE_ACTOR, w.clock],
    ]);
    // Window sums of every rule restart at the unblock.
    const pair = await readPairState(w.ddb, w.tableName, 'flood', '192.0.2.7');
    expect(pair.state.countFrom).toBe(Math.floor(w.clock / 1000));

    w.clock += 60_000;
    const again = await run(w);
    expect(again.result.consoleUnblocks).toEqual([]);
    expect(again.result.updates).toBe(0);
    expect(addressesOf(w, 0)).toEqual(['192.0.2.8/32']);
  });

  it('sees a console removal made while it retries, and does not re-add it', async () => {
    const w = await newWorld(cloud);
    await putBlocks(w, [ruleBlock(w, '192.0.2.7')]);
    await run(w);
    await putBlocks(w, [ruleBlock(w, '192.0.2.9')]);
    cloud.waf.setFaults({ lockConflictNext: 1 });
    let edited = false;
    const { result } = await run(w, {
      sleep: async () => {
        if (edited) return;
        edited = true;
        cloud.waf.setAddresses({ id: w.ipSets[0]!.id }, []);
      },
    });
    expect(result.retries).toBeGreaterThanOrEqual(1);
    expect(result.consoleUnblocks).toEqual(['192.0.2.7']);
    expect(addressesOf(w, 0)).toEqual(['192.0.2.9/32']);
  });

  it('converges under 50% lock conflicts and throttling with at most one successful update per set per run', async () => {
    const w = await newWorld(cloud, { config: { ipSets: { ipv4: 2, ipv6: 1 } } });
    cloud.waf.setFaults({ seed: 7, lockConflictRate: 0.5, throttleRate: 0.2 });
    const addresses = manyAddresses(60);
    const v6 = Array.from({ length: 10 }, (_, i) => `2001:db8:${i}::/64`);
    let retries = 0;
    for (let round = 0; round < 6; round++) {
      const start = Math.floor(w.clock / 1000);
      await putBlocks(w, [
        ...addresses
          .slice(round * 10, round * 10 + 10)
          .map((a, i) => ruleBlock(w, a, { until: start + 90 + i })),
        ruleBlock(w, v6[round]!, { until: start + 90 }),
      ]);
      const { result, calls } = await run(w);
      retries += result.retries;
      for (const n of successfulUpdates(calls).values()) expect(n).toBe(1);
      w.clock += 60_000;
    }
    expect(retries).toBeGreaterThan(0);
    // Settle: a set that ran out of retries in a round is picked up by the next.
    cloud.waf.clearFaults();
    const { result } = await run(w);
    expect(result.failedSets).toEqual([]);
    const active = new Set((await readActiveBlocks(w.ddb, w.tableName)).map((b) => b.key));
    const inWaf = [...addressesOf(w, 0), ...addressesOf(w, 1), ...addressesOf(w, 2)];
    expect(inWaf.sort()).toEqual([...active].map((k) => (k.includes('/') ? k : `${k}/32`)).sort());
    // Blocks of the first rounds have expired meanwhile and left WAF.
    expect(active.size).toBeLessThan(66);
    expect(active.size).toBeGreaterThan(0);
  });

  it('reports a set it could not update and brings it up to date on the next run', async () => {
    const w = await newWorld(cloud);
    await putBlocks(w, [ruleBlock(w, '192.0.2.7')]);
    cloud.waf.setFaults({ lockConflictNext: 6 });
    const first = await run(w);
    expect(first.result).toMatchObject({ failedSets: [w.ipSets[0]!.name], retries: 5, updates: 0 });
    expect(addressesOf(w, 0)).toEqual([]);
    const second = await run(w);
    expect(second.result).toMatchObject({ failedSets: [], updates: 1, consoleUnblocks: [] });
    expect(addressesOf(w, 0)).toEqual(['192.0.2.7/32']);
  });

  it('owns an address whose update landed though its membership record was not settled', async () => {
    const w = await newWorld(cloud);
    const start = Math.floor(w.clock / 1000);
    await putBlocks(w, [
      ruleBlock(w, '192.0.2.7', { until: start + 60 }),
      ruleBlock(w, '192.0.2.8', { until: start + 600 }),
    ]);
    await run(w);
    // As if the run had died after UpdateIPSet, before settling the record:
    // .7 and .8 still pending; a pending .9 never reached the set.
    await writeMembership(w.ddb, w.tableName, w.ipSets[0]!.name, {
      confirmed: [],
      pendingAdd: ['192.0.2.7/32', '192.0.2.8/32', '192.0.2.9/32'],
      pendingRemove: [],
      at: w.clock,
    });
    // Past the time a late update of the writer that recorded them could still land them.
    w.clock += PENDING_GRACE_MS + 1;
    const { result } = await run(w);
    expect(result.consoleUnblocks).toEqual([]);
    expect(result.removed).toEqual(['192.0.2.7/32']);
    expect(addressesOf(w, 0)).toEqual(['192.0.2.8/32']);
    const m = (await readMemberships(w.ddb, w.tableName)).get(w.ipSets[0]!.name);
    expect(m).toMatchObject({ confirmed: ['192.0.2.8/32'], pendingAdd: [], pendingRemove: [] });
  });

  it('does not take a removal of its own that was not settled for a console removal', async () => {
    const w = await newWorld(cloud);
    await putBlocks(w, [ruleBlock(w, '192.0.2.8')]);
    await run(w);
    // A removal of .7 landed, but the record still lists .7 as confirmed, being removed.
    await writeMembership(w.ddb, w.tableName, w.ipSets[0]!.name, {
      confirmed: ['192.0.2.7/32', '192.0.2.8/32'],
      pendingAdd: [],
      pendingRemove: ['192.0.2.7/32'],
      at: w.clock,
    });
    const { result } = await run(w);
    expect(result.consoleUnblocks).toEqual([]);
    expect(await readHistory(w.ddb, w.tableName, '192.0.2.7')).toEqual([]);
    const m = (await readMemberships(w.ddb, w.tableName)).get(w.ipSets[0]!.name);
    expect(m?.confirmed).toEqual(['192.0.2.8/32']);
  });

  it('uses the next set past 10,000 addresses, and with one set evicts the blocks that end soonest', async () => {
    const w = await newWorld(cloud, {
      config: { ipSets: { ipv4: 2, ipv6: 1 }, maxNewBlocksPerRun: 20_000 },
    });
    const start = Math.floor(w.clock / 1000);
    const addresses = manyAddresses(IP_SET_CAPACITY + 1);
    // The last address's block ends soonest.
    await putBlocks(
      w,
      addresses.map((a, i) => ruleBlock(w, a, { until: start + 100_000 - i })),
    );
    const soonest = `${addresses[addresses.length - 1]}/32`;
    const counted: Record<string, number> = {};
    const metrics: ReconcileMetrics = {
      add: (name, value) => {
        counted[name] = value;
      },
    };

    const oneSet = await run(w, { ipSets: [w.ipSets[0]!], metrics });
    expect(oneSet.result.evicted).toEqual([soonest]);
    expect(counted[METRICS.evictions]).toBe(1);
    expect(addressesOf(w, 0)).toHaveLength(IP_SET_CAPACITY);
    expect(addressesOf(w, 0)).not.toContain(soonest);

    const twoSets = await run(w);
    expect(twoSets.result).toMatchObject({ evicted: [], added: [soonest], updates: 1 });
    expect(addressesOf(w, 0)).toHaveLength(IP_SET_CAPACITY);
    expect(addressesOf(w, 1)).toEqual([soonest]);
  });

  it('gives way to addresses others hold: the soonest-ending block is left out', async () => {
    const others = manyAddresses(IP_SET_CAPACITY - 2).map((a) => `${a}/32`);
    const w = await newWorld(cloud, { preset: [others] });
    const start = Math.floor(w.clock / 1000);
    await putBlocks(w, [
      ruleBlock(w, '192.0.2.1', { until: start + 300 }),
      ruleBlock(w, '192.0.2.2', { until: start + 100 }),
      ruleBlock(w, '192.0.2.3', { until: start + 200 }),
    ]);
    const { result } = await run(w);
    expect(result.evicted).toEqual(['192.0.2.2/32']);
    expect([...result.added].sort()).toEqual(['192.0.2.1/32', '192.0.2.3/32']);
    expect(addressesOf(w, 0)).toHaveLength(IP_SET_CAPACITY);
  });

  it('trips the circuit breaker over maxNewBlocksPerRun and writes nothing to WAF', async () => {
    const w = await newWorld(cloud, { config: { maxNewBlocksPerRun: 2 } });
    await putBlocks(w, [ruleBlock(w, '192.0.2.1'), ruleBlock(w, '192.0.2.2')]);
    expect((await run(w)).result.tripped).toBe(false);

    await putBlocks(w, [
      ruleBlock(w, '192.0.2.3'),
      ruleBlock(w, '192.0.2.4'),
      ruleBlock(w, '192.0.2.5'),
    ]);
    const counted: Record<string, number> = {};
    const { result, calls } = await run(w, {
      metrics: {
        add: (name, value) => {
          counted[name] = value;
        },
      },
    });
    expect(result.tripped).toBe(true);
    expect(calls.filter((c) => c.operation !== 'GetIPSet')).toEqual([]);
    expect(addressesOf(w, 0)).toEqual(['192.0.2.1/32', '192.0.2.2/32']);
    expect(counted[METRICS.circuitBreakerTrips]).toBe(1);
    expect((await readReconcileStatus(w.ddb, w.tableName))?.tripped).toBe(true);
  });

  it('records a console removal once even while the circuit breaker holds every write', async () => {
    const w = await newWorld(cloud, { config: { maxNewBlocksPerRun: 1 } });
    await putBlocks(w, [ruleBlock(w, '192.0.2.1')]);
    await run(w);
    cloud.waf.setAddresses({ id: w.ipSets[0]!.id }, []);
    await putBlocks(w, [ruleBlock(w, '192.0.2.2'), ruleBlock(w, '192.0.2.3')]);
    const first = await run(w);
    expect(first.result).toMatchObject({ tripped: true, consoleUnblocks: ['192.0.2.1'] });
    w.clock += 60_000;
    const second = await run(w);
    expect(second.result).toMatchObject({ tripped: true, consoleUnblocks: [] });
    expect(await readHistory(w.ddb, w.tableName, '192.0.2.1')).toHaveLength(1);
    expect(addressesOf(w, 0)).toEqual([]);
  });

  it('never sends guarded, non-canonical or too-wide keys to WAF', async () => {
    const w = await newWorld(cloud, { config: { allowlist: ['203.0.113.0/28'] } });
    const bad = [
      '10.1.2.3', // private
      '203.0.113.5', // allowlist
      '130.176.88.7', // CloudFront origin-facing
      '192.0.2.0/8', // not canonical (host bits)
      '198.0.0.0/15', // wider than minPrefix /16
      '2001:db8::/32', // wider than minPrefix /48
      '::ffff:192.0.2.1', // not canonical
      '192.0.2.7/32', // not canonical (bare at /32)
      'not-an-address',
      'fe80::1', // link-local
    ];
    await putBlocks(w, [...bad.map((k) => ruleBlock(w, k)), ruleBlock(w, '192.0.2.7')]);
    const { result } = await run(w);
    expect(result.refused.map((r) => r.key).sort()).toEqual([...bad].sort());
    expect(result.refused.find((r) => r.key === '10.1.2.3')?.reason).toMatch(/10\.0\.0\.0\/8/);
    expect(cloud.waf.allAddressesEverSubmitted()).toEqual(['192.0.2.7/32']);
  });

  it('leaves WAF untouched under an observe override, still sweeping, and resumes', async () => {
    const w = await newWorld(cloud);
    const start = Math.floor(w.clock / 1000);
    await putBlocks(w, [ruleBlock(w, '192.0.2.7', { until: start + 60 })]);
    await run(w);
    await setMode(w.operatorDeps(), 'observe', 'alice');
    await putBlocks(w, [ruleBlock(w, '192.0.2.8')]);
    w.clock += 60_000;
    const paused = await run(w);
    expect(paused.result).toMatchObject({ mode: 'observe', expired: ['192.0.2.7'], updates: 0 });
    expect(paused.calls).toEqual([]);
    expect(addressesOf(w, 0)).toEqual(['192.0.2.7/32']);
    expect((await readHistory(w.ddb, w.tableName, '192.0.2.7')).map((e) => e.kind)).toEqual([
      'expire',
    ]);

    await setMode(w.operatorDeps(), null, 'alice');
    const resumed = await run(w);
    expect(resumed.result.mode).toBe('block');
    expect(addressesOf(w, 0)).toEqual(['192.0.2.8/32']);
  });

  it('maintains the sets in count mode', async () => {
    const w = await newWorld(cloud, { config: { mode: 'count' } });
    await putBlocks(w, [ruleBlock(w, '192.0.2.7')]);
    const { result } = await run(w);
    expect(result.mode).toBe('count');
    expect(addressesOf(w, 0)).toEqual(['192.0.2.7/32']);
  });

  it('emits active blocks, set sizes, updates, retries, trips and the run metrics', async () => {
    const w = await newWorld(cloud);
    await putBlocks(w, [ruleBlock(w, '192.0.2.7'), ruleBlock(w, '2001:db8::/64')]);
    cloud.waf.setFaults({ throttleNext: 1 });
    const seen: [string, number, Record<string, string> | undefined][] = [];
    await run(w, { metrics: { add: (name, value, dims) => void seen.push([name, value, dims]) } });
    expect(seen).toEqual(
      expect.arrayContaining([
        [METRICS.activeBlocks, 2, undefined],
        [METRICS.reconcileUpdates, 2, undefined],
        // Throttling is a delay, not a retry.
        [METRICS.reconcileRetries, 0, undefined],
        [METRICS.wafThrottled, 1, undefined],
        [METRICS.resets, 0, undefined],
        [METRICS.staleReads, 0, undefined],
        [METRICS.fencedWrites, 0, undefined],
        [METRICS.partialRuns, 0, undefined],
        [METRICS.reconcileRuns, 1, undefined],
        [METRICS.circuitBreakerTrips, 0, undefined],
        [METRICS.evictions, 0, undefined],
        [METRICS.ipSetSize, 1, { [METRIC_DIMENSIONS.ipSet]: w.ipSets[0]!.name }],
        [METRICS.ipSetSize, 1, { [METRIC_DIMENSIONS.ipSet]: w.ipSets[1]!.name }],
      ]),
    );
  });
});
